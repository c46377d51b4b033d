/**
 * `worker calcache` against real PostgreSQL on generated archives: it
 * drains the queue to exactly the evaluator's rows; a new calibration,
 * written by the archive writer as ingest writes it, reaches exactly the
 * frames whose associations it changes (and the reference's behaviour,
 * --no-dependents, leaves them stale); two workers leave what one leaves; a
 * SIGKILLed worker's entries are taken by the next; a frame the reference
 * raises on keeps its entry, failed, with the reason.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";

import { NOT_FAILED } from "../../lib/archive-writer.js";
import { calcacheRows, evaluateFrame } from "../../lib/cal/evaluate.js";
import {
  DEPENDENT_NOTE,
  dependentsOf,
  REFERENCE_FAILURE,
} from "../../lib/cal/queue.js";
import { type AnyClient, withClient } from "../../lib/db/connect.js";
import { CALCACHE_FRAME_LOCK_CLASS } from "../../lib/db/locks.js";
import { sleep } from "../../lib/exec.js";
import { createLogger } from "../../lib/logger.js";
import { packageRoot } from "../../lib/paths.js";
import { sortKey } from "../../lib/rebuild/names.js";
import { runCalcacheWorker } from "../../worker/calcache.js";
import {
  generateCalArchive,
  type IngestedFrame,
  ingestFrame,
} from "../helpers/cal-archive.js";
import { testDatabase } from "../helpers/db.js";

const logger = createLogger({ level: "error" });
const PER_INSTRUMENT = 40;

function worker(
  url: string,
  name: string,
  extra: { dependents?: boolean; batchSize?: number } = {},
) {
  return runCalcacheWorker({
    name,
    databaseUrl: url,
    concurrency: 1,
    empty: true,
    logger,
    idleMs: 50,
    ...extra,
  });
}

/** Queues every frame, as add_to_calcache_queue --all (without its filters) does. */
async function queueAll(c: AnyClient): Promise<number[]> {
  const { rows } = await c.query<{ id: number; filename: string }>(
    `SELECT h.id, d.filename FROM header h JOIN diskfile d ON d.id = h.diskfile_id ORDER BY h.id`,
  );
  await c.query(
    `INSERT INTO calcachequeue (obs_hid, inprogress, fail_dt, added, sortkey, filename)
     SELECT id, false, $1, now(), sortkey, filename
       FROM unnest($2::int[], $3::text[], $4::text[]) AS q(id, filename, sortkey)`,
    [
      NOT_FAILED,
      rows.map((r) => r.id),
      rows.map((r) => r.filename),
      rows.map((r) => sortKey(r.filename)),
    ],
  );
  return rows.map((r) => r.id);
}

type Rows = Map<number, string[]>;

/** calcache by frame: "caltype rank cal_hid", sorted. */
async function cacheOf(c: AnyClient): Promise<Rows> {
  const { rows } = await c.query<{
    obs_hid: number;
    caltype: string;
    rank: number;
    cal_hid: number;
  }>("SELECT obs_hid, caltype::text AS caltype, rank, cal_hid FROM calcache");
  const out: Rows = new Map();
  for (const r of rows) {
    const list = out.get(r.obs_hid) ?? [];
    list.push(`${r.caltype} ${r.rank} ${r.cal_hid}`);
    out.set(r.obs_hid, list);
  }
  for (const list of out.values()) {
    list.sort();
  }
  return out;
}

/** The calcache row ids by frame (to tell a rewritten frame from an untouched one). */
async function rowIdsOf(c: AnyClient): Promise<Map<number, string>> {
  const { rows } = await c.query<{ obs_hid: number; ids: string }>(
    "SELECT obs_hid, string_agg(id::text, ',' ORDER BY id) AS ids FROM calcache GROUP BY obs_hid",
  );
  return new Map(rows.map((r) => [r.obs_hid, r.ids]));
}

/** What evaluateFrame gives for every frame, as cacheOf shows it. */
async function expectedOf(c: AnyClient): Promise<Rows> {
  const { rows } = await c.query<{ id: number }>(
    "SELECT id FROM header ORDER BY id",
  );
  return expectedFor(c, rows);
}

/**
 * The canonical frames' rows only: after ingest, an older version's rows
 * are left as they were (nothing reads them; dependents skip them).
 */
async function canonicalOnly(c: AnyClient, rows: Rows): Promise<Rows> {
  const { rows: ids } = await c.query<{ id: number }>(
    "SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id WHERE d.canonical",
  );
  const keep = new Set(ids.map((r) => r.id));
  return new Map([...rows].filter(([id]) => keep.has(id)));
}

async function expectedFor(
  c: AnyClient,
  rows: { id: number }[],
): Promise<Rows> {
  const out: Rows = new Map();
  for (const { id } of rows) {
    const evaluation = await evaluateFrame(c, id);
    const list = calcacheRows(evaluation)
      .map((r) => `${r.caltype} ${r.rank} ${r.calHid}`)
      .sort();
    if (list.length > 0) {
      out.set(id, list);
    }
  }
  return out;
}

function differing(a: Rows, b: Rows): number[] {
  const ids = new Set([...a.keys(), ...b.keys()]);
  return [...ids]
    .filter((id) => (a.get(id) ?? []).join("|") !== (b.get(id) ?? []).join("|"))
    .sort((x, y) => x - y);
}

async function queueState(c: AnyClient) {
  const { rows } = await c.query<{
    obs_hid: number;
    failed: boolean;
    inprogress: boolean | null;
    error: string | null;
  }>(
    `SELECT obs_hid, fail_dt <> $1 AS failed, inprogress, error
       FROM calcachequeue ORDER BY obs_hid, id`,
    [NOT_FAILED],
  );
  return rows;
}

/** A copy of a calibration frame's rows, to ingest again as a new file at another time. */
async function copyOf(
  c: AnyClient,
  headerId: number,
  name: string,
  ut: string,
): Promise<IngestedFrame> {
  const { rows } = await c.query<{
    h: Record<string, string | number | boolean | null>;
    g: Record<string, string | number | boolean | null> | null;
  }>(
    `SELECT row_to_json(h) AS h, (SELECT row_to_json(g) FROM gmos g WHERE g.header_id = h.id ORDER BY g.id LIMIT 1) AS g
       FROM header h WHERE h.id = $1`,
    [headerId],
  );
  const {
    id: _id,
    diskfile_id: _d,
    ut_datetime_secs: _s,
    ...header
  } = rows[0]!.h;
  const inst = rows[0]!.g;
  if (inst !== null) {
    delete inst.id;
    delete inst.header_id;
  }
  return { name, table: "gmos", header: { ...header, ut_datetime: ut }, inst };
}

describe("worker calcache", () => {
  it("drains the queue to exactly the evaluator's rows, failed frames kept with their reason", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await generateCalArchive(c, 20190615, PER_INSTRUMENT);
      // A frame the reference raises on: types it cannot literal_eval.
      await c.query(
        "UPDATE header SET types = 'not a set' WHERE id = (SELECT min(id) FROM header)",
      );
      await queueAll(c);
    });
    const summary = await worker(db.url, "drain", { batchSize: 7 });
    await withClient(db.url, async (c) => {
      const expected = await expectedOf(c);
      const cached = await cacheOf(c);
      assert.ok(
        expected.size > 20,
        `a real mix: ${expected.size} frames with rows`,
      );
      assert.deepEqual(differing(cached, expected), []);
      const queue = await queueState(c);
      assert.ok(
        queue.every((q) => q.failed),
        "only failed entries are left",
      );
      const { rows: hids } = await c.query<{ id: number }>(
        "SELECT id FROM header",
      );
      const failed: number[] = [];
      for (const { id } of hids) {
        const e = await evaluateFrame(c, id);
        if (e.outcome === "failed") {
          failed.push(id);
          const entry = queue.find((q) => q.obs_hid === id);
          assert.equal(entry?.error, `${REFERENCE_FAILURE}: ${e.reason}`);
        }
      }
      const { rows: first } = await c.query<{ id: number }>(
        "SELECT min(id) AS id FROM header",
      );
      assert.ok(failed.includes(first[0]!.id));
      assert.deepEqual(
        queue.map((q) => q.obs_hid).sort((a, b) => a - b),
        failed.sort((a, b) => a - b),
        "one failed entry per failing frame",
      );
      assert.equal(summary.outcomes.failed, failed.length);
      assert.ok(
        summary.outcomes.associated > 0 && summary.outcomes.skipped > 0,
      );
    });
  });

  it("dependents cover every frame a calibration can reach (the widest windows hold on a generated archive)", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await generateCalArchive(c, 7, 2 * PER_INSTRUMENT);
      // Canonical frames only: an older version's rows are nobody's concern.
      const { rows } = await c.query<{ id: number }>(
        `SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id
          WHERE d.canonical ORDER BY h.id`,
      );
      const reachedBy = new Map<number, Set<number>>();
      for (const { id } of rows) {
        for (const r of calcacheRows(await evaluateFrame(c, id))) {
          const set = reachedBy.get(r.calHid) ?? new Set();
          set.add(id);
          reachedBy.set(r.calHid, set);
        }
      }
      assert.ok(reachedBy.size > 10, `${reachedBy.size} calibrations in use`);
      for (const [cal, frames] of reachedBy) {
        const dependents = new Set(
          (await dependentsOf(c, cal)).map((d) => d.id),
        );
        const missed = [...frames].filter(
          (f) => f !== cal && !dependents.has(f),
        );
        if (missed.length > 0) {
          const { rows: detail } = await c.query(
            `SELECT h.id, h.instrument, h.observation_type, h.reduction, h.ut_datetime::text,
                    h.qa_state, h.engineering, d.canonical
               FROM header h JOIN diskfile d ON d.id = h.diskfile_id
              WHERE h.id = ANY($1::int[])`,
            [[cal, ...missed]],
          );
          assert.fail(
            `frames that take ${cal} but are not its dependents: ${JSON.stringify(detail)}`,
          );
        }
      }
    });
  });

  it("a new calibration from ingest updates exactly the frames it changes; the reference's way leaves them stale", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await generateCalArchive(c, 20190615, PER_INSTRUMENT);
      await queueAll(c);
    });
    await worker(db.url, "first");
    await withClient(db.url, async (c) => {
      // A science frame with a raw bias; a copy of that bias at the frame's
      // own time must become its best bias.
      const { rows } = await c.query<{
        obs_hid: number;
        cal_hid: number;
        ut: string;
      }>(
        `SELECT c.obs_hid, c.cal_hid, to_char(s.ut_datetime, 'YYYY-MM-DD"T"HH24:MI:SS') AS ut
           FROM calcache c JOIN header s ON s.id = c.obs_hid JOIN header b ON b.id = c.cal_hid
          WHERE c.caltype = 'bias' AND c.rank = 0 AND b.reduction = 'RAW'
          ORDER BY c.obs_hid LIMIT 2`,
      );
      assert.equal(rows.length, 2, "the archive has frames with biases");
      const before = await canonicalOnly(c, await cacheOf(c));
      const idsBefore = await rowIdsOf(c);

      // ours: dependents on.
      const bias = await copyOf(
        c,
        rows[0]!.cal_hid,
        "N20190615S9001.fits",
        rows[0]!.ut,
      );
      await c.query("BEGIN");
      const newHid = await ingestFrame(c, bias);
      await c.query("COMMIT");
      const queued = await queueState(c);
      assert.deepEqual(
        queued.filter((q) => !q.failed).map((q) => q.obs_hid),
        [newHid],
        "ingest queued the new frame",
      );
      const expected = await canonicalOnly(c, await expectedOf(c));
      const should = differing(before, expected);
      assert.ok(
        should.includes(rows[0]!.obs_hid),
        "the frame at the bias's time takes it",
      );
      assert.ok(should.filter((id) => id !== newHid).length >= 1);

      const run = await worker(db.url, "incremental");
      assert.ok(run.dependentsQueued > 0);
      const after = await canonicalOnly(c, await cacheOf(c));
      assert.deepEqual(
        differing(after, expected),
        [],
        "every frame as the evaluator has it now",
      );
      const idsAfter = await rowIdsOf(c);
      const rewritten = [...new Set([...idsBefore.keys(), ...idsAfter.keys()])]
        .filter((id) => idsBefore.get(id) !== idsAfter.get(id))
        .sort((a, b) => a - b);
      assert.deepEqual(
        rewritten,
        should,
        "exactly the changed frames were rewritten",
      );
      assert.equal(run.outcomes.associated, should.length);
      assert.ok(
        run.outcomes.unchanged > 0,
        "other dependents were evaluated and left alone",
      );

      // the reference's: only the new frame.
      const before2 = await canonicalOnly(c, await cacheOf(c));
      const second = await copyOf(
        c,
        rows[1]!.cal_hid,
        "N20190615S9002.fits",
        rows[1]!.ut,
      );
      await c.query("BEGIN");
      const secondHid = await ingestFrame(c, second);
      await c.query("COMMIT");
      const expected2 = await canonicalOnly(c, await expectedOf(c));
      await worker(db.url, "reference-like", { dependents: false });
      const after2 = await canonicalOnly(c, await cacheOf(c));
      const left = differing(after2, expected2);
      assert.ok(
        left.includes(rows[1]!.obs_hid),
        "the science frame was not re-evaluated",
      );
      assert.ok(!left.includes(secondHid), "the new frame was");
      assert.ok(differing(before2, expected2).includes(rows[1]!.obs_hid));
      // Queuing it, as the reference's cron does, brings it up to date.
      await c.query(
        `INSERT INTO calcachequeue (obs_hid, inprogress, fail_dt, added, sortkey, filename)
         SELECT unnest($1::int[]), false, $2, now(), 'z', 'requeued'`,
        [left, NOT_FAILED],
      );
      await worker(db.url, "cron");
      assert.deepEqual(
        differing(await canonicalOnly(c, await cacheOf(c)), expected2),
        [],
      );
    });
  });

  it("a new version of a calibration file reaches the frames that used the old one", async (t) => {
    const db = await testDatabase(t);
    let usedBy: number[] = [];
    await withClient(db.url, async (c) => {
      await generateCalArchive(c, 20190615, PER_INSTRUMENT);
      await queueAll(c);
    });
    await worker(db.url, "first");
    await withClient(db.url, async (c) => {
      const { rows } = await c.query<{
        cal_hid: number;
        name: string;
        obs: number[];
      }>(
        `SELECT c.cal_hid, f.name, array_agg(DISTINCT c.obs_hid) AS obs
           FROM calcache c JOIN header b ON b.id = c.cal_hid
           JOIN diskfile d ON d.id = b.diskfile_id JOIN file f ON f.id = d.file_id
          WHERE c.caltype = 'bias'
          GROUP BY c.cal_hid, f.name ORDER BY count(*) DESC LIMIT 1`,
      );
      usedBy = rows[0]!.obs;
      const { rows: ut } = await c.query<{ ut: string }>(
        `SELECT to_char(ut_datetime, 'YYYY-MM-DD"T"HH24:MI:SS') AS ut FROM header WHERE id = $1`,
        [rows[0]!.cal_hid],
      );
      // The new version failed QA: no longer anyone's calibration.
      const frame = await copyOf(c, rows[0]!.cal_hid, rows[0]!.name, ut[0]!.ut);
      frame.header.qa_state = "Fail";
      await c.query("BEGIN");
      await ingestFrame(c, frame);
      await c.query("COMMIT");
      const expected = await canonicalOnly(c, await expectedOf(c));
      await worker(db.url, "incremental");
      const after = await canonicalOnly(c, await cacheOf(c));
      assert.deepEqual(differing(after, expected), []);
      for (const obs of usedBy) {
        assert.ok(
          !(after.get(obs) ?? []).some((r) =>
            r.endsWith(` ${rows[0]!.cal_hid}`),
          ),
        );
      }
      const { rows: notes } = await c.query<{ n: string }>(
        "SELECT count(*) AS n FROM calcachequeue WHERE error LIKE $1",
        [`${DEPENDENT_NOTE}%`],
      );
      assert.equal(notes[0]!.n, "0", "dependents are worked and deleted");
    });
    assert.ok(usedBy.length > 0);
  });

  it("two workers at once leave the same rows and queue as one", async (t) => {
    const one = await testDatabase(t);
    const two = await testDatabase(t);
    for (const db of [one, two]) {
      await withClient(db.url, async (c) => {
        await generateCalArchive(c, 11, PER_INSTRUMENT);
        await queueAll(c);
      });
    }
    await worker(one.url, "alone", { batchSize: 3 });
    const [a, b] = await Promise.all([
      worker(two.url, "a", { batchSize: 3 }),
      worker(two.url, "b", { batchSize: 3 }),
    ]);
    assert.ok(a.frames > 0 && b.frames > 0, "both took work");
    const [cacheOne, queueOne] = await withClient(
      one.url,
      async (c) => [await cacheOf(c), await queueState(c)] as const,
    );
    const [cacheTwo, queueTwo] = await withClient(
      two.url,
      async (c) => [await cacheOf(c), await queueState(c)] as const,
    );
    assert.ok(cacheOne.size > 20);
    assert.deepEqual(differing(cacheOne, cacheTwo), []);
    assert.deepEqual(
      queueTwo.map((q) => [q.obs_hid, q.failed, q.error]),
      queueOne.map((q) => [q.obs_hid, q.failed, q.error]),
    );
    // No frame has a row twice.
    await withClient(two.url, async (c) => {
      const { rows } = await c.query<{ n: string }>(
        `SELECT count(*) AS n FROM (SELECT obs_hid, caltype, rank, cal_hid FROM calcache
           GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d`,
      );
      assert.equal(rows[0]!.n, "0");
    });
  });

  it("a worker killed with SIGKILL mid-frame leaves its entries to the next, which finishes them", async (t) => {
    const db = await testDatabase(t);
    const total = await withClient(db.url, async (c) => {
      await generateCalArchive(c, 3, 10);
      return (await queueAll(c)).length;
    });
    // Hold the frame lock of the entry the worker takes first, so the kill
    // lands while it holds its batch.
    const holder = await withClient(db.url, async (c) => {
      const { rows } = await c.query<{ obs_hid: number }>(
        "SELECT obs_hid FROM calcachequeue ORDER BY sortkey DESC, id LIMIT 1",
      );
      return rows[0]!.obs_hid;
    });
    const { connect } = await import("../../lib/db/connect.js");
    const lock = await connect(db.url);
    t.after(() => lock.end().catch(() => undefined));
    await lock.query("SELECT pg_advisory_lock($1, $2)", [
      CALCACHE_FRAME_LOCK_CLASS,
      holder,
    ]);
    const child = spawn(
      process.execPath,
      [
        join(packageRoot(), "dist", "cli", "main.js"),
        "worker",
        "calcache",
        "--name",
        "doomed",
        "--empty",
        "--batch-size",
        "4",
      ],
      {
        env: {
          ...process.env,
          FITSFLEET_DATABASE_URL: db.url,
          FITSFLEET_LOG_LEVEL: "error",
        },
        stdio: "ignore",
      },
    );
    t.after(() => child.kill("SIGKILL"));
    const pid = await until(async () => {
      const { rows } = await lock.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE application_name = 'fitsfleet worker calcache doomed' AND wait_event_type = 'Lock'`,
      );
      return rows[0]?.pid;
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    // Its backend notices the closed connection while still waiting.
    await until(async () => {
      const { rows } = await lock.query(
        "SELECT 1 FROM pg_stat_activity WHERE pid = $1",
        [pid],
      );
      return rows.length === 0 ? true : undefined;
    });
    await lock.query("SELECT pg_advisory_unlock($1, $2)", [
      CALCACHE_FRAME_LOCK_CLASS,
      holder,
    ]);
    await withClient(db.url, async (c) => {
      const queue = await queueState(c);
      assert.equal(queue.length, total, "every entry is still there");
      assert.ok(queue.every((q) => !q.failed && q.inprogress === false));
      const { rows } = await c.query<{ n: string }>(
        "SELECT count(*) AS n FROM calcache",
      );
      assert.equal(rows[0]!.n, "0", "nothing of the killed batch was written");
    });
    const next = await worker(db.url, "next");
    assert.equal(next.frames >= total, true);
    await withClient(db.url, async (c) => {
      assert.deepEqual(differing(await cacheOf(c), await expectedOf(c)), []);
      assert.ok((await queueState(c)).every((q) => q.failed));
    });
  });
});

async function until<T>(
  probe: () => Promise<T | undefined>,
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > end) {
      throw new Error("gave up waiting");
    }
    await sleep(50);
  }
}
