/**
 * The baked images after `ami bake`: `ami list`, `ami prune --keep N`
 * (shows, then with --yes deregisters, deletes the snapshots and the
 * bundles), and `rebuild launch-fleet --image latest`, which takes the
 * newest image of this fitsfleet version and refuses one of another
 * version unless --allow-version-mismatch. The images are made with
 * CreateImage from idle instances, tagged as a bake tags them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  CreateImageCommand,
  CreateLaunchTemplateCommand,
  DeleteLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";

import { packageVersion } from "../../lib/paths.js";
import { IDLE, SECURE_LAUNCH } from "../aws/fixtures.js";
import { runCli } from "../helpers/cli.js";
import { type AmiSetup, amiSetup } from "./helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const VERSION = packageVersion();

/** Makes an image as `ami bake` leaves it: tagged, with a snapshot and a bundle in S3. */
async function baked(
  setup: AmiSetup,
  name: string,
  version: string,
): Promise<string> {
  const { aws } = setup;
  const host = aws.registerImage({ name: `host-${name}`, argv: IDLE });
  const run = await aws.ec2Client().send(
    new RunInstancesCommand({
      ImageId: host,
      MinCount: 1,
      MaxCount: 1,
      ...SECURE_LAUNCH,
      BlockDeviceMappings: [
        { DeviceName: "/dev/xvda", Ebs: { Encrypted: true } },
      ],
    }),
  );
  const instance = run.Instances![0]!.InstanceId!;
  await aws.waitFor(
    (all) => all.find((i) => i.id === instance)?.state === "running",
  );
  const key = `bundles/${name}/fitsfleet-${version}.tar.gz`;
  await setup.s3.client.send(
    new PutObjectCommand({ Bucket: setup.s3.bucket, Key: key, Body: name }),
  );
  const tags = [
    ["Name", name],
    ["fitsfleet:version", version],
    ["fitsfleet:commit", "0123456789abcdef0123456789abcdef01234567"],
    ["fitsfleet:bundle-sha256", "ab".repeat(32)],
    ["fitsfleet:bundle", `s3://${setup.s3.bucket}/${key}`],
    ["fitsfleet:ami-build", name],
  ].map(([Key, Value]) => ({ Key, Value }));
  const image = await aws.ec2Client().send(
    new CreateImageCommand({
      InstanceId: instance,
      Name: name,
      NoReboot: true,
      TagSpecifications: [
        { ResourceType: "image", Tags: tags },
        { ResourceType: "snapshot", Tags: tags },
      ],
    }),
  );
  // Creation times a few milliseconds apart order the images.
  await new Promise((resolve) => setTimeout(resolve, 20));
  return image.ImageId!;
}

interface ListJson {
  version: string;
  images: {
    id: string;
    name: string;
    state: string;
    created: string;
    version: string;
    commit?: string;
    sha256?: string;
  }[];
}

function launchArgs(image: string, extra: string[] = []): string[] {
  return [
    "--json",
    "rebuild",
    "launch-fleet",
    "--image",
    image,
    "--name",
    "images-test",
    "--instances",
    "1",
    "--instance-types",
    "c6i.large",
    "--subnets",
    "subnet-0000000000000001a",
    "--dry-run",
    ...extra,
  ];
}

function launchedImage(stdout: string): string {
  const out = JSON.parse(stdout) as {
    requests: { input: { LaunchTemplateData?: { ImageId?: string } } }[];
  };
  return out.requests[0]!.input.LaunchTemplateData!.ImageId!;
}

describe("baked images", () => {
  it("ami list shows the baked images newest first; ami prune shows, then deletes all but the newest N with their snapshots and bundles", async (t) => {
    const setup = await amiSetup(t);
    const oldest = await baked(setup, "fitsfleet-a", VERSION);
    const middle = await baked(setup, "fitsfleet-b", "0.0.9");
    const newest = await baked(setup, "fitsfleet-c", VERSION);

    const list = await runCli(["--json", "ami", "list"], setup.env);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as ListJson;
    assert.equal(listed.version, VERSION);
    assert.deepEqual(
      listed.images.map((i) => [i.id, i.version, i.state]),
      [
        [newest, VERSION, "available"],
        [middle, "0.0.9", "available"],
        [oldest, VERSION, "available"],
      ],
      "newest first; the base and host images are not baked ones",
    );
    assert.equal(listed.images[0]?.sha256, "ab".repeat(32));
    const human = await runCli(["ami", "list"], setup.env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^image\s+name\s+state\s+created\s+version/);
    assert.match(human.stdout, new RegExp(`${newest}.*${VERSION} \\(this\\)`));

    const shown = await runCli(
      ["--json", "ami", "prune", "--keep", "1"],
      setup.env,
    );
    assert.equal(shown.code, 0, shown.stderr);
    const plan = JSON.parse(shown.stdout) as {
      done: boolean;
      keep: { id: string }[];
      prune: { id: string }[];
    };
    assert.equal(plan.done, false);
    assert.deepEqual(
      plan.keep.map((i) => i.id),
      [newest],
    );
    assert.deepEqual(
      plan.prune.map((i) => i.id),
      [middle, oldest],
    );
    const describe = () =>
      setup.aws.ec2Client().send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: [{ Name: "tag-key", Values: ["fitsfleet:version"] }],
        }),
      );
    assert.equal((await describe()).Images?.length, 3, "nothing done yet");

    const pruned = await runCli(
      ["ami", "prune", "--keep", "1", "--yes"],
      setup.env,
    );
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(
      pruned.stdout,
      /deregistered 2 image\(s\), deleted 2 snapshot\(s\) and 2 bundle\(s\)/,
    );
    assert.deepEqual(
      (await describe()).Images?.map((i) => i.ImageId),
      [newest],
    );
    const snapshots = await setup.aws
      .ec2Client()
      .send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }));
    assert.equal(snapshots.Snapshots?.length, 1);
    const objects = await setup.s3.client.send(
      new ListObjectsV2Command({ Bucket: setup.s3.bucket }),
    );
    assert.deepEqual(
      (objects.Contents ?? []).map((o) => o.Key),
      [`bundles/fitsfleet-c/fitsfleet-${VERSION}.tar.gz`],
    );

    const again = await runCli(
      ["ami", "prune", "--keep", "1", "--yes"],
      setup.env,
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to prune: 1 image\(s\) kept/);
  });

  it("ami prune never deregisters an image that an instance or a live fleet's launch template uses, and says which and why", async (t) => {
    const setup = await amiSetup(t);
    const { aws } = setup;
    const running = await baked(setup, "fitsfleet-running", VERSION);
    const templated = await baked(setup, "fitsfleet-templated", VERSION);
    const unused = await baked(setup, "fitsfleet-unused", VERSION);
    const newest = await baked(setup, "fitsfleet-newest", VERSION);
    const ec2 = aws.ec2Client();
    const launched = await ec2.send(
      new RunInstancesCommand({
        ImageId: running,
        MinCount: 1,
        MaxCount: 1,
        ...SECURE_LAUNCH,
        BlockDeviceMappings: [
          { DeviceName: "/dev/xvda", Ebs: { Encrypted: true } },
        ],
        TagSpecifications: [
          {
            ResourceType: "instance",
            Tags: [{ Key: "fitsfleet:fleet", Value: "old-fleet" }],
          },
        ],
      }),
    );
    const instance = launched.Instances![0]!.InstanceId!;
    const template = await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "fitsfleet-live-fleet",
        LaunchTemplateData: { ImageId: templated, ...SECURE_LAUNCH },
        TagSpecifications: [
          {
            ResourceType: "launch-template",
            Tags: [{ Key: "fitsfleet:fleet", Value: "live-fleet" }],
          },
        ],
      }),
    );

    const pruned = await runCli(
      ["--json", "ami", "prune", "--keep", "1", "--yes"],
      setup.env,
    );
    assert.equal(pruned.code, 0, pruned.stderr);
    const result = JSON.parse(pruned.stdout) as {
      keep: { id: string }[];
      prune: { id: string }[];
      inUse: { image: { id: string }; usedBy: string[] }[];
    };
    assert.deepEqual(
      result.keep.map((i) => i.id),
      [newest],
    );
    assert.deepEqual(
      result.prune.map((i) => i.id),
      [unused],
    );
    assert.deepEqual(
      result.inUse.map((u) => [u.image.id, u.usedBy]),
      [
        [
          templated,
          ["launch template fitsfleet-live-fleet of fleet live-fleet"],
        ],
        [running, [`instance ${instance} (running, fleet old-fleet)`]],
      ],
    );
    const left = async () =>
      (
        await ec2.send(
          new DescribeImagesCommand({
            Owners: ["self"],
            Filters: [{ Name: "tag-key", Values: ["fitsfleet:version"] }],
          }),
        )
      ).Images?.map((i) => i.ImageId).sort();
    assert.deepEqual(await left(), [running, templated, newest].sort());

    const human = await runCli(["ami", "prune", "--keep", "1"], setup.env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      new RegExp(
        `kept ${running} \\(fitsfleet-running\\): in use by instance ${instance} \\(running, fleet old-fleet\\)`,
      ),
    );
    assert.match(
      human.stdout,
      new RegExp(
        `kept ${templated} \\(fitsfleet-templated\\): in use by launch template fitsfleet-live-fleet of fleet live-fleet`,
      ),
    );

    // Once the fleet and the instance have ended, the images go.
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance] }));
    await aws.waitFor(
      (all) => all.find((i) => i.id === instance)?.state === "terminated",
    );
    await ec2.send(
      new DeleteLaunchTemplateCommand({
        LaunchTemplateId: template.LaunchTemplate!.LaunchTemplateId,
      }),
    );
    const after = await runCli(
      ["ami", "prune", "--keep", "1", "--yes"],
      setup.env,
    );
    assert.equal(after.code, 0, after.stderr);
    assert.deepEqual(await left(), [newest]);
  });

  it("launch-fleet --image latest takes the newest image of this version, and refuses another version unless allowed", async (t) => {
    const setup = await amiSetup(t);
    const none = await runCli(launchArgs("latest"), setup.env);
    assert.equal(none.code, 3, none.stderr);
    assert.match(none.stderr, /no baked worker image/);

    const other = await baked(setup, "fitsfleet-other", "0.0.9");
    const refused = await runCli(launchArgs("latest"), setup.env);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(
        `${other} \\(fitsfleet-other\\) is of fitsfleet 0\\.0\\.9, and none is of ${VERSION}`,
      ),
    );
    assert.match(refused.stderr, /--allow-version-mismatch/);
    const explicit = await runCli(launchArgs(other), setup.env);
    assert.equal(explicit.code, 3, explicit.stderr);
    assert.match(explicit.stderr, /was baked from fitsfleet 0\.0\.9/);

    const allowed = await runCli(
      launchArgs("latest", ["--allow-version-mismatch"]),
      setup.env,
    );
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(launchedImage(allowed.stdout), other);
    assert.match(allowed.stderr, /launching it \(--allow-version-mismatch\)/);

    const ours = await baked(setup, "fitsfleet-ours", VERSION);
    await baked(setup, "fitsfleet-newer-other", "9.9.9");
    const latest = await runCli(launchArgs("latest"), setup.env);
    assert.equal(latest.code, 0, latest.stderr);
    assert.equal(
      launchedImage(latest.stdout),
      ours,
      "the newest of this version, not the newest of all",
    );
    const byId = await runCli(launchArgs(ours), setup.env);
    assert.equal(byId.code, 0, byId.stderr);
    assert.equal(launchedImage(byId.stdout), ours);
  });
});
