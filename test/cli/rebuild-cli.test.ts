/**
 * The rebuild as an operator runs it: the real CLI as subprocesses against
 * the test stack, with a storage folder of real files.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";

import { sleep } from "../../lib/exec.js";
import { packageRoot } from "../../lib/paths.js";
import type { EnqueueReport } from "../../lib/rebuild/enqueue.js";
import type { Failure, RebuildStatus } from "../../lib/rebuild/ledger.js";
import { testArchive } from "../helpers/archive.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { tempDir } from "../helpers/tmp.js";

it("rebuild enqueue, worker ingest --empty, status, failures, and the worker lock, from the CLI", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 3 });
  const db = await testDatabase(t);
  const queue = uniqueQueueName("cli");
  const env = {
    FITSFLEET_DATABASE_URL: db.url,
    FITSFLEET_REDIS_URL: testEnv().redisUrl,
    FITSFLEET_STORAGE: archive.root,
  };

  const missing = await runCli(["rebuild", "enqueue", "--queue", queue], {
    ...env,
    FITSFLEET_STORAGE: undefined,
  });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /storage: not set; give --storage DIR/);
  const badRe = await runCli(
    ["rebuild", "enqueue", "--queue", queue, "--file-re", "("],
    env,
  );
  assert.equal(badRe.code, 2);
  assert.match(badRe.stderr, /--file-re "\(": not a valid regular expression/);

  const enqueued = await runCli(
    ["--json", "rebuild", "enqueue", "--queue", queue],
    env,
  );
  assert.equal(enqueued.code, 0, enqueued.stderr);
  const report = JSON.parse(enqueued.stdout) as EnqueueReport;
  const total = archive.good.length + archive.corrupt.length;
  assert.equal(report.queued, total);

  const before = await runCli(["--json", "rebuild", "status"], env);
  assert.equal(
    (JSON.parse(before.stdout) as RebuildStatus).counts.queued,
    total,
  );

  // A worker that keeps running holds its name's lock; a second one of that name refuses.
  const lockDir = tempDir(t, "ff-locks-");
  const holder = spawn(
    process.execPath,
    [
      join(packageRoot(), "dist", "cli", "main.js"),
      "worker",
      "ingest",
      "--queue",
      uniqueQueueName("idle"),
      "--name",
      "north-1",
      "--lockfile",
      "--lock-dir",
      lockDir,
    ],
    {
      env: { ...process.env, ...env, FITSFLEET_LOG_LEVEL: "error" },
      stdio: "ignore",
    },
  );
  t.after(() => holder.kill("SIGKILL"));
  const second = (...extra: string[]) =>
    runCli(
      [
        "worker",
        "ingest",
        "--queue",
        queue,
        "--name",
        "north-1",
        "--lockfile",
        "--lock-dir",
        lockDir,
        "--empty",
        ...extra,
      ],
      env,
    );
  // Wait until the holder has the lock (its pid in the lock file), then try a second worker.
  const lockFile = join(lockDir, "fitsfleet-worker-ingest-north-1.lock");
  for (let i = 0; i < 300; i++) {
    if (
      existsSync(lockFile) &&
      readFileSync(lockFile, "utf8").trim() === String(holder.pid)
    ) {
      break;
    }
    await sleep(100);
  }
  const refused = await second();
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(
    refused.stderr,
    /another ingest worker named north-1 is running on .* \(pid \d+/,
  );
  // SIGTERM: the holder finishes what it has (nothing) and exits cleanly, releasing the lock.
  holder.kill("SIGTERM");
  const code = await new Promise<number | null>((resolve) =>
    holder.once("exit", resolve),
  );
  assert.equal(code, 0);

  const worked = await second("--concurrency", "2");
  assert.equal(worked.code, 0, worked.stderr);
  assert.match(
    worked.stdout,
    new RegExp(`worker north-1: ${total} file\\(s\\)`),
  );

  const after = await runCli(["rebuild", "status"], env);
  assert.equal(after.code, 0, after.stderr);
  assert.match(
    after.stdout,
    new RegExp(
      `done ${archive.good.length} \\(${archive.good.length} new\\), failed ${archive.corrupt.length}`,
    ),
  );
  assert.match(after.stdout, /north-1/);

  // Each failed file once, on one line with its reason; --json keeps the error whole.
  const failures = await runCli(["rebuild", "failures"], env);
  assert.equal(failures.code, 0);
  const lines = failures.stdout.split("\n");
  for (const bad of archive.corrupt) {
    const mine = lines.filter((l) => l.includes(bad.name));
    assert.equal(mine.length, 1, failures.stdout);
    assert.ok(mine[0]!.startsWith(`broken/${bad.name}  `), mine[0]);
    assert.equal(mine[0]!.split(bad.name).length, 2, mine[0]);
    assert.match(mine[0]!, bad.why);
  }
  const failuresJson = await runCli(["--json", "rebuild", "failures"], env);
  const listed = JSON.parse(failuresJson.stdout) as {
    total: number;
    failures: Failure[];
  };
  assert.equal(listed.total, archive.corrupt.length);
  for (const bad of archive.corrupt) {
    const f = listed.failures.find((x) => x.filename === bad.name);
    assert.ok(f, bad.name);
    assert.equal(f.file, `broken/${bad.name}`);
    assert.ok(f.error.startsWith(f.file), f.error);
    assert.ok(f.error.endsWith(f.reason), `${f.error} / ${f.reason}`);
    assert.match(f.reason, bad.why);
  }
  const retried = await runCli(
    ["rebuild", "retry-failed", "--queue", queue],
    env,
  );
  assert.match(
    retried.stdout,
    new RegExp(`queued ${archive.corrupt.length} failed file\\(s\\) again`),
  );
  // Files retried on purpose were taken over from no one: not interruptions.
  const again = await second();
  assert.equal(again.code, 0, again.stderr);
  const retriedStatus = JSON.parse(
    (await runCli(["--json", "rebuild", "status"], env)).stdout,
  ) as RebuildStatus;
  assert.equal(retriedStatus.counts.failed, archive.corrupt.length);
  assert.equal(retriedStatus.interruptions, 0);
  const attempts = (
    JSON.parse(
      (await runCli(["--json", "rebuild", "failures"], env)).stdout,
    ) as { failures: Failure[] }
  ).failures.map((f) => f.attempts);
  assert.deepEqual(
    attempts,
    archive.corrupt.map(() => 2),
    "each failed file was delivered again",
  );
  assert.match(
    (await runCli(["rebuild", "status"], env)).stdout,
    /; 0 interruption\(s\)/,
  );
});

/**
 * Runs `fitsfleet ARGS` until it has written `blocks` refreshes (split by
 * `separator`), then stops it: what `| tee` would have kept, and stderr.
 * Refreshes are counted on either stream, so that ones on the wrong stream
 * fail the test instead of hanging it.
 */
async function watchUntil(
  args: readonly string[],
  env: Record<string, string>,
  separator: string,
  blocks: number,
): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    [join(packageRoot(), "dist", "cli", "main.js"), ...args],
    {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => resolve()),
  );
  await new Promise<void>((resolve, reject) => {
    const seen = () => {
      if (
        stdout.split(separator).length > blocks ||
        stderr.split(separator).length > blocks
      ) {
        resolve();
      }
    };
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      seen();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      seen();
    });
    child.once("exit", (code) =>
      reject(new Error(`exited ${code} early: ${stderr}`)),
    );
  });
  child.kill("SIGTERM");
  await exited;
  return { stdout, stderr };
}

it("rebuild status --watch writes each refresh to stdout: a block with its time, or a JSON document a line", async (t) => {
  const db = await testDatabase(t);
  const env = { FITSFLEET_DATABASE_URL: db.url };
  const json = await watchUntil(
    ["--json", "rebuild", "status", "--watch", "1"],
    env,
    "\n",
    2,
  );
  const docs = json.stdout
    .split("\n")
    .slice(0, 2)
    .map((line) => JSON.parse(line) as RebuildStatus & { at: string });
  for (const doc of docs) {
    assert.ok(!Number.isNaN(Date.parse(doc.at)), doc.at);
    assert.equal(doc.total, 0);
    assert.equal(doc.counts.queued, 0);
  }
  assert.ok(docs[1]!.at > docs[0]!.at);
  assert.doesNotMatch(json.stderr, /counts|progress/);

  const text = await watchUntil(
    ["rebuild", "status", "--watch", "1"],
    env,
    "\n\n",
    2,
  );
  const blocks = text.stdout.split("\n\n").slice(0, 2);
  for (const block of blocks) {
    assert.match(block, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\nfiles: 0 /);
  }
  assert.doesNotMatch(text.stderr, /files:/);
});
