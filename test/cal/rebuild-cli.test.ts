/**
 * `fitsfleet rebuild calcache` as a subprocess: bad flags exit 2 with the
 * flag named, a dry run writes nothing and counts frames per instrument,
 * and a rebuild fills the cache and prints its summary (also as JSON); a
 * rebuild says so while it waits for a calcache worker's batch in flight.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import { calcacheOptions } from "../../cli/commands/rebuild/calcache.js";
import { enterCalcacheWriters } from "../../lib/cal/queue.js";
import { connect, withClient } from "../../lib/db/connect.js";
import { CALCACHE_WRITERS_GATE_KEY } from "../../lib/db/locks.js";
import { UsageError } from "../../lib/errors.js";
import { generateCalArchive } from "../helpers/cal-archive.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase } from "../helpers/db.js";

it("rejects bad flags with the flag named (exit 2)", async () => {
  for (const [args, pattern] of [
    [["--jobs", "0"], /--jobs "0": must be a whole number/],
    [["--jobs", "two"], /--jobs "two"/],
    [["--since", "yesterday-ish"], /--since "yesterday-ish": not a date/],
  ] as const) {
    const r = await runCli([
      "--database-url",
      "postgres://nobody@127.0.0.1:1/none",
      "rebuild",
      "calcache",
      ...args,
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, pattern);
  }
  assert.throws(() => calcacheOptions({ jobs: "1.5" }), UsageError);
  assert.deepEqual(
    calcacheOptions({ instrument: ["GMOS,niri", "F2"], since: "2020-01-02" }),
    {
      jobs: undefined,
      since: new Date("2020-01-02T00:00:00Z"),
      instruments: ["GMOS", "niri", "F2"],
      includeEngineering: false,
      dryRun: false,
    },
  );
});

it("dry-runs, then rebuilds with a summary per instrument and caltype", async (t) => {
  const db = await testDatabase(t);
  await withClient(db.url, (c) => generateCalArchive(c, 5, 40));
  const env = { FITSFLEET_DATABASE_URL: db.url };
  const dry = await runCli(["rebuild", "calcache", "--dry-run", "--json"], env);
  assert.equal(dry.code, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as {
    dryRun: boolean;
    frames: { instrument: string; frames: number }[];
    framesTotal: number;
  };
  assert.equal(plan.dryRun, true);
  assert.ok(plan.frames.some((f) => f.instrument === "GNIRS" && f.frames > 0));
  const count = () =>
    withClient(db.url, (c) =>
      c
        .query<{ n: string }>("SELECT count(*) AS n FROM calcache")
        .then((r) => Number(r.rows[0]!.n)),
    );
  assert.equal(await count(), 0);

  const run = await runCli(["rebuild", "calcache", "--jobs", "2"], env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stdout,
    new RegExp(`calibration cache rebuilt for ${plan.framesTotal} frame`),
  );
  assert.match(run.stdout, /instrument\s+caltype\s+associations/);
  assert.match(run.stdout, /GMOS-N\s+bias\s+\d+/);
  assert.match(run.stderr, /searched \d+\/\d+ frames, [\d.]+ frames\/s, ETA/);
  const rows = await count();
  assert.ok(rows >= 20, `${rows} rows`);

  const again = await runCli(
    ["rebuild", "calcache", "--instrument", "NIRI", "--json"],
    env,
  );
  assert.equal(again.code, 0, again.stderr);
  const report = JSON.parse(again.stdout) as {
    strategy: string;
    rowsWritten: number;
    rowsReplaced: number;
  };
  assert.equal(report.strategy, "in-place");
  // The same frames again: the same rows replace themselves.
  assert.equal(report.rowsReplaced, report.rowsWritten);
  assert.equal(await count(), rows);
});

it("waits for a calcache worker's batch in flight, and says so", async (t) => {
  const db = await testDatabase(t);
  await withClient(db.url, (c) => generateCalArchive(c, 5, 10));
  const batch = await connect(db.url);
  try {
    // What a worker's batch holds for its transaction.
    await batch.query("BEGIN");
    assert.equal(await enterCalcacheWriters(batch), true);
    const run = runCli(["rebuild", "calcache", "--jobs", "1"], {
      FITSFLEET_DATABASE_URL: db.url,
    });
    for (;;) {
      const { rows } = await batch.query<{ waiting: boolean }>(
        `SELECT EXISTS (
           SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE a.application_name = 'fitsfleet rebuild calcache'
              AND l.locktype = 'advisory' AND NOT l.granted
              AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint) AS waiting`,
        [CALCACHE_WRITERS_GATE_KEY],
      );
      if (rows[0]!.waiting) {
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await batch.query("COMMIT");
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /waiting for calcache workers' current batches/);
    assert.match(r.stdout, /calibration cache rebuilt for \d+ frame/);
  } finally {
    await batch.end();
  }
});
