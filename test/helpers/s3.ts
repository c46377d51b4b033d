/**
 * A real S3 endpoint for tests: s3rver in its own process on a loopback
 * port, with a fresh bucket and folder, stopped when the test ends. Its paged
 * listings need the legacy OpenSSL provider (md5 of XML bodies), hence the
 * flag on that process only.
 *
 * A test that is cancelled (a timeout) or a test process that is killed never
 * runs its `after` hooks, and an s3rver left behind keeps running for good.
 * So the server carries a watchdog (`WATCHDOG`, preloaded): it exits when its
 * stdin, a pipe from the process that started it, reaches its end, which the
 * kernel brings about when that process dies however it dies; and, should
 * the pipe be shared by mistake, when it is handed to a new parent.
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
  /** The server's process id. */
  pid: number;
  bucket: string;
  client: S3Client;
  /** Environment for a fitsfleet subprocess or in-process AWS SDK clients. */
  env: Record<string, string>;
}

const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

/** Preloaded into the server (see the top of this file). */
const WATCHDOG = `
const parent = process.ppid;
const stop = () => process.exit(0);
process.stdin.on("end", stop).on("error", stop).resume();
setInterval(() => process.ppid !== parent && stop(), 1000).unref();
`;

/**
 * Preloaded with `anyAccessKey`: s3rver knows one access key; this makes it
 * take any, as S3 takes the role credentials of an instance on the loopback
 * AWS endpoint (s3rver checks no SigV4 signature either way).
 */
const anyKey = (accountModule: string) => `
import { createRequire } from "node:module";
const Account = createRequire(${JSON.stringify(accountModule)})(${JSON.stringify(accountModule)});
const get = Account.registry.get.bind(Account.registry);
Account.registry.get = (id) => get(id) ?? Account.DUMMY_ACCOUNT;
`;

export async function testS3(
  t: Pick<TestContext, "after">,
  bucket = "archive",
  options: { anyAccessKey?: boolean } = {},
): Promise<TestS3> {
  const require = createRequire(import.meta.url);
  const home = dirname(require.resolve("s3rver/package.json"));
  const bin = join(home, "bin", "s3rver.js");
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      "--openssl-legacy-provider",
      "--import",
      `data:text/javascript,${encodeURIComponent(WATCHDOG)}`,
      ...(options.anyAccessKey === true
        ? [
            "--import",
            `data:text/javascript,${encodeURIComponent(anyKey(join(home, "lib", "models", "account.js")))}`,
          ]
        : []),
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
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  t.after(() => {
    child.kill("SIGTERM");
  });
  if (child.pid === undefined) {
    throw new Error("s3rver did not start: no process");
  }
  const pid = child.pid;
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
    pid,
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
