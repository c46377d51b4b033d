/**
 * A real S3 endpoint for tests: s3rver in its own process on a loopback
 * port, with a fresh bucket and folder, stopped when the test ends. Its paged
 * listings need the legacy OpenSSL provider (md5 of XML bodies), hence the
 * flag on that process only.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { TestContext } from "node:test";

import { S3Client } from "@aws-sdk/client-s3";

import { freePort } from "../../lib/stack/index.js";
import { tempDir } from "./tmp.js";

export interface TestS3 {
  endpoint: string;
  bucket: string;
  client: S3Client;
  /** Environment for a fitsfleet subprocess or in-process AWS SDK clients. */
  env: Record<string, string>;
}

const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export async function testS3(
  t: TestContext,
  bucket = "archive",
): Promise<TestS3> {
  const require = createRequire(import.meta.url);
  const bin = join(
    dirname(require.resolve("s3rver/package.json")),
    "bin",
    "s3rver.js",
  );
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      "--openssl-legacy-provider",
      bin,
      "-d",
      tempDir(t, "ff-s3-"),
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "--configure-bucket",
      bucket,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => {
    child.kill("SIGTERM");
  });
  await new Promise<void>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => reject(new Error(`s3rver did not start: ${output}`)),
      15_000,
    );
    const onData = (d: Buffer) => {
      output += d.toString();
      if (/listening/i.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited ${code}: ${output}`));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDENTIALS,
  });
  t.after(() => client.destroy());
  process.env.AWS_ACCESS_KEY_ID ??= CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= CREDENTIALS.secretAccessKey;
  return {
    endpoint,
    bucket,
    client,
    env: {
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_REGION: "us-east-1",
      FITSFLEET_S3_ENDPOINT: endpoint,
    },
  };
}
