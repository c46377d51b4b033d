/**
 * Fault drills: a worker killed with SIGKILL in the middle of a batch, and
 * Redis losing the queue mid-run. Afterwards every file is ingested exactly
 * once in effect: one present diskfile and one header per file.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import { withClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import { createLogger } from "../../lib/logger.js";
import { packageRoot } from "../../lib/paths.js";
import { enqueue } from "../../lib/rebuild/enqueue.js";
import { reconcile } from "../../lib/rebuild/ledger.js";
import { withIngestQueue } from "../../lib/rebuild/queue.js";
import { openStorage } from "../../lib/storage/index.js";
import { runIngestWorker } from "../../worker/ingest.js";
import { testArchive } from "../helpers/archive.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { ownRedis } from "../helpers/redis.js";

const logger = createLogger({ level: "error" });

async function ledger(url: string) {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{
      state: string;
      n: string;
      redelivered: string;
    }>(
      `SELECT state, count(*) AS n, count(*) FILTER (WHERE attempts > 1) AS redelivered
         FROM fitsfleet.ingest_ledger GROUP BY state`,
    );
    const by = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    return {
      done: by.done ?? 0,
      failed: by.failed ?? 0,
      open: (by.queued ?? 0) + (by.active ?? 0),
      redelivered: rows.reduce((n, r) => n + Number(r.redelivered), 0),
    };
  });
}

/** Every good file once: one present diskfile with one header, and nothing else. */
async function assertExactlyOnce(url: string, files: number): Promise<void> {
  await withClient(url, async (c) => {
    const { rows } = await c.query<{
      diskfiles: string;
      present: string;
      headers: string;
      names: string;
    }>(
      `SELECT (SELECT count(*) FROM diskfile) AS diskfiles,
              (SELECT count(*) FROM diskfile WHERE present) AS present,
              (SELECT count(*) FROM header) AS headers,
              (SELECT count(DISTINCT name) FROM file) AS names`,
    );
    const r = rows[0]!;
    assert.deepEqual(
      [
        Number(r.diskfiles),
        Number(r.present),
        Number(r.headers),
        Number(r.names),
      ],
      [files, files, files, files],
    );
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  ms = 120_000,
  every = 100,
) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(every);
  }
}

async function setup(t: TestContext, redisUrl: string) {
  const archive = testArchive(t, { dumpsPerInstrument: 12 });
  const db = await testDatabase(t);
  const queue = uniqueQueueName("fault");
  const storage = openStorage(archive.root);
  t.after(() => storage.close());
  await enqueue({
    databaseUrl: db.url,
    redisUrl,
    queue,
    storage,
    storageLocation: archive.root,
    batchSize: 8,
  });
  return { archive, db, queue };
}

describe("rebuild fault drills", () => {
  it("a worker killed with SIGKILL mid-batch loses nothing: another worker finishes, each file once", async (t) => {
    const { archive, db, queue } = await setup(t, testEnv().redisUrl);
    const child = spawn(
      process.execPath,
      [
        join(packageRoot(), "dist", "cli", "main.js"),
        "worker",
        "ingest",
        "--name",
        "doomed",
        "--queue",
        queue,
        "--stall-timeout",
        "2",
      ],
      {
        env: {
          ...process.env,
          FITSFLEET_DATABASE_URL: db.url,
          FITSFLEET_REDIS_URL: testEnv().redisUrl,
          FITSFLEET_LOG_LEVEL: "error",
        },
        stdio: "ignore",
      },
    );
    t.after(() => child.kill("SIGKILL"));
    // Polled often: the kill must land while work is left.
    await waitFor(
      "the first batch",
      async () => (await ledger(db.url)).done > 0,
      120_000,
      20,
    );
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    const atKill = await ledger(db.url);
    assert.ok(atKill.open > 0, "killed while work was left");

    const survivor = await runIngestWorker({
      name: "survivor",
      databaseUrl: db.url,
      redisUrl: testEnv().redisUrl,
      queue,
      concurrency: 2,
      empty: true,
      fastRebuild: false,
      makePreviews: false,
      logger,
      lockDurationMs: 2000,
      stalledIntervalMs: 1000,
    });
    assert.ok(survivor.files > 0);
    await waitFor(
      "every file",
      async () => (await ledger(db.url)).open === 0,
      1000,
    );
    const end = await ledger(db.url);
    assert.equal(end.done, archive.good.length);
    assert.equal(end.failed, archive.corrupt.length);
    await assertExactlyOnce(db.url, archive.good.length);
  });

  it("Redis losing the queue mid-run, then `rebuild reconcile`, loses nothing", async (t) => {
    // A Redis of this test's own, so that losing it touches no other test.
    const redis = await ownRedis(t);
    const redisUrl = redis.url;
    const { archive, db, queue } = await setup(t, redisUrl);

    const stop = new AbortController();
    const worker = runIngestWorker({
      name: "steady",
      databaseUrl: db.url,
      redisUrl,
      queue,
      concurrency: 1,
      empty: false,
      fastRebuild: false,
      makePreviews: false,
      logger,
      lockDurationMs: 2000,
      stalledIntervalMs: 1000,
      signal: stop.signal,
    });
    await waitFor(
      "the first batch",
      async () => (await ledger(db.url)).done > 0,
    );
    // Redis goes down and comes back empty: the queued work is gone.
    await redis.stop();
    await redis.start({ empty: true });
    const lost = await ledger(db.url);
    const requeued = await withIngestQueue(redisUrl, queue, (q) =>
      withClient(db.url, (c) => reconcile(c, q)),
    );
    // Every unfinished file is queued again (one may have finished in between).
    assert.ok(
      requeued.files > 0 && requeued.files <= lost.open,
      `${requeued.files} of ${lost.open}`,
    );
    await waitFor("every file", async () => (await ledger(db.url)).open === 0);
    stop.abort();
    await worker;
    const end = await ledger(db.url);
    assert.equal(end.done, archive.good.length);
    assert.equal(end.failed, archive.corrupt.length);
    await assertExactlyOnce(db.url, archive.good.length);
  });
});
