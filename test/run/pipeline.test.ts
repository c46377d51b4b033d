/**
 * `rebuild run` on the local provider, whole: every step done, the rows in
 * the database, every ledger row done or failed with its reason, the
 * calibration cache built, the fleet ended; `rebuild runs` and `runs show`
 * read it back; a second run against the same database while one is
 * active is refused, naming it.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import { withClient } from "../../lib/db/connect.js";
import { captureLogger } from "../../lib/logger.js";
import type { RunJournal } from "../../lib/run/journal.js";
import { runPipeline } from "../../lib/run/pipeline.js";
import {
  DEFAULT_RUN_SETTINGS,
  type RunSettings,
} from "../../lib/run/settings.js";
import { RUN_STEPS } from "../../lib/run/types.js";
import { testArchive } from "../helpers/archive.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";

function settings(storage: string, queue: string): RunSettings {
  return {
    ...DEFAULT_RUN_SETTINGS,
    provider: "local",
    storage,
    queue,
    instances: 2,
    intervalMs: 300,
  };
}

it("a whole run on the local provider: every step done, rows written, every ledger row finished, runs show reads it", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 2 });
  const db = await testDatabase(t, { empty: true });
  const queue = uniqueQueueName("run");
  const logger = captureLogger("warn");
  const steps: string[] = [];
  const report = await runPipeline(settings(archive.root, queue), {
    databaseUrl: db.url,
    redisUrl: testEnv().redisUrl,
    logger,
    onStep: (step, status) => steps.push(`${step}:${status}`),
  });
  assert.equal(report.run.state, "succeeded");
  assert.deepEqual(
    report.run.steps.map((s) => [s.step, s.status]),
    RUN_STEPS.map((s) => [s, s === "migrate" ? "skipped" : "done"]),
  );
  const files = archive.good.length + archive.corrupt.length;
  const enqueue = report.run.steps.find((s) => s.step === "enqueue")!;
  assert.equal(enqueue.figures.matched, files);
  assert.equal(enqueue.figures.ledgerRows, files);
  assert.equal(report.ledger.done, archive.good.length);
  assert.equal(report.ledger.failed, archive.corrupt.length);
  assert.equal(report.rows.diskfile, archive.good.length);
  assert.equal(report.failures.length, archive.corrupt.length);
  assert.ok(steps.includes("drain:done") && steps.includes("verify:done"));
  const calcache = report.run.steps.find((s) => s.step === "calcache")!;
  await withClient(db.url, async (c) => {
    // The frames the reference's bulk rebuild covers: canonical, not engineering.
    const { rows: covered } = await c.query<{ n: string }>(
      `SELECT count(*) AS n FROM header h JOIN diskfile d ON d.id = h.diskfile_id
        WHERE d.canonical AND NOT h.engineering`,
    );
    assert.ok(Number(covered[0]!.n) > 0);
    assert.equal(calcache.figures.frames, Number(covered[0]!.n));
    const { rows } = await c.query<{ state: string; error: string | null }>(
      "SELECT state, error FROM fitsfleet.ingest_ledger",
    );
    assert.equal(rows.length, files);
    for (const r of rows) {
      assert.ok(
        r.state === "done" || (r.state === "failed" && (r.error ?? "") !== ""),
        `${r.state}: ${r.error}`,
      );
    }
    const { rows: fleets } = await c.query<{ state: string; run: string }>(
      "SELECT state, run FROM fitsfleet.fleets",
    );
    assert.deepEqual(fleets, [{ state: "ended", run: report.run.id }]);
    const { rows: cache } = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM calcache",
    );
    assert.equal(Number(cache[0]!.n), calcache.figures.rows);
  });

  const env = {
    FITSFLEET_DATABASE_URL: db.url,
    FITSFLEET_REDIS_URL: testEnv().redisUrl,
  };
  const list = await runCli(["--json", "rebuild", "runs"], env);
  assert.equal(list.code, 0, list.stderr);
  const runs = JSON.parse(list.stdout) as { id: string; state: string }[];
  assert.deepEqual(
    runs.map((r) => [r.id, r.state]),
    [[report.run.id, "succeeded"]],
  );
  const show = await runCli(["rebuild", "runs", "show", report.run.id], env);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, new RegExp(`run ${report.run.id} \\(local`));
  assert.match(show.stdout, /^verify +done +1 /m);
  assert.match(show.stdout, /^migrate +skipped +.*no --from/m);
  const missing = await runCli(
    ["rebuild", "runs", "show", "r-nope-000000"],
    env,
  );
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /no run r-nope-000000 in this database/);
});

it("the journal gets every event inside the transaction of the state it describes; a journal that fails stops the run with nothing half-recorded", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 1 });
  const db = await testDatabase(t);
  await withClient(db.url, (c) =>
    c.query(
      "CREATE TABLE journal_probe (seq serial, run text, type text, step text, committed_with text)",
    ),
  );
  // Writes through the pipeline's client, reading the step's status in the
  // same transaction: an event-log implementation does exactly this.
  const journal: RunJournal = {
    async record(client, runId, events) {
      for (const e of events) {
        const step = "step" in e ? e.step : null;
        const { rows } = await client.query<{ status: string | null }>(
          "SELECT status FROM fitsfleet.run_steps WHERE run_id = $1 AND step = $2",
          [runId, step],
        );
        await client.query(
          "INSERT INTO journal_probe (run, type, step, committed_with) VALUES ($1, $2, $3, $4)",
          [runId, e.type, step, rows[0]?.status ?? null],
        );
      }
    },
  };
  const report = await runPipeline(
    { ...settings(archive.root, uniqueQueueName("journal")), calcache: false },
    {
      databaseUrl: db.url,
      redisUrl: testEnv().redisUrl,
      logger: captureLogger("warn"),
      journal,
    },
  );
  await withClient(db.url, async (c) => {
    const { rows } = await c.query<{
      type: string;
      step: string | null;
      committed_with: string | null;
    }>("SELECT type, step, committed_with FROM journal_probe ORDER BY seq");
    assert.equal(rows[0]?.type, "run-started");
    assert.equal(rows.at(-1)?.type, "run-finished");
    for (const step of RUN_STEPS) {
      const finished = rows.find(
        (r) =>
          r.step === step &&
          (r.type === "step-finished" || r.type === "step-skipped"),
      );
      assert.ok(finished !== undefined, `${step}: no end event`);
      // The event saw the state change it describes: they commit together.
      assert.match(finished.committed_with ?? "", /^(done|skipped)$/, step);
      if (step !== "init") {
        const started = rows.find(
          (r) => r.step === step && r.type === "step-started",
        );
        assert.equal(started?.committed_with, "running", step);
      }
    }
    assert.ok(rows.some((r) => r.type === "progress"));
    assert.equal(rows.filter((r) => r.type === "instance-joined").length, 2);
  });
  assert.equal(report.run.state, "succeeded");

  // A journal that throws: the state change it was part of rolls back.
  const failing: RunJournal = {
    record(_client, _runId, events) {
      return events.some(
        (e) => e.type === "step-finished" && e.step === "enqueue",
      )
        ? Promise.reject(new Error("event log unavailable"))
        : Promise.resolve();
    },
  };
  const db2 = await testDatabase(t);
  await assert.rejects(
    runPipeline(settings(archive.root, uniqueQueueName("journal")), {
      databaseUrl: db2.url,
      redisUrl: testEnv().redisUrl,
      logger: captureLogger("error"),
      journal: failing,
    }),
    /event log unavailable/,
  );
  await withClient(db2.url, async (c) => {
    const { rows } = await c.query<{ step: string; status: string }>(
      "SELECT step, status FROM fitsfleet.run_steps WHERE step IN ('enqueue', 'launch') ORDER BY position",
    );
    // Not done: its end was never recorded; the failure is (the journal
    // took that event), and nothing after it started.
    assert.deepEqual(rows, [
      { step: "enqueue", status: "failed" },
      { step: "launch", status: "pending" },
    ]);
  });
});
