/**
 * The steps panel after a real `rebuild run`: the init step, which runs
 * before the coordinator (it makes the coordinator's tables), shows the
 * time it really took, the same as its `fitsfleet.run_steps` row, and so
 * does every other finished step's row agree with what the page is sent.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import { startRebuildDashboard } from "../../cli/commands/rebuild/dashboard.js";
import type { DashboardSteps } from "../../lib/dashboard/source.js";
import { withClient } from "../../lib/db/connect.js";
import { captureLogger } from "../../lib/logger.js";
import { runPipeline } from "../../lib/run/pipeline.js";
import { DEFAULT_RUN_SETTINGS } from "../../lib/run/settings.js";
import { testArchive } from "../helpers/archive.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { browser, openPage, tableRows, waitForText } from "./helpers.js";

it("after a real run, /api/steps gives init the duration run_steps recorded, not 0", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 1 });
  // Empty: init applies every migration, as on a new database.
  const db = await testDatabase(t, { empty: true });
  const report = await runPipeline(
    {
      ...DEFAULT_RUN_SETTINGS,
      provider: "local",
      storage: archive.root,
      queue: uniqueQueueName("dash-steps"),
      instances: 1,
      intervalMs: 300,
      calcache: false,
    },
    {
      databaseUrl: db.url,
      redisUrl: testEnv().redisUrl,
      logger: captureLogger("warn"),
    },
  );
  assert.equal(report.run.state, "succeeded");
  const recorded = await withClient(db.url, async (c) => {
    const { rows } = await c.query<{
      step: string;
      started_at: Date;
      ended_at: Date;
    }>(
      `SELECT step, started_at, ended_at FROM fitsfleet.run_steps
        WHERE run_id = $1 AND status = 'done'`,
      [report.run.id],
    );
    const { rows: events } = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM fitsfleet.run_events WHERE run_id = $1",
      [report.run.id],
    );
    assert.ok(Number(events[0]!.n) > 0, "the steps come from the events");
    return new Map(rows.map((r) => [r.step, r]));
  });
  const init = recorded.get("init")!;
  assert.ok(init !== undefined, "init is done");
  const initMs = init.ended_at.getTime() - init.started_at.getTime();
  assert.ok(initMs > 0, "run_steps: init took time");

  const server = await startRebuildDashboard({
    databaseUrl: db.url,
    run: report.run.id,
    pollMs: 200,
  });
  t.after(() => server.close());
  const response = await fetch(new URL("/api/steps", server.url), {
    headers: { authorization: `Bearer ${server.token}` },
  });
  assert.equal(response.status, 200);
  const steps = (await response.json()) as DashboardSteps;
  assert.equal(steps.runId, report.run.id);
  assert.equal(steps.status, "succeeded");
  const shown = steps.steps.find((s) => s.step === "init")!;
  assert.equal(shown.status, "done");
  assert.ok(shown.seconds !== null && shown.seconds > 0, "init is not 0 s");
  assert.equal(shown.seconds, initMs / 1000, "the same as run_steps");
  assert.equal(shown.startedAt, init.started_at.toISOString());
  assert.equal(shown.endedAt, init.ended_at.toISOString());
  const migrate = steps.steps.find((s) => s.step === "migrate")!;
  assert.equal(migrate.status, "skipped", "no --from");

  // The page: init's row shows its time, a fraction of a second as such.
  const b = await browser(t);
  const { page, problems } = await openPage(b);
  await page.goto(server.tokenUrl);
  await waitForText(
    page,
    "#steps tbody tr:nth-child(1) td:nth-child(2)",
    "done",
  );
  const initRow = (await tableRows(page, "#steps"))[0]!;
  assert.equal(initRow[0], "init");
  const expected =
    initMs < 950
      ? `${(initMs / 1000).toFixed(1)}s`
      : `${Math.round(initMs / 1000)}s`;
  assert.equal(initRow[3], initMs < 50 ? "<0.1s" : expected);
  assert.notEqual(initRow[3], "0s");
  assert.deepEqual(problems, []);

  for (const step of steps.steps.filter((s) => s.status === "done")) {
    const row = recorded.get(step.step);
    assert.ok(row !== undefined, `${step.step} done in run_steps too`);
    assert.ok(
      Date.parse(step.startedAt!) <= Date.parse(step.endedAt!),
      `${step.step} ends after it starts`,
    );
  }
});
