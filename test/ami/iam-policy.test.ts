/**
 * The worker image's IAM policies (`infra iam-policy --bundle-location`):
 * the operator's for `ami bake`, `list`, `prune` and `sweep`, and the
 * builder's instance role. Checked three ways: every AWS command the ami
 * code constructs is allowed (read from its source, so a new call without
 * its permission fails here); every call a real bake (one that succeeds,
 * one that fails and cleans up), list, prune and sweep make on the loopback
 * endpoint is allowed, the builder's own calls by the builder's policy;
 * and the statements are least-privilege: tagged resources only, IMDSv2
 * only, the builder role only, the bundle location only.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { S3Client } from "@aws-sdk/client-s3";

import { bakeImage, DEBIAN_12_PARAMETER } from "../../ami/bake.js";
import { BUILD_TAG } from "../../ami/images.js";
import {
  AMI_BUILD_STATE_TAG,
  AMI_BUILD_TAG,
  amiPolicies,
  DEBIAN_12_PARAMETER_PATH,
  type PolicyDocument,
} from "../../infra/iam-policy.js";
import { UsageError } from "../../lib/errors.js";
import { packageRoot, packageVersion } from "../../lib/paths.js";
import { runCli } from "../helpers/cli.js";
import { amiSetup, BUILDER_PROFILE, fakeBundle } from "./helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { ami, builder } = amiPolicies({
  bundleLocation: "s3://fitsfleet-bundles/images",
  account: "123456789012",
  region: "us-west-2",
});

function allows(document: PolicyDocument, action: string): boolean {
  return document.Statement.some((s) =>
    s.Action.some(
      (a) =>
        a === action || (a.endsWith("*") && action.startsWith(a.slice(0, -1))),
    ),
  );
}

function statements(document: PolicyDocument, action: string) {
  const found = document.Statement.filter((s) => s.Action.includes(action));
  assert.ok(found.length > 0, `no statement allows ${action}`);
  return found;
}

/** The IAM action of each S3 command the code sends. */
const S3_ACTIONS: Record<string, string> = {
  PutObject: "s3:PutObject",
  GetObject: "s3:GetObject",
  HeadObject: "s3:GetObject",
  DeleteObject: "s3:DeleteObject",
  ListObjectsV2: "s3:ListBucket",
};

/** `service:Action` of every SDK command constructed in a file. */
function commandsIn(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const service = new Map<string, string>();
  for (const m of text.matchAll(
    /import\s*\{([^}]*)\}\s*from\s*"@aws-sdk\/client-(ec2|s3|ssm)"/g,
  )) {
    for (const name of m[1]!.split(",")) {
      const clean = name.replace(/\btype\b/, "").trim();
      if (clean.endsWith("Command")) {
        service.set(clean, m[2]!);
      }
    }
  }
  return [...text.matchAll(/new (\w+Command)\(/g)].map((m) => {
    const name = m[1]!;
    const svc = service.get(name);
    assert.ok(svc !== undefined, `${file}: ${name} is not an AWS SDK command`);
    const action = name.slice(0, -"Command".length);
    return svc === "s3"
      ? (S3_ACTIONS[action] ?? `s3:${action}`)
      : `${svc}:${action}`;
  });
}

describe("the image policies", () => {
  it("allow every AWS call in the ami code: the operator's in bake, images, sweep and the ami commands; the builder's in its script", () => {
    const root = packageRoot();
    const files = [
      ...["bake.ts", "images.ts", "sweep.ts"].map((f) => join(root, "ami", f)),
      ...readdirSync(join(root, "cli/commands/ami")).map((f) =>
        join(root, "cli/commands/ami", f),
      ),
    ];
    const called = new Set(files.flatMap(commandsIn));
    assert.ok(
      called.has("ec2:RunInstances") && called.has("s3:ListBucket"),
      [...called].join(" "),
    );
    for (const action of called) {
      assert.ok(allows(ami, action), `the ami policy does not allow ${action}`);
    }
    // The builder's client (no SDK): S3 GETs of the bundle, and CreateTags on itself.
    const script = readFileSync(join(root, "ami/builder-aws.mjs"), "utf8");
    assert.match(script, /Action=CreateTags|"CreateTags"|CreateTags/);
    assert.deepEqual(builder.Statement.flatMap((s) => s.Action).sort(), [
      "ec2:CreateTags",
      "s3:GetObject",
    ]);
  });

  it("are least privilege: a tagged builder only, IMDSv2 only, the builder role only, tagged images and snapshots only, the bundle location only", () => {
    assert.equal(AMI_BUILD_TAG, BUILD_TAG);
    assert.equal(`/${DEBIAN_12_PARAMETER_PATH}`, DEBIAN_12_PARAMETER);
    const launch = statements(ami, "ec2:RunInstances").find((s) =>
      JSON.stringify(s.Resource).includes("instance/"),
    )!;
    assert.equal(
      launch.Condition?.StringEquals?.["ec2:MetadataHttpTokens"],
      "required",
    );
    assert.deepEqual(launch.Condition?.Null, {
      [`aws:RequestTag/${BUILD_TAG}`]: "false",
    });
    for (const action of [
      "ec2:TerminateInstances",
      "ec2:DeregisterImage",
      "ec2:DeleteSnapshot",
      "ec2:GetConsoleOutput",
    ]) {
      for (const s of statements(ami, action)) {
        assert.deepEqual(
          s.Condition?.Null,
          { [`aws:ResourceTag/${BUILD_TAG}`]: "false" },
          action,
        );
      }
    }
    for (const s of statements(ami, "ec2:CreateImage")) {
      assert.ok(
        s.Condition?.Null !== undefined,
        "from a tagged builder, tagged at creation",
      );
    }
    const [tags] = statements(ami, "ec2:CreateTags");
    assert.deepEqual(tags!.Condition?.StringEquals?.["ec2:CreateAction"], [
      "RunInstances",
      "CreateImage",
    ]);
    const [pass] = statements(ami, "iam:PassRole");
    assert.equal(
      pass!.Resource,
      "arn:aws:iam::123456789012:role/fitsfleet-ami-builder",
    );
    assert.equal(
      pass!.Condition?.StringEquals?.["iam:PassedToService"],
      "ec2.amazonaws.com",
    );
    const [param] = statements(ami, "ssm:GetParameter");
    assert.equal(
      param!.Resource,
      `arn:aws:ssm:us-west-2::parameter/${DEBIAN_12_PARAMETER_PATH}`,
    );
    for (const action of ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]) {
      assert.deepEqual(
        statements(ami, action).map((s) => s.Resource),
        ["arn:aws:s3:::fitsfleet-bundles/images/*"],
        action,
      );
    }
    const [list] = statements(ami, "s3:ListBucket");
    assert.deepEqual(list!.Condition?.StringLike, { "s3:prefix": "images/*" });
    assert.ok(
      !ami.Statement.some(
        (s) =>
          s.Resource === "*" &&
          s.Action.some(
            (a) => !a.startsWith("ec2:Describe") && a !== "ec2:CreateTags",
          ),
      ),
      "nothing but describing (and tagging at creation) on every resource",
    );
    assert.ok(
      !ami.Statement.some((s) => s.Action.some((a) => a.startsWith("kms:"))),
    );

    const [read] = statements(builder, "s3:GetObject");
    assert.equal(read!.Resource, "arn:aws:s3:::fitsfleet-bundles/images/*");
    const [self] = statements(builder, "ec2:CreateTags");
    assert.deepEqual(self!.Condition?.Null, {
      [`aws:ResourceTag/${BUILD_TAG}`]: "false",
    });
    assert.deepEqual(self!.Condition?.["ForAllValues:StringEquals"], {
      "aws:TagKeys": [AMI_BUILD_STATE_TAG],
    });

    assert.throws(
      () => amiPolicies({ bundleLocation: "/tmp/bundles" }),
      (e: unknown) =>
        e instanceof UsageError &&
        /--bundle-location \/tmp\/bundles/.test(e.message),
    );
    assert.throws(
      () =>
        amiPolicies({ bundleLocation: "s3://b/p", builderRole: "no spaces" }),
      (e: unknown) =>
        e instanceof UsageError && /--builder-role no spaces/.test(e.message),
    );
  });

  it("allow every call that a bake (one that succeeds, one that fails), ami list, prune and sweep make on the endpoint", async (t) => {
    const setup = await amiSetup(t);
    const { aws } = setup;
    const before = aws.calls().length;
    const location = `s3://${setup.s3.bucket}/bundles`;
    const s3 = new S3Client({
      endpoint: setup.s3.endpoint,
      region: aws.region,
      forcePathStyle: true,
      credentials: aws.operatorCredentials,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    t.after(() => s3.destroy());
    const options = {
      ec2: aws.ec2Client(),
      ssm: aws.ssmClient(),
      s3,
      region: aws.region,
      bundleLocation: location,
      instanceProfile: BUILDER_PROFILE,
      commit: "0123456789abcdef0123456789abcdef01234567",
      pollMs: 100,
      readyTimeoutMs: 60_000,
    };
    const bundle = fakeBundle(t, packageVersion());
    const baked = await bakeImage({ ...options, bundle });
    await assert.rejects(
      bakeImage({
        ...options,
        bundle: { path: bundle.path, sha256: "0".repeat(64) },
      }),
      /bundle sha256 mismatch/,
    );
    for (const args of [
      ["ami", "list"],
      ["ami", "prune", "--keep", "0", "--yes"],
      ["ami", "sweep", "--bundle-location", location, "--yes"],
    ]) {
      const r = await runCli(args, setup.env);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    }
    const calls = aws.calls().slice(before);
    const operator = new Set(
      calls
        .filter((c) => c.principal === "operator")
        .map((c) => `${c.service}:${c.action}`),
    );
    for (const action of [
      "ssm:GetParameter",
      "ec2:RunInstances",
      "ec2:CreateImage",
      "ec2:TerminateInstances",
      "ec2:DeregisterImage",
      "ec2:DeleteSnapshot",
      "ec2:GetConsoleOutput",
    ]) {
      assert.ok(
        operator.has(action),
        `the run made ${action}: ${[...operator].join(" ")}`,
      );
    }
    for (const action of operator) {
      assert.ok(
        allows(ami, action),
        `the ami policy does not allow ${action}, which the run called`,
      );
    }
    const builders = new Set([baked.builder]);
    const byBuilders = calls.filter((c) => c.principal !== "operator");
    assert.ok(
      byBuilders.some((c) => builders.has(c.principal)),
      "the builder tagged itself",
    );
    for (const c of byBuilders) {
      assert.ok(
        allows(builder, `${c.service}:${c.action}`),
        `the builder's policy does not allow ${c.service}:${c.action}`,
      );
    }
  });

  it("`infra iam-policy` prints the image policies with --bundle-location, and asks for it when they are asked for", async () => {
    const all = await runCli([
      "--json",
      "--storage",
      "s3://gemini-archive/data",
      "infra",
      "iam-policy",
      "--worker-role",
      "fitsfleet-worker",
      "--bundle-location",
      "s3://fitsfleet-bundles/images",
      "--builder-role",
      "my-builder",
    ]);
    assert.equal(all.code, 0, all.stderr);
    const printed = JSON.parse(all.stdout) as Record<string, PolicyDocument>;
    assert.deepEqual(Object.keys(printed).sort(), [
      "ami",
      "builder",
      "operator",
      "worker",
    ]);
    assert.ok(
      printed.ami!.Statement.some(
        (s) => s.Resource === "arn:aws:iam::*:role/my-builder",
      ),
    );
    const human = await runCli([
      "infra",
      "iam-policy",
      "--worker-role",
      "w",
      "--bundle-location",
      "s3://fitsfleet-bundles/images",
      "--which",
      "builder",
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      /^# the image builder's role fitsfleet-ami-builder/,
    );
    const bare = await runCli([
      "--json",
      "infra",
      "iam-policy",
      "--worker-role",
      "w",
      "--bundle-location",
      "s3://fitsfleet-bundles/images",
      "--which",
      "ami",
    ]);
    assert.equal(bare.code, 0, bare.stderr);
    const document = JSON.parse(bare.stdout) as PolicyDocument;
    assert.equal(
      document.Version,
      "2012-10-17",
      "the bare document, for aws iam",
    );
    assert.ok(document.Statement.some((s) => s.Sid === "AmiBundles"));
    const missing = await runCli([
      "infra",
      "iam-policy",
      "--worker-role",
      "w",
      "--which",
      "ami",
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--which ami needs --bundle-location/);
  });
});
