/**
 * How the rebuild's result replaces the cache: readers in another
 * connection see the old rows, then the new ones, never an empty or partial
 * cache (held at the replacing transaction's stages, not timed); a filtered
 * rebuild leaves other frames' rows alone; the covered frames' pending
 * queue entries go, in the same transaction; one rebuild at a time.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NOT_FAILED } from "../../lib/archive-writer.js";
import { calcacheRows, evaluateFrame } from "../../lib/cal/evaluate.js";
import { rebuildCalcache } from "../../lib/cal/rebuild/index.js";
import { connect, type PgClient, withClient } from "../../lib/db/connect.js";
import { CALCACHE_REBUILD_LOCK_KEY } from "../../lib/db/locks.js";
import { PreconditionError } from "../../lib/errors.js";
import { generateCalArchive } from "../helpers/cal-archive.js";
import { type TestDatabase, testDatabase } from "../helpers/db.js";

type Rows = string[];

async function cacheRows(c: PgClient): Promise<Rows> {
  const { rows } = await c.query<{ line: string }>(
    `SELECT obs_hid || ' ' || caltype || ' ' || rank || ' ' || cal_hid AS line
       FROM calcache ORDER BY 1`,
  );
  return rows.map((r) => r.line);
}

/** What the per-frame evaluator gives for the frames a rebuild covers. */
async function expectedRows(c: PgClient, instrument?: string): Promise<Rows> {
  const { rows } = await c.query<{ id: number }>(
    `SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id
      WHERE d.canonical AND h.engineering = false
        AND ($1::text IS NULL OR h.instrument = $1)
      ORDER BY h.id`,
    [instrument ?? null],
  );
  const out: Rows = [];
  for (const { id } of rows) {
    for (const r of calcacheRows(await evaluateFrame(c, id))) {
      out.push(`${r.obsHid} ${r.caltype} ${r.rank} ${r.calHid}`);
    }
  }
  return out.sort();
}

interface Fixture {
  db: TestDatabase;
  /** An engineering frame (not covered) and a covered NIRI and GMOS frame. */
  engineering: number;
  niri: number;
  gmos: number;
}

/** A small archive with an old cache: stale rows of covered frames and rows of an uncovered one. */
async function fixture(
  t: Parameters<typeof testDatabase>[0],
): Promise<Fixture> {
  const db = await testDatabase(t);
  return withClient(db.url, async (c) => {
    await generateCalArchive(c, 11, 60);
    const pick = async (where: string) => {
      const { rows } = await c.query<{ id: number }>(
        `SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id
          WHERE ${where} ORDER BY h.id LIMIT 1`,
      );
      return rows[0]!.id;
    };
    const engineering = await pick("h.engineering IS NOT false");
    const niri = await pick(
      "d.canonical AND h.engineering = false AND h.instrument = 'NIRI'",
    );
    const gmos = await pick(
      "d.canonical AND h.engineering = false AND h.instrument = 'GMOS-N'",
    );
    await c.query(
      `INSERT INTO calcache (obs_hid, cal_hid, caltype, rank) VALUES
         ($1, $1, 'flat', 97), ($2, $2, 'flat', 98), ($3, $3, 'arc', 99)`,
      [engineering, niri, gmos],
    );
    return { db, engineering, niri, gmos };
  });
}

/** Resolves once `pid` waits for a lock (polled in the server's own view, not timed). */
async function waitUntilBlocked(c: PgClient, pid: number): Promise<void> {
  for (;;) {
    const { rows } = await c.query<{ waiting: boolean }>(
      "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted) AS waiting",
      [pid],
    );
    if (rows[0]!.waiting) {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("rebuild calcache: replacing the cache", () => {
  it("swaps: readers see the old cache, then the new one, never an empty or partial one", async (t) => {
    const full = await fixture(t);
    const reader = await connect(full.db.url);
    const watcher = await connect(full.db.url);
    try {
      const old = await cacheRows(reader);
      assert.equal(old.length, 3);
      const expected = await withClient(full.db.url, (c) => expectedRows(c));
      const engineeringRow = `${full.engineering} flat 97 ${full.engineering}`;
      const seen: Rows[] = [];
      let blocked: Promise<Rows> | undefined;
      const { rows: pidRows } = await reader.query<{ pid: number }>(
        "SELECT pg_backend_pid() AS pid",
      );
      const report = await rebuildCalcache({
        databaseUrl: full.db.url,
        jobs: 2,
        batchSize: 50,
        duringReplace: async (stage) => {
          if (stage === "locked") {
            // Writers wait from here; readers still read the old table.
            seen.push(await cacheRows(reader));
          } else {
            // The old table is gone and the new one renamed, uncommitted: a
            // reader waits for the commit, then reads the new table.
            blocked = cacheRows(reader);
            await waitUntilBlocked(watcher, pidRows[0]!.pid);
          }
        },
      });
      assert.equal(report.strategy, "swap");
      assert.deepEqual(seen, [old]);
      const after = await blocked!;
      assert.deepEqual(after, [...expected, engineeringRow].sort());
      assert.equal(report.rowsKept, 1);
      assert.equal(report.rowsReplaced, 2);
      assert.equal(report.rowsWritten, expected.length);
      // The table keeps the schema's names: indexes, constraints, sequence.
      const { rows: names } = await watcher.query<{ name: string }>(
        `SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'calcache'
         UNION ALL SELECT conname FROM pg_constraint WHERE conrelid = 'public.calcache'::regclass
         UNION ALL SELECT pg_get_serial_sequence('public.calcache', 'id')
         ORDER BY 1`,
      );
      assert.deepEqual(
        names.map((r) => r.name),
        [
          "calcache_cal_hid_fkey",
          "calcache_obs_hid_fkey",
          "calcache_pkey",
          "calcache_pkey",
          "ix_calcache_cal_hid",
          "ix_calcache_caltype",
          "ix_calcache_obs_hid",
          "ix_calcache_rank",
          "public.calcache_id_seq",
        ],
      );
      const { rows: leftovers } = await watcher.query(
        "SELECT relname FROM pg_class WHERE relname LIKE 'calcache_%' AND relnamespace = 'fitsfleet'::regnamespace",
      );
      assert.deepEqual(leftovers, []);
      // New rows still take ids from the sequence.
      await watcher.query(
        "INSERT INTO calcache (obs_hid, cal_hid, caltype, rank) VALUES ($1, $1, 'dark', 0)",
        [full.niri],
      );
    } finally {
      await reader.end();
      await watcher.end();
    }
  });
});

describe("rebuild calcache: a filtered rebuild", () => {
  it("replaces only the frames it covers, in place, and readers see old then new", async (t) => {
    const f = await fixture(t);
    const reader = await connect(f.db.url);
    try {
      const { expectedNiri, others } = await withClient(f.db.url, async (c) => {
        // Other instruments' rows as they are before: their per-frame rows.
        for (const id of await c
          .query<{ id: number }>(
            "SELECT id FROM header WHERE instrument = 'F2' ORDER BY id LIMIT 20",
          )
          .then((r) => r.rows.map((x) => x.id))) {
          for (const r of calcacheRows(await evaluateFrame(c, id))) {
            await c.query(
              "INSERT INTO calcache (obs_hid, cal_hid, caltype, rank) VALUES ($1, $2, $3, $4)",
              [r.obsHid, r.calHid, r.caltype, r.rank],
            );
          }
        }
        const all = await cacheRows(c);
        const { rows } = await c.query<{ id: number }>(
          "SELECT id FROM header WHERE instrument = 'NIRI'",
        );
        const niri = new Set(rows.map((r) => String(r.id)));
        return {
          expectedNiri: await expectedRows(c, "NIRI"),
          others: all.filter((line) => !niri.has(line.split(" ")[0]!)),
        };
      });
      const old = await cacheRows(reader);
      const seen: Rows[] = [];
      const report = await rebuildCalcache({
        databaseUrl: f.db.url,
        instruments: ["niri"],
        jobs: 1,
        duringReplace: async () => {
          seen.push(await cacheRows(reader));
        },
      });
      assert.equal(report.strategy, "in-place");
      assert.deepEqual(seen, [old, old]);
      assert.deepEqual(
        report.frames.map((x) => x.instrument),
        ["NIRI"],
      );
      const after = await cacheRows(reader);
      assert.deepEqual(after, [...others, ...expectedNiri].sort());
      assert.ok(after.includes(`${f.gmos} arc 99 ${f.gmos}`));
      assert.ok(!after.includes(`${f.niri} flat 98 ${f.niri}`));
      assert.ok(
        expectedNiri.length >= 5,
        `only ${expectedNiri.length} NIRI rows`,
      );
    } finally {
      await reader.end();
    }
  });

  it("--since covers only frames observed from that time", async (t) => {
    const f = await fixture(t);
    const report = await rebuildCalcache({
      databaseUrl: f.db.url,
      since: new Date("2019-07-01T00:00:00Z"),
      dryRun: true,
    });
    const { rows } = await withClient(f.db.url, (c) =>
      c.query<{ n: string }>(
        `SELECT count(*) AS n FROM header h JOIN diskfile d ON d.id = h.diskfile_id
          WHERE d.canonical AND h.engineering = false AND h.ut_datetime >= '2019-07-01'`,
      ),
    );
    assert.equal(report.framesTotal, Number(rows[0]!.n));
    assert.ok(report.framesTotal > 0);
    assert.equal(report.strategy, "in-place");
  });
});

describe("rebuild calcache: the queue, dry runs and the lock", () => {
  it("clears the covered frames' pending queue entries, not failed, uncovered or newer ones", async (t) => {
    const f = await fixture(t);
    await withClient(f.db.url, (c) =>
      c.query(
        `INSERT INTO calcachequeue (obs_hid, inprogress, added, filename, fail_dt, error) VALUES
           ($1, false, now(), 'pending', $4, NULL),
           ($1, false, now(), 'pending-null', NULL, NULL),
           ($2, false, now(), 'failed', now(), 'boom'),
           ($3, false, now(), 'uncovered', $4, NULL)`,
        // What ingest writes for a waiting entry: the reference's marker.
        [f.niri, f.gmos, f.engineering, NOT_FAILED],
      ),
    );
    const dry = await rebuildCalcache({ databaseUrl: f.db.url, dryRun: true });
    assert.equal(dry.queueCleared, 2);
    assert.equal(dry.rowsReplaced, 2);
    assert.ok(dry.frames.length >= 4);
    const before = await withClient(f.db.url, cacheRows);
    assert.equal(before.length, 3, "a dry run writes nothing");
    const report = await rebuildCalcache({
      databaseUrl: f.db.url,
      duringReplace: async (stage) => {
        if (stage === "locked") {
          // Queued while the rebuild runs: after its snapshot, so it stays.
          await withClient(f.db.url, (c) =>
            c.query(
              "INSERT INTO calcachequeue (obs_hid, inprogress, added, filename) VALUES ($1, true, now(), 'newer')",
              [f.niri],
            ),
          );
        }
      },
    });
    assert.equal(report.queueCleared, 2);
    const { rows } = await withClient(f.db.url, (c) =>
      c.query<{ filename: string }>(
        "SELECT filename FROM calcachequeue ORDER BY filename",
      ),
    );
    assert.deepEqual(
      rows.map((r) => r.filename),
      ["failed", "newer", "uncovered"],
    );
  });

  it("refuses to run beside another rebuild", async (t) => {
    const db = await testDatabase(t);
    const holder = await connect(db.url);
    try {
      await holder.query("SELECT pg_advisory_lock($1::bigint)", [
        CALCACHE_REBUILD_LOCK_KEY,
      ]);
      await assert.rejects(
        rebuildCalcache({ databaseUrl: db.url }),
        (e: unknown) =>
          e instanceof PreconditionError &&
          /another `rebuild calcache` is running/.test(e.message),
      );
    } finally {
      await holder.end();
    }
  });

  it("a search statement that fails stops every search thread, leaves the old cache and no work tables", async (t) => {
    const { db } = await fixture(t);
    await withClient(db.url, async (c) => {
      const before = await cacheRows(c);
      let dropped: Promise<unknown> | undefined;
      await assert.rejects(
        rebuildCalcache({
          databaseUrl: db.url,
          jobs: 2,
          batchSize: 10,
          // After the first batch, the GNIRS candidates vanish: a later
          // batch's GNIRS statement fails in the database.
          onProgress: (p) => {
            if (p.phase === "search" && dropped === undefined) {
              dropped = withClient(db.url, (d) =>
                d.query("DROP TABLE fitsfleet.calcache_cand_gnirs"),
              );
            }
          },
        }),
        /relation "fitsfleet\.calcache_cand_gnirs" does not exist/,
      );
      await dropped;
      assert.deepEqual(await cacheRows(c), before);
      const { rows } = await c.query<{ work: string | null; n: string }>(
        `SELECT to_regclass('fitsfleet.calcache_work')::text AS work,
                (SELECT count(*) FROM pg_stat_activity
                  WHERE application_name = 'fitsfleet rebuild calcache') AS n`,
      );
      assert.deepEqual(rows[0], { work: null, n: "0" });
    });
  });
});
