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
  assert.equal(calcache.figures.frames, archive.good.length);
  await withClient(db.url, async (c) => {
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
