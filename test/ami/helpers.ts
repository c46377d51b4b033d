/**
 * What the image tests share: a loopback AWS endpoint with an s3rver that
 * takes the instances' role credentials, a "Debian 12" base image whose
 * boot is test/ami/cloud-init.mjs (cloud-init and systemd, minimally),
 * registered under Debian's public SSM parameter, and a small fake bundle
 * for bakes that need not carry the real one.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";

import { PutParameterCommand } from "@aws-sdk/client-ssm";

import { DEBIAN_12_PARAMETER } from "../../ami/bake.js";
import {
  type AwsEndpoint,
  type RolePolicy,
  startAwsEndpoint,
} from "../aws/endpoint.js";
import { operatorEnv } from "../aws/fixtures.js";
import { type TestS3, testS3 } from "../helpers/s3.js";
import { tempDir } from "../helpers/tmp.js";

export const BUILDER_PROFILE = "fitsfleet-ami-builder";
export const CLOUD_INIT = fileURLToPath(
  new URL("./cloud-init.mjs", import.meta.url),
);
/** Debian's account, which owns its public images. */
const DEBIAN_OWNER = "136693071363";

export interface AmiSetup {
  aws: AwsEndpoint;
  s3: TestS3;
  /** The endpoint's folder: images are under images/<id>. */
  root: string;
  debian: string;
  /** Environment for the CLI: the loopback EC2/SSM as the operator, s3rver for S3. */
  env: Record<string, string>;
}

export async function amiSetup(
  t: Pick<TestContext, "after">,
  options: {
    roles?: Record<string, RolePolicy>;
    instanceEnv?: Record<string, string>;
  } = {},
): Promise<AmiSetup> {
  const s3 = await testS3(t, "images", { anyAccessKey: true });
  const root = tempDir(t, "ff-aws-");
  const aws = await startAwsEndpoint({
    root,
    terminateGraceMs: 2000,
    roles: { [BUILDER_PROFILE]: {}, ...options.roles },
    s3Endpoint: s3.endpoint,
    instanceCredentials: "imds",
    instanceEnv: options.instanceEnv,
    policy: { requireEncryptedVolumes: true, maxHopLimit: 1 },
  });
  t.after(() => aws.close());
  const debian = aws.registerImage({
    name: "debian-12-amd64-20250610-2137",
    argv: [process.execPath, CLOUD_INIT],
    ownerId: DEBIAN_OWNER,
  });
  await aws.ssmClient().send(
    new PutParameterCommand({
      Name: DEBIAN_12_PARAMETER,
      Value: debian,
      Type: "String",
    }),
  );
  const env = {
    ...operatorEnv(aws),
    FITSFLEET_S3_ENDPOINT: s3.endpoint,
  };
  return { aws, s3, root, debian, env };
}

/**
 * A bundle with the layout of the real one and nothing else: a CLI that
 * prints `version` and an empty sharp, enough for the builder's checks.
 */
export function fakeBundle(
  t: Pick<TestContext, "after">,
  version: string,
): { path: string; sha256: string } {
  const dir = tempDir(t, "ff-fake-bundle-");
  const top = join(dir, "fitsfleet");
  mkdirSync(join(top, "dist", "cli"), { recursive: true });
  mkdirSync(join(top, "node_modules", "sharp"), { recursive: true });
  writeFileSync(
    join(top, "dist", "cli", "main.js"),
    `console.log(${JSON.stringify(version)});\n`,
  );
  writeFileSync(join(top, "node_modules", "sharp", "index.js"), "");
  writeFileSync(
    join(top, "node_modules", "sharp", "package.json"),
    '{"name":"sharp","main":"index.js"}\n',
  );
  const path = join(dir, "bundle.tar.gz");
  execFileSync("tar", ["-czf", path, "-C", dir, "fitsfleet"]);
  return {
    path,
    sha256: createHash("sha256").update(readFileSync(path)).digest("hex"),
  };
}

/** The lines of an instance's console. */
export function consoleOf(aws: AwsEndpoint, instanceId: string): string {
  return readFileSync(
    join(aws.instance(instanceId).dir, "console.log"),
    "utf8",
  );
}
