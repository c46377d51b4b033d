/**
 * `ami bake` on the loopback AWS endpoint and a real s3rver. The builder
 * boots the "Debian 12" base image (test/ami/cloud-init.mjs), which runs
 * the real user-data script under the instance's folder: apt and Node.js
 * find what they install already here and are skipped, the bundle comes
 * from S3 through the instance role and is checked, the unit is installed
 * and enabled, and the builder tags itself ready. A bake that fails at any
 * step leaves no builder, image, snapshot or bundle.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  RunInstancesCommand,
} from "@aws-sdk/client-ec2";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";

import { bakeImage, type BakeOptions } from "../../ami/bake.js";
import { FitsfleetError } from "../../lib/errors.js";
import { packageRoot, packageVersion } from "../../lib/paths.js";
import { IDLE } from "../aws/fixtures.js";
import { CLI, runCli } from "../helpers/cli.js";
import {
  type AmiSetup,
  amiSetup,
  BUILDER_PROFILE,
  consoleOf,
  fakeBundle,
} from "./helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const VERSION = packageVersion();

interface BakeJson {
  imageId: string;
  name: string;
  version: string;
  commit: string;
  build: string;
  builder: string;
  baseImage: string;
  bundle: { location: string; sha256: string; bytes: number };
  seconds: Record<string, number>;
}

async function bucketKeys(setup: AmiSetup): Promise<string[]> {
  const listed = await setup.s3.client.send(
    new ListObjectsV2Command({ Bucket: setup.s3.bucket }),
  );
  return (listed.Contents ?? []).map((o) => o.Key ?? "");
}

async function bakeImages(setup: AmiSetup) {
  const described = await setup.aws.ec2Client().send(
    new DescribeImagesCommand({
      Owners: ["self"],
      Filters: [{ Name: "tag-key", Values: ["fitsfleet:ami-build"] }],
    }),
  );
  return described.Images ?? [];
}

async function snapshots(setup: AmiSetup) {
  const described = await setup.aws
    .ec2Client()
    .send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }));
  return described.Snapshots ?? [];
}

/** Nothing of a failed bake is left: the builder ends, and no image, snapshot or bundle remains. */
async function assertNothingLeft(setup: AmiSetup): Promise<void> {
  await setup.aws.waitFor(
    (all) => all.every((i) => i.state === "terminated"),
    30_000,
  );
  assert.deepEqual(await bakeImages(setup), []);
  assert.deepEqual(await snapshots(setup), []);
  assert.deepEqual(await bucketKeys(setup), []);
}

function inProcess(setup: AmiSetup, extra: Partial<BakeOptions>): BakeOptions {
  return {
    ec2: setup.aws.ec2Client(),
    ssm: setup.aws.ssmClient(),
    s3: new S3Client({
      endpoint: setup.s3.endpoint,
      region: setup.aws.region,
      forcePathStyle: true,
      credentials: setup.aws.operatorCredentials,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    }),
    region: setup.aws.region,
    bundleLocation: `s3://${setup.s3.bucket}/bundles`,
    instanceProfile: BUILDER_PROFILE,
    commit: "0123456789abcdef0123456789abcdef01234567",
    pollMs: 100,
    readyTimeoutMs: 60_000,
    ...extra,
  };
}

describe("ami bake", () => {
  it("bakes an image from the real bundle and user-data, tags it, and ends the builder", async (t) => {
    const setup = await amiSetup(t);
    const { aws } = setup;
    const r = await runCli(
      [
        "--json",
        "ami",
        "bake",
        "--bundle-location",
        `s3://${setup.s3.bucket}/bundles/`,
        "--interval",
        "1s",
      ],
      setup.env,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as BakeJson;
    assert.equal(out.version, VERSION);
    assert.equal(
      out.baseImage,
      setup.debian,
      "Debian 12 through its SSM parameter",
    );
    const head = execFileSync("git", ["-C", packageRoot(), "rev-parse", "HEAD"])
      .toString()
      .trim();
    assert.ok(out.commit.startsWith(head), `${out.commit} is HEAD ${head}`);
    // Progress went to stderr, one JSON line a step.
    const steps = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map(
        (l) => (JSON.parse(l) as { progress: { step: string } }).progress.step,
      );
    assert.deepEqual(steps, [
      "bundle",
      "upload",
      "base-image",
      "launch",
      "ready",
      "image",
      "available",
      "terminate",
    ]);

    // The bundle: in S3 with its sha256, which is the sha256 of its bytes.
    const key = out.bundle.location.replace(`s3://${setup.s3.bucket}/`, "");
    assert.match(
      key,
      new RegExp(`^bundles/${out.build}/fitsfleet-${VERSION}\\.tar\\.gz$`),
    );
    const object = await setup.s3.client.send(
      new HeadObjectCommand({ Bucket: setup.s3.bucket, Key: key }),
    );
    assert.equal(object.Metadata?.sha256, out.bundle.sha256);
    const body = await setup.s3.client.send(
      new GetObjectCommand({ Bucket: setup.s3.bucket, Key: key }),
    );
    const bytes = Buffer.from(await body.Body!.transformToByteArray());
    assert.equal(
      createHash("sha256").update(bytes).digest("hex"),
      out.bundle.sha256,
    );
    assert.ok(
      out.bundle.bytes < 40e6,
      `the bundle is ${out.bundle.bytes} bytes`,
    );

    // The builder: launched to the security rules, ran the script, and was ended.
    const builder = aws.instance(out.builder);
    assert.equal(builder.lifecycle, "on-demand");
    assert.equal(builder.role, BUILDER_PROFILE);
    assert.equal(builder.metadataOptions.httpTokens, "required");
    assert.equal(builder.metadataOptions.httpPutResponseHopLimit, 1);
    assert.ok(builder.volumes.every((v) => v.encrypted));
    assert.equal(builder.tags["fitsfleet:ami-build"], out.build);
    assert.equal(builder.tags["fitsfleet:ami-build-state"], "ready");
    const log = consoleOf(aws, out.builder);
    assert.match(log, /packages already installed: ca-certificates curl gnupg/);
    assert.match(log, /node v\d+\.\d+\.\d+ already installed/);
    assert.match(
      log,
      new RegExp(`bundle sha256 verified: ${out.bundle.sha256}`),
    );
    assert.match(
      log,
      new RegExp(
        `fitsfleet ${VERSION.replace(/\./g, "\\.")} installed in /opt/fitsfleet`,
      ),
    );
    assert.match(log, /: ready$/m);
    assert.ok(
      aws
        .calls()
        .some((c) => c.action === "CreateTags" && c.principal === out.builder),
      "the builder tagged itself with its own role's credentials",
    );
    await aws.waitFor(
      (all) => all.find((i) => i.id === out.builder)?.state === "terminated",
      30_000,
    );

    // The image: tagged, and its disk holds the bundle and the enabled unit.
    const [image] = (
      await aws
        .ec2Client()
        .send(new DescribeImagesCommand({ ImageIds: [out.imageId] }))
    ).Images!;
    const tags = Object.fromEntries(
      (image?.Tags ?? []).map((tag) => [tag.Key, tag.Value]),
    );
    assert.equal(image?.State, "available");
    assert.equal(tags["fitsfleet:version"], VERSION);
    assert.equal(tags["fitsfleet:commit"], out.commit);
    assert.equal(tags["fitsfleet:bundle-sha256"], out.bundle.sha256);
    assert.equal(tags["fitsfleet:bundle"], out.bundle.location);
    const disk = join(setup.root, "images", out.imageId);
    assert.equal(
      readFileSync(join(disk, "opt/fitsfleet/BUNDLE-SHA256"), "utf8").trim(),
      out.bundle.sha256,
    );
    assert.ok(existsSync(join(disk, "opt/fitsfleet/dist/cli/main.js")));
    assert.ok(existsSync(join(disk, "opt/fitsfleet/node_modules/bullmq")));
    assert.ok(!existsSync(join(disk, "opt/fitsfleet/node_modules/typescript")));
    const unit = readFileSync(
      join(disk, "etc/systemd/system/fitsfleet-boot.service"),
      "utf8",
    );
    assert.match(
      unit,
      /^ExecStart=\S*node \/opt\/fitsfleet\/dist\/cli\/main\.js instance boot$/m,
    );
    assert.match(unit, /^KillMode=mixed$/m);
    assert.equal(
      readlinkSync(
        join(
          disk,
          "etc/systemd/system/multi-user.target.wants/fitsfleet-boot.service",
        ),
      ),
      "../fitsfleet-boot.service",
    );

    // An instance of it boots the unit's command, which ends at once
    // without a fleet configuration, and the machine powers off.
    const run = await aws.ec2Client().send(
      new RunInstancesCommand({
        ImageId: out.imageId,
        MinCount: 1,
        MaxCount: 1,
        InstanceInitiatedShutdownBehavior: "terminate",
        MetadataOptions: { HttpTokens: "required", HttpPutResponseHopLimit: 1 },
        BlockDeviceMappings: [
          { DeviceName: "/dev/xvda", Ebs: { Encrypted: true } },
        ],
      }),
    );
    const booted = run.Instances![0]!.InstanceId!;
    await aws.waitFor(
      (all) => all.find((i) => i.id === booted)?.state === "terminated",
      30_000,
    );
    assert.equal(
      aws.instance(booted).stateReason?.code,
      "Client.InstanceInitiatedShutdown",
    );
    const bootLog = consoleOf(aws, booted);
    assert.match(bootLog, /systemd: starting fitsfleet-boot\.service/);
    assert.match(bootLog, /launched without user-data/);
    assert.doesNotMatch(
      bootLog,
      /fitsfleet-ami-build/,
      "the builder script does not run again",
    );

    const listed = await runCli(["--json", "ami", "list"], setup.env);
    assert.equal(listed.code, 0, listed.stderr);
    const images = (
      JSON.parse(listed.stdout) as { images: { id: string; sha256: string }[] }
    ).images;
    assert.deepEqual(
      images.map((i) => [i.id, i.sha256]),
      [[out.imageId, out.bundle.sha256]],
    );
    assert.deepEqual(aws.secretLeaks(), []);
  });

  it("a bundle whose sha256 does not match stops the builder; nothing is left", async (t) => {
    const setup = await amiSetup(t);
    const bundle = fakeBundle(t, VERSION);
    const wrong = createHash("sha256").update("something else").digest("hex");
    await assert.rejects(
      bakeImage(
        inProcess(setup, { bundle: { path: bundle.path, sha256: wrong } }),
      ),
      (error: unknown) => {
        assert.ok(error instanceof FitsfleetError);
        assert.match(error.message, /failed before it was ready/);
        assert.match(
          error.message,
          new RegExp(
            `bundle sha256 mismatch: expected ${wrong}, got ${bundle.sha256}`,
          ),
        );
        assert.match(error.suggestion ?? "", /fitsfleet-ami-build/);
        return true;
      },
    );
    const [builder] = setup.aws.instances();
    assert.equal(builder?.tags["fitsfleet:ami-build-state"], "failed");
    assert.ok(
      !existsSync(join(builder!.dir, "opt/fitsfleet")),
      "the bundle was not installed",
    );
    await assertNothingLeft(setup);
  });

  it("a builder that never signals ready is ended at the timeout, with its console in the error", async (t) => {
    const setup = await amiSetup(t);
    const silent = setup.aws.registerImage({ name: "silent", argv: IDLE });
    const started = Date.now();
    await assert.rejects(
      bakeImage(
        inProcess(setup, {
          baseImage: silent,
          bundle: fakeBundle(t, VERSION),
          readyTimeoutMs: 1500,
        }),
      ),
      /did not signal ready within 2 s; its console output ends with:\n\(the console output is empty so far\)/,
    );
    assert.ok(Date.now() - started < 20_000);
    await assertNothingLeft(setup);
  });

  it("an interrupted bake (SIGINT) ends its builder and deletes its bundle", async (t) => {
    const setup = await amiSetup(t);
    const silent = setup.aws.registerImage({ name: "silent", argv: IDLE });
    const child = spawn(
      process.execPath,
      [
        CLI,
        "ami",
        "bake",
        "--bundle-location",
        `s3://${setup.s3.bucket}/bundles`,
        "--base-image",
        silent,
        "--interval",
        "1s",
      ],
      {
        env: { ...process.env, ...setup.env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    t.after(() => child.kill("SIGKILL"));
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", resolve),
    );
    await setup.aws.waitFor(
      (all) => all.some((i) => i.state === "running"),
      60_000,
    );
    assert.deepEqual(
      (await bucketKeys(setup)).map((k) => k.replace(/^.*\//, "")),
      ["bake.json", `fitsfleet-${VERSION}.tar.gz`],
      "the heartbeat and the bundle are up",
    );
    child.kill("SIGINT");
    assert.equal(await exited, 130, stderr);
    assert.match(
      stderr,
      /the bake failed: terminating the builder i-[0-9a-f]+, deleting the bundle s3:\/\//,
    );
    await assertNothingLeft(setup);
  });

  it("an image that fails after it was created is deleted with its snapshot", async (t) => {
    const setup = await amiSetup(t);
    const { aws } = setup;
    await assert.rejects(
      bakeImage(
        inProcess(setup, {
          bundle: fakeBundle(t, VERSION),
          onStep: (step) => {
            if (step === "available") {
              // EC2 refuses every look at the new image.
              aws.injectThrottle("DescribeImages", 1000);
            }
            if (step === "cleanup") {
              aws.clearFaults();
            }
          },
        }),
      ),
      /throttled DescribeImages on ami-[0-9a-f]+ .*RequestLimitExceeded/,
    );
    assert.ok(
      aws
        .calls()
        .some((c) => c.action === "CreateImage" && c.error === undefined),
      "the image had been created",
    );
    assert.ok(aws.calls().some((c) => c.action === "DeregisterImage"));
    assert.ok(aws.calls().some((c) => c.action === "DeleteSnapshot"));
    await assertNothingLeft(setup);
  });
});
