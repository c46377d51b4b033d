/**
 * The boot's bundle check (ami/verify.ts). On its own: an installed folder
 * made as the builder makes it (the archive unpacked, the archive and its
 * sha256 kept beside) passes; a changed, missing or extra file, a changed
 * link, or a changed archive fails with the expected and actual sha256.
 * End to end: an image baked by the real `ami bake` from this package's
 * bundle, whose disk is then tampered with, boots through its systemd unit
 * (test/ami/cloud-init.mjs): the boot stops with one log line naming both
 * sha256 and what to do, no worker starts, no secret is read, the unit
 * fails and the machine powers off.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import { PutParameterCommand } from "@aws-sdk/client-ssm";

import {
  BUNDLE_ARCHIVE,
  BUNDLE_SHA256_FILE,
  BundleMismatchError,
  verifyInstalledBundle,
} from "../../ami/verify.js";
import { encryptedRoot, IMDS_V2_ONLY } from "../../infra/ec2.js";
import {
  renderFleetConfig,
  secretParameter,
} from "../../infra/fleet-config.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";
import { amiSetup, consoleOf } from "./helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const sha256 = (path: string) =>
  createHash("sha256").update(readFileSync(path)).digest("hex");

/** A bundle with a path longer than tar's 100 bytes and a symlink, installed as the builder installs it. */
function installed(
  t: Parameters<typeof tempDir>[0],
  format: "gnu" | "posix",
): { root: string; archive: string } {
  const dir = tempDir(t, "ff-verify-");
  const top = join(dir, "stage", "fitsfleet");
  const deep = join(top, "node_modules", "a".repeat(60), "b".repeat(60));
  mkdirSync(join(top, "dist", "cli"), { recursive: true });
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(top, "dist", "cli", "main.js"), "console.log(1);\n");
  writeFileSync(join(deep, "index.js"), "module.exports = 2;\n");
  writeFileSync(join(top, "empty.txt"), "");
  symlinkSync("dist/cli/main.js", join(top, "main-link.js"));
  const archive = join(dir, "bundle.tar.gz");
  execFileSync("tar", [
    `--format=${format}`,
    "-czf",
    archive,
    "-C",
    join(dir, "stage"),
    "fitsfleet",
  ]);
  const root = join(dir, "opt", "fitsfleet");
  mkdirSync(root, { recursive: true });
  execFileSync("tar", ["-xzf", archive, "-C", root, "--strip-components=1"]);
  copyFileSync(archive, join(root, BUNDLE_ARCHIVE));
  writeFileSync(join(root, BUNDLE_SHA256_FILE), `${sha256(archive)}\n`);
  return { root, archive };
}

async function mismatch(root: string): Promise<BundleMismatchError> {
  const error = await verifyInstalledBundle(root).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof BundleMismatchError, String(error));
  return error;
}

describe("the installed bundle's check", () => {
  for (const format of ["gnu", "posix"] as const) {
    it(`passes the folder the builder installed (${format} tar), and fails it once anything in it changed`, async (t) => {
      const { root, archive } = installed(t, format);
      const bundle = sha256(archive);
      assert.deepEqual(await verifyInstalledBundle(root), {
        state: "verified",
        sha256: bundle,
        files: 3,
      });

      const deepFile = join(
        root,
        "node_modules",
        "a".repeat(60),
        "b".repeat(60),
        "index.js",
      );
      const original = readFileSync(deepFile);
      appendFileSync(deepFile, "process.exit(0);\n");
      const changed = await mismatch(root);
      assert.equal(
        changed.mismatch.file,
        `node_modules/${"a".repeat(60)}/${"b".repeat(60)}/index.js`,
      );
      assert.equal(
        changed.mismatch.expected,
        createHash("sha256").update(original).digest("hex"),
      );
      assert.equal(changed.mismatch.actual, sha256(deepFile));
      assert.equal(changed.mismatch.bundle, bundle);
      assert.match(changed.message, /^bundle sha256 mismatch: /);
      assert.match(changed.suggestion ?? "", /fitsfleet ami bake/);
      writeFileSync(deepFile, original);

      rmSync(join(root, "empty.txt"));
      assert.equal((await mismatch(root)).mismatch.actual, "missing");
      writeFileSync(join(root, "empty.txt"), "");

      writeFileSync(join(root, "dist", "extra.js"), "evil();\n");
      const extra = await mismatch(root);
      assert.equal(extra.mismatch.file, "dist/extra.js");
      assert.equal(extra.mismatch.expected, "absent");
      rmSync(join(root, "dist", "extra.js"));

      rmSync(join(root, "main-link.js"));
      symlinkSync("empty.txt", join(root, "main-link.js"));
      assert.equal((await mismatch(root)).mismatch.actual, "empty.txt");
      rmSync(join(root, "main-link.js"));
      symlinkSync("dist/cli/main.js", join(root, "main-link.js"));

      assert.equal((await verifyInstalledBundle(root)).state, "verified");

      appendFileSync(join(root, BUNDLE_ARCHIVE), "x");
      const archived = await mismatch(root);
      assert.equal(archived.mismatch.file, undefined);
      assert.equal(archived.mismatch.expected, bundle);
      assert.equal(
        archived.mismatch.actual,
        sha256(join(root, BUNDLE_ARCHIVE)),
      );
    });
  }

  it("leaves a folder that was never baked alone (a checkout)", async (t) => {
    assert.deepEqual(await verifyInstalledBundle(tempDir(t, "ff-verify-")), {
      state: "not-baked",
    });
  });
});

const WORKER_PROFILE = "fitsfleet-worker";
const PREFIX = "/fitsfleet/verify/";

it("a baked image whose bundle was tampered with stops at boot: one clear line, no worker, no secret read, the machine powers off", async (t) => {
  const setup = await amiSetup(t, {
    roles: { [WORKER_PROFILE]: { ssmReadPrefixes: [PREFIX] } },
  });
  const { aws } = setup;
  const bake = await runCli(
    [
      "--json",
      "ami",
      "bake",
      "--bundle-location",
      `s3://${setup.s3.bucket}/bundles`,
      "--interval",
      "1s",
    ],
    setup.env,
  );
  assert.equal(bake.code, 0, bake.stderr);
  const baked = JSON.parse(bake.stdout) as {
    imageId: string;
    bundle: { sha256: string };
  };
  const ssm = aws.ssmClient();
  for (const [key, value] of [
    ["databaseUrl", "postgres://fleet:not-this-one@db.invalid/archive"],
    ["redisUrl", "redis://:not-this-one@redis.invalid:6379"],
  ] as const) {
    await ssm.send(
      new PutParameterCommand({
        Name: secretParameter(PREFIX, key),
        Value: value,
        Type: "SecureString",
      }),
    );
  }
  const userData = renderFleetConfig({
    fitsfleet: 1,
    fleet: "verify",
    run: "verify",
    region: aws.region,
    secretsPrefix: PREFIX,
    queue: "verify",
    ingestWorkers: 1,
    previewWorkers: 0,
    fastRebuild: false,
    makePreviews: false,
    deadline: new Date(Date.now() + 3600_000).toISOString(),
  });
  const boot = async () => {
    const launched = await aws.ec2Client().send(
      new RunInstancesCommand({
        ImageId: baked.imageId,
        InstanceType: "c6i.large",
        MinCount: 1,
        MaxCount: 1,
        IamInstanceProfile: { Name: WORKER_PROFILE },
        InstanceInitiatedShutdownBehavior: "terminate",
        MetadataOptions: IMDS_V2_ONLY,
        BlockDeviceMappings: [encryptedRoot("/dev/xvda", {})],
        UserData: Buffer.from(userData).toString("base64"),
      }),
    );
    const id = launched.Instances![0]!.InstanceId!;
    await aws.waitFor(
      (all) => all.find((i) => i.id === id)?.state === "terminated",
      60_000,
    );
    assert.equal(
      aws.instance(id).stateReason?.code,
      "Client.InstanceInitiatedShutdown",
      "the machine powered itself off",
    );
    return { id, log: consoleOf(aws, id) };
  };
  const image = join(setup.root, "images", baked.imageId, "opt", "fitsfleet");
  const checkLine = (log: string) => {
    const lines = log
      .split("\n")
      .filter((l) => l.includes("bundle sha256 mismatch: no worker starts"));
    assert.equal(lines.length, 1, log);
    assert.match(lines[0]!, /^ERROR /);
    assert.match(lines[0]!, /action=".*fitsfleet ami bake/);
    assert.doesNotMatch(log, /worker started|booted/);
    assert.match(log, /systemd: fitsfleet-boot\.service exited 3/);
    return lines[0]!;
  };

  // A file of the installed fitsfleet changed on the image's disk.
  const file = join(image, "dist", "lib", "errors.js");
  const original = readFileSync(file);
  appendFileSync(file, "\n// changed after the bake\n");
  const changed = await boot();
  const line = checkLine(changed.log);
  assert.match(line, /file=dist\/lib\/errors\.js/);
  assert.match(
    line,
    new RegExp(
      `expected=${createHash("sha256").update(original).digest("hex")}`,
    ),
  );
  assert.match(line, new RegExp(`actual=${sha256(file)}`));
  assert.match(line, new RegExp(`bundle=${baked.bundle.sha256}`));
  writeFileSync(file, original);

  // The archive itself replaced (as by a bundle that was changed in S3 and copied in).
  const archive = join(image, BUNDLE_ARCHIVE);
  appendFileSync(archive, "tampered");
  const replaced = await boot();
  const archiveLine = checkLine(replaced.log);
  assert.match(archiveLine, new RegExp(`expected=${baked.bundle.sha256}`));
  assert.match(archiveLine, new RegExp(`actual=${sha256(archive)}`));

  assert.deepEqual(
    aws
      .ssmReads()
      .filter((r) => [changed.id, replaced.id].includes(r.principal)),
    [],
    "no secret was read by a boot that failed its check",
  );
});
