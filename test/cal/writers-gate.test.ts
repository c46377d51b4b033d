/**
 * The calcache writers' gate, against real PostgreSQL: while `rebuild
 * calcache` runs, `worker calcache` takes nothing (its entries stay queued)
 * and carries on after the rebuild; a rebuild waits for a worker's batch in
 * flight (seen waiting in pg_locks, not timed); workers still run side by
 * side; a dry run leaves the gate alone, and a failed rebuild releases it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NOT_FAILED } from "../../lib/archive-writer.js";
import { enterCalcacheWriters } from "../../lib/cal/queue.js";
import {
  rebuildCalcache,
  type RebuildProgress,
} from "../../lib/cal/rebuild/index.js";
import {
  type AnyClient,
  connect,
  type PgClient,
  withClient,
} from "../../lib/db/connect.js";
import {
  CALCACHE_FRAME_LOCK_CLASS,
  CALCACHE_WRITERS_GATE_KEY,
} from "../../lib/db/locks.js";
import { createLogger } from "../../lib/logger.js";
import { runCalcacheWorker } from "../../worker/calcache.js";
import { generateCalArchive } from "../helpers/cal-archive.js";
import { testDatabase } from "../helpers/db.js";
import {
  cacheOf,
  differing,
  expectedFor,
  rowIdsOf,
  until,
} from "./worker-helpers.js";

const WAITING = "waiting: a calcache rebuild is running";

/** A worker as `worker calcache --empty` runs it, its log lines kept. */
function gatedWorker(url: string, name: string, batchSize = 4) {
  const lines: string[] = [];
  const run = runCalcacheWorker({
    name,
    databaseUrl: url,
    concurrency: 1,
    batchSize,
    empty: true,
    dependents: false,
    idleMs: 50,
    logger: createLogger({
      level: "info",
      format: "json",
      write: (line) => lines.push(line),
    }),
  });
  return { run, lines };
}

function logged(lines: string[], message: string): boolean {
  return lines.some((l) => (JSON.parse(l) as { msg: string }).msg === message);
}

/** Canonical, non-engineering frames of one instrument (the rebuild covers them). */
async function frames(
  c: AnyClient,
  instrument: string,
  n: number,
): Promise<number[]> {
  const { rows } = await c.query<{ id: number }>(
    `SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id
      WHERE d.canonical AND h.engineering = false AND h.instrument = $1
      ORDER BY h.id LIMIT $2`,
    [instrument, n],
  );
  return rows.map((r) => r.id);
}

async function enqueue(c: AnyClient, ids: number[]): Promise<void> {
  await c.query(
    `INSERT INTO calcachequeue (obs_hid, inprogress, fail_dt, added, sortkey, filename)
     SELECT h.id, false, $1, now(), 'z' || h.id, d.filename
       FROM header h JOIN diskfile d ON d.id = h.diskfile_id
      WHERE h.id = ANY($2::int[])`,
    [NOT_FAILED, ids],
  );
}

async function queued(c: AnyClient): Promise<number[]> {
  const { rows } = await c.query<{ obs_hid: number }>(
    "SELECT obs_hid FROM calcachequeue WHERE fail_dt = $1 ORDER BY obs_hid",
    [NOT_FAILED],
  );
  return rows.map((r) => r.obs_hid);
}

interface GateLock {
  application: string;
  mode: string;
  granted: boolean;
}

/** Who holds or waits for the writers' gate, by application_name (the server's own view). */
async function gateLocks(c: AnyClient): Promise<GateLock[]> {
  const { rows } = await c.query<GateLock>(
    `SELECT a.application_name AS application, l.mode, l.granted
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint
      ORDER BY 1, 2`,
    [CALCACHE_WRITERS_GATE_KEY],
  );
  return rows;
}

/** Whether a backend of this application waits for any lock. */
async function waiting(c: AnyClient, application: string): Promise<boolean> {
  const { rows } = await c.query<{ waiting: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE a.application_name = $1 AND NOT l.granted) AS waiting`,
    [application],
  );
  return rows[0]!.waiting;
}

async function archive(t: Parameters<typeof testDatabase>[0]) {
  const db = await testDatabase(t);
  await withClient(db.url, (c) => generateCalArchive(c, 20190615, 20));
  return db;
}

describe("calcache writers' gate: workers pause while a rebuild runs", () => {
  for (const strategy of ["swap", "in-place"] as const) {
    it(`a worker takes nothing while a ${strategy} rebuild replaces the cache, then carries on`, async (t) => {
      const db = await archive(t);
      const watcher = await connect(db.url);
      try {
        // Frames that have calibrations (science frames, mostly).
        const candidates = await frames(watcher, "GMOS-N", 200);
        const withRows = await expectedFor(
          watcher,
          candidates.map((id) => ({ id })),
        );
        const ids = [...withRows.keys()].sort((a, b) => a - b).slice(0, 5);
        assert.equal(ids.length, 5);
        let worker: ReturnType<typeof gatedWorker> | undefined;
        let heldQueue: number[] = [];
        let heldLocks: GateLock[] = [];
        let workerBlocked = true;
        await rebuildCalcache({
          databaseUrl: db.url,
          jobs: 1,
          ...(strategy === "in-place" ? { instruments: ["gmos"] } : {}),
          duringReplace: async (stage) => {
            if (stage !== "locked") {
              return;
            }
            // Queued while the rebuild runs (after its snapshot of the queue).
            await enqueue(watcher, ids);
            worker = gatedWorker(db.url, "paused");
            await until(async () =>
              logged(worker!.lines, WAITING) ? true : undefined,
            );
            heldQueue = await queued(watcher);
            heldLocks = await gateLocks(watcher);
            // Paused by the gate, not stuck behind the rebuild's table lock.
            workerBlocked = await waiting(
              watcher,
              "fitsfleet worker calcache paused",
            );
          },
        });
        assert.ok(worker !== undefined);
        assert.deepEqual(heldQueue, ids, "every entry still queued");
        assert.deepEqual(heldLocks, [
          {
            application: "fitsfleet rebuild calcache",
            mode: "ExclusiveLock",
            granted: true,
          },
        ]);
        assert.equal(workerBlocked, false);
        const idsAfterRebuild = await rowIdsOf(watcher);
        const summary = await worker.run;
        assert.equal(summary.frames, ids.length);
        assert.equal(summary.rebuildWaits, 1);
        assert.ok(
          logged(worker.lines, "carrying on: the calcache rebuild is over"),
        );
        assert.deepEqual(await queued(watcher), []);
        // Worked after the rebuild committed: the rows it wrote are the
        // evaluator's, so each frame's rows are the rebuild's, untouched.
        const expected = await expectedFor(
          watcher,
          ids.map((id) => ({ id })),
        );
        assert.ok(expected.size > 0, "the frames have calibrations");
        const cached = new Map(
          [...(await cacheOf(watcher))].filter(([id]) => ids.includes(id)),
        );
        assert.deepEqual(differing(cached, expected), []);
        assert.equal(summary.outcomes.associated, 0);
        const idsNow = await rowIdsOf(watcher);
        for (const id of ids) {
          assert.equal(idsNow.get(id), idsAfterRebuild.get(id));
        }
      } finally {
        await watcher.end();
      }
    });
  }
});

describe("calcache writers' gate: a rebuild waits for batches in flight", () => {
  it("waits in pg_locks for a worker's open batch, keeps new batches out, then proceeds", async (t) => {
    const db = await archive(t);
    const watcher = await connect(db.url);
    const holder = await connect(db.url);
    try {
      const [held] = await frames(watcher, "GMOS-N", 1);
      await enqueue(watcher, [held!]);
      // The worker's batch takes the entry, then waits for this frame lock:
      // its transaction, and its share of the gate, stay open.
      await holder.query("SELECT pg_advisory_lock($1, $2)", [
        CALCACHE_FRAME_LOCK_CLASS,
        held,
      ]);
      const worker = gatedWorker(db.url, "inflight", 1);
      await until(async () =>
        (await waiting(watcher, "fitsfleet worker calcache inflight"))
          ? true
          : undefined,
      );
      assert.deepEqual(await gateLocks(watcher), [
        {
          application: "fitsfleet worker calcache inflight",
          mode: "ShareLock",
          granted: true,
        },
      ]);

      const phases: RebuildProgress["phase"][] = [];
      const rebuild = rebuildCalcache({
        databaseUrl: db.url,
        jobs: 1,
        onProgress: (p) => phases.push(p.phase),
      });
      await until(async () =>
        (await gateLocks(watcher)).some(
          (l) => l.application === "fitsfleet rebuild calcache" && !l.granted,
        )
          ? true
          : undefined,
      );
      assert.deepEqual(await gateLocks(watcher), [
        {
          application: "fitsfleet rebuild calcache",
          mode: "ExclusiveLock",
          granted: false,
        },
        {
          application: "fitsfleet worker calcache inflight",
          mode: "ShareLock",
          granted: true,
        },
      ]);
      assert.deepEqual(phases, ["wait"]);
      // A batch beginning now stays out: it queues behind the rebuild.
      await watcher.query("BEGIN");
      assert.equal(await enterCalcacheWriters(watcher), false);
      await watcher.query("ROLLBACK");

      await holder.query("SELECT pg_advisory_unlock($1, $2)", [
        CALCACHE_FRAME_LOCK_CLASS,
        held,
      ]);
      const report = await rebuild;
      assert.equal(phases[0], "wait");
      assert.ok(phases.includes("replace"));
      const summary = await worker.run;
      assert.equal(summary.frames, 1, "the batch in flight committed");
      assert.deepEqual(await queued(watcher), []);
      assert.ok(report.framesTotal > 0);
      assert.deepEqual(await gateLocks(watcher), [], "released at the end");
    } finally {
      await holder.end();
      await watcher.end();
    }
  });

  it("a dry run leaves the gate alone; a failed rebuild releases it", async (t) => {
    const db = await archive(t);
    const holder = await connect(db.url);
    try {
      // A worker's batch in flight does not hold up a dry run.
      await holder.query("BEGIN");
      assert.equal(await enterCalcacheWriters(holder), true);
      const dry = await rebuildCalcache({
        databaseUrl: db.url,
        dryRun: true,
      });
      assert.ok(dry.framesTotal > 0);
      await holder.query("COMMIT");

      let dropped: Promise<unknown> | undefined;
      await assert.rejects(
        rebuildCalcache({
          databaseUrl: db.url,
          jobs: 1,
          batchSize: 10,
          onProgress: (p) => {
            if (p.phase === "search" && dropped === undefined) {
              dropped = withClient(db.url, (d) =>
                d.query("DROP TABLE fitsfleet.calcache_cand_gnirs"),
              );
            }
          },
        }),
        /calcache_cand_gnirs/,
      );
      await dropped;
      assert.deepEqual(await gateLocks(holder), []);
      await holder.query("BEGIN");
      assert.equal(await enterCalcacheWriters(holder), true);
      await holder.query("COMMIT");
    } finally {
      await holder.end();
    }
  });
});

describe("calcache writers' gate: workers side by side", () => {
  it("a second worker works while the first holds a batch open", async (t) => {
    const db = await archive(t);
    const watcher = await connect(db.url);
    const holder: PgClient = await connect(db.url);
    try {
      const [held, ...others] = await frames(watcher, "GMOS-N", 9);
      await enqueue(watcher, [held!]);
      await holder.query("SELECT pg_advisory_lock($1, $2)", [
        CALCACHE_FRAME_LOCK_CLASS,
        held,
      ]);
      const first = gatedWorker(db.url, "first", 1);
      await until(async () =>
        (await waiting(watcher, "fitsfleet worker calcache first"))
          ? true
          : undefined,
      );
      await enqueue(watcher, others);
      const second = await gatedWorker(db.url, "second").run;
      assert.equal(second.frames, others.length);
      assert.equal(second.rebuildWaits, 0);
      assert.deepEqual(await queued(watcher), [held]);
      // The first still holds its share of the gate: shares do not conflict.
      assert.deepEqual(await gateLocks(watcher), [
        {
          application: "fitsfleet worker calcache first",
          mode: "ShareLock",
          granted: true,
        },
      ]);
      await holder.query("SELECT pg_advisory_unlock($1, $2)", [
        CALCACHE_FRAME_LOCK_CLASS,
        held,
      ]);
      assert.equal((await first.run).frames, 1);
      assert.deepEqual(await queued(watcher), []);
    } finally {
      await holder.end();
      await watcher.end();
    }
  });
});
