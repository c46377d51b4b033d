/**
 * What `rebuild run` refuses before it writes anything: a second run while
 * one is active (named in the error), and, with `--dry-run`, a bad flag,
 * an unreachable Redis, a storage folder it cannot read, a dump it cannot
 * open: each check runs and each failure is reported, with the exit code
 * of lib/errors.ts, and the database is left as it was.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { connect, withClient } from "../../lib/db/connect.js";
import { RUN_APPLICATION_PREFIX, takeRunLock } from "../../lib/run/lock.js";
import { freePort } from "../../lib/stack/index.js";
import { IDLE, testEndpoint } from "../aws/fixtures.js";
import { testArchive } from "../helpers/archive.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { tempDir } from "../helpers/tmp.js";

async function untouched(url: string): Promise<boolean> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_tables WHERE schemaname IN ('public', 'fitsfleet')",
    );
    return Number(rows[0]!.n) === 0;
  });
}

describe("rebuild run: refused before anything is written", () => {
  it("a second run while one is active is refused, naming the active run (exit 3)", async (t) => {
    const archive = testArchive(t, { dumpsPerInstrument: 1 });
    const db = await testDatabase(t, { empty: true });
    const holder = await connect(db.url, {
      applicationName: `${RUN_APPLICATION_PREFIX}r-20261207t0000-abcdef`,
    });
    t.after(() => holder.end());
    await takeRunLock(holder);
    const env = {
      FITSFLEET_DATABASE_URL: db.url,
      FITSFLEET_REDIS_URL: testEnv().redisUrl,
      FITSFLEET_STORAGE: archive.root,
    };
    const second = await runCli(
      ["rebuild", "run", "--queue", uniqueQueueName("lock")],
      env,
    );
    assert.equal(second.code, 3, second.stderr);
    assert.match(
      second.stderr,
      /run r-20261207t0000-abcdef is acting on this database/,
    );
    assert.ok(await untouched(db.url), "the refused run wrote nothing");
    const resume = await runCli(
      ["rebuild", "run", "--resume", "r-20261207t0000-000000"],
      env,
    );
    assert.equal(resume.code, 3, resume.stderr);
    assert.match(resume.stderr, /r-20261207t0000-abcdef is acting/);
    // Once the holder is gone, the lock is free: the dry run says so.
    await holder.end();
    const dry = await runCli(["rebuild", "run", "--dry-run"], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /ok {3}database:/);
  });

  it("--dry-run with a bad flag: exit 2, naming the flag", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const env = {
      FITSFLEET_DATABASE_URL: db.url,
      FITSFLEET_REDIS_URL: testEnv().redisUrl,
      FITSFLEET_STORAGE: tempDir(t),
    };
    const zero = await runCli(
      ["rebuild", "run", "--dry-run", "--instances", "0"],
      env,
    );
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /--instances 0: a whole number from 1 to 5000/);
    const provider = await runCli(
      ["rebuild", "run", "--dry-run", "--provider", "mars"],
      env,
    );
    assert.equal(provider.code, 2);
    assert.match(provider.stderr, /--provider mars: local or ec2/);
    const ec2 = await runCli(
      [
        "rebuild",
        "run",
        "--dry-run",
        "--provider",
        "ec2",
        "--region",
        "us-east-1",
      ],
      env,
    );
    assert.equal(ec2.code, 2);
    assert.match(ec2.stderr, /--provider ec2 needs --image and --subnets/);
    assert.ok(await untouched(db.url));
  });

  it("--dry-run with Redis unreachable, the storage unreadable and the dump missing: every failure reported, nothing written", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const notAFolder = join(tempDir(t), "archive");
    writeFileSync(notAFolder, "a file where the storage folder should be");
    const port = await freePort();
    const r = await runCli(
      [
        "--json",
        "rebuild",
        "run",
        "--dry-run",
        "--from",
        join(tempDir(t), "missing.dump"),
      ],
      {
        FITSFLEET_DATABASE_URL: db.url,
        FITSFLEET_REDIS_URL: `redis://127.0.0.1:${port}`,
        FITSFLEET_STORAGE: notAFolder,
      },
      { timeoutMs: 60_000 },
    );
    // The first failed check's exit code: Redis unreachable is 4.
    assert.equal(r.code, 4, r.stderr);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      checks: { check: string; ok: boolean; detail: string }[];
    };
    assert.equal(report.ok, false);
    const byName = new Map(report.checks.map((c) => [c.check, c]));
    assert.equal(byName.get("database")?.ok, true);
    assert.match(byName.get("database")!.detail, /\d+ migration\(s\) to apply/);
    assert.equal(byName.get("redis")?.ok, false);
    assert.match(
      byName.get("redis")!.detail,
      new RegExp(`127\\.0\\.0\\.1:${port}`),
    );
    assert.equal(byName.get("storage")?.ok, false);
    assert.match(byName.get("storage")!.detail, /not a folder/);
    assert.equal(byName.get("dump")?.ok, false);
    assert.match(byName.get("dump")!.detail, /missing\.dump/);
    assert.match(r.stderr, /preflight failed \(3 of 4 checks\)/);
    assert.ok(await untouched(db.url), "a dry run wrote nothing");
  });

  it("--dry-run of a storage folder that does not exist: exit 3, naming it", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const missing = join(tempDir(t), "nowhere");
    const r = await runCli(["rebuild", "run", "--dry-run"], {
      FITSFLEET_DATABASE_URL: db.url,
      FITSFLEET_REDIS_URL: testEnv().redisUrl,
      FITSFLEET_STORAGE: missing,
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /FAIL storage: .*nowhere/);
    assert.ok(await untouched(db.url));
  });

  it("--dry-run on EC2 (the loopback endpoint): the image, types, subnets and spot prices are checked; an unknown image fails the check (exit 2)", async (t) => {
    const aws = await testEndpoint(t);
    const image = aws.registerImage({ name: "worker", argv: IDLE });
    const db = await testDatabase(t, { empty: true });
    const env = {
      FITSFLEET_DATABASE_URL: db.url,
      FITSFLEET_REDIS_URL: testEnv().redisUrl,
      FITSFLEET_STORAGE: tempDir(t),
      AWS_ENDPOINT_URL_EC2: aws.url,
      AWS_REGION: aws.region,
      AWS_ACCESS_KEY_ID: aws.operatorCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: aws.operatorCredentials.secretAccessKey,
    };
    const args = (ami: string) => [
      "rebuild",
      "run",
      "--dry-run",
      "--provider",
      "ec2",
      "--image",
      ami,
      "--subnets",
      "subnet-0000000000000001a,subnet-0000000000000002b",
      "--instances",
      "3",
    ];
    const ok = await runCli(args(image), env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      new RegExp(
        `ok {3}ec2: image ${image} available; 3 spot instance\\(s\\) at \\$[\\d.]+ to \\$[\\d.]+ an hour`,
      ),
    );
    const bad = await runCli(args("ami-0123456789abcdef0"), env);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stdout, /FAIL ec2: --image ami-0123456789abcdef0/);
    assert.equal(aws.instances().length, 0, "a dry run launched nothing");
    assert.ok(await untouched(db.url));
  });
});
