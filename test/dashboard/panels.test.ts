/**
 * The dashboard's fleet, spend and steps panels in headless Chromium: a
 * fleet recorded in the fleet store (as `rebuild launch-fleet` records
 * one), its instances ending, the spend against the fleet's cap, and a
 * run's steps from an injected `RunState` loader. The last test leaves a
 * screenshot of a busy rebuild (docs/dashboard.png with
 * FFTEST_UPDATE_SCREENSHOT=1, else in the test's folder).
 */
import assert from "node:assert/strict";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { startRebuildDashboard } from "../../cli/commands/rebuild/dashboard.js";
import {
  endMembers,
  recordFleet,
  recordMembers,
  setFleetState,
} from "../../infra/fleet-store.js";
import type {
  DashboardFleet,
  DashboardSnapshot,
  RunStateLoader,
} from "../../lib/dashboard/source.js";
import { type AnyClient, withClient } from "../../lib/db/connect.js";
import { packageRoot } from "../../lib/paths.js";
import { RUN_STEPS, type RunState } from "../../lib/run/types.js";
import { testDatabase } from "../helpers/db.js";
import { tempDir } from "../helpers/tmp.js";
import {
  browser,
  claim,
  enqueueFiles,
  ingest,
  openPage,
  tableRows,
  textOf,
  waitForText,
} from "./helpers.js";

const HOUR = 3_600_000;

async function localFleet(c: AnyClient, name: string, run: string) {
  await recordFleet(c, {
    name,
    run,
    provider: "local",
    spec: { instances: 2, ingestWorkers: 2 },
    budget: 2,
    deadline: new Date(Date.now() + 6 * HOUR),
  });
  const launchedAt = new Date(Date.now() - 90_000);
  await recordMembers(c, name, [
    { instanceId: `${name}-1`, hourlyPrice: 0, launchedAt },
    { instanceId: `${name}-2`, hourlyPrice: 0, launchedAt },
  ]);
  await setFleetState(c, name, "running");
}

function runState(runId: string): RunState {
  const at = (minutesAgo: number) =>
    new Date(Date.now() - minutesAgo * 60_000).toISOString();
  const steps = Object.fromEntries(
    RUN_STEPS.map((s) => [s, { status: "pending" }]),
  ) as RunState["steps"];
  steps.init = {
    status: "done",
    startedAt: at(42),
    endedAt: at(41.9),
    figures: { migrations: 4 },
  };
  steps.migrate = {
    status: "skipped",
    startedAt: at(41.9),
    endedAt: at(41.9),
    reason: "no --from given",
  };
  steps.enqueue = {
    status: "done",
    startedAt: at(41.9),
    endedAt: at(41),
    figures: { files: 1200, bytes: 47_000_000_000 },
  };
  steps.launch = {
    status: "done",
    startedAt: at(41),
    endedAt: at(40),
    figures: { instances: 3 },
  };
  steps.drain = { status: "running", startedAt: at(40) };
  return {
    runId,
    seq: 57,
    status: "running",
    provider: "ec2",
    startedAt: at(42),
    steps,
    progress: { done: 0, failed: 0, queued: 0, active: 0 },
    instances: {},
    spendDollars: 0.21,
  };
}

describe("rebuild dashboard panels", () => {
  it("shows a recorded local fleet's instances and follows them as they end", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await enqueueFiles(c, 3);
      // An older fleet of another run: not the one shown.
      await localFleet(c, "older", "run-0");
      await setFleetState(c, "older", "ended", "drained");
      await localFleet(c, "dash-local", "run-1");
    });
    const server = await startRebuildDashboard({
      databaseUrl: db.url,
      run: "run-1",
      pollMs: 200,
    });
    t.after(() => server.close());
    const b = await browser(t);
    const { page, problems } = await openPage(b);
    await page.goto(server.tokenUrl);
    await waitForText(page, "#fleet-name", "dash-local (local)");
    assert.match(
      await textOf(page, "#fleet-summary"),
      /^running; 2 of 2 instance\(s\) running; deadline /,
    );
    const rows = await tableRows(page, "#fleet");
    assert.deepEqual(
      rows.map((r) => [r[0], r[1], r[2], r[6]]),
      [
        ["dash-local-1", "local", "running", "$0.0000"],
        ["dash-local-2", "local", "running", "$0.0000"],
      ],
    );
    // Launched 90 s ago: the age reads a minute and some seconds.
    assert.match(rows[0]![5]!, /^1m \d\ds$/);
    assert.equal(await textOf(page, "#spend-dollars"), "$0.0000");
    assert.equal(await textOf(page, "#spend-budget"), "a cap of $2.00");
    const fleet = (await (
      await fetch(new URL("/api/fleet", server.url), {
        headers: { authorization: `Bearer ${server.token}` },
      })
    ).json()) as DashboardFleet;
    assert.equal(fleet.name, "dash-local");
    assert.equal(fleet.provider, "local");
    assert.deepEqual(
      fleet.instances.map((i) => [i.id, i.type, i.state, i.hourlyPrice]),
      [
        ["dash-local-1", null, "running", 0],
        ["dash-local-2", null, "running", 0],
      ],
    );

    await withClient(db.url, async (c) => {
      await endMembers(c, "dash-local", ["dash-local-2"]);
    });
    await waitForText(
      page,
      "#fleet tbody tr:nth-child(2) td:nth-child(3)",
      "ended",
    );
    await withClient(db.url, async (c) => {
      await endMembers(c, "dash-local");
      await setFleetState(c, "dash-local", "ended", "the queue drained");
    });
    await waitForText(
      page,
      "#fleet-summary",
      `ended — the queue drained; 0 of 2 instance(s) running; deadline ${await page.evaluate(
        (d: string) => new Date(d).toLocaleString(),
        fleet.deadline,
      )}`,
    );
    assert.deepEqual(problems, []);
  });

  it("shows the run's steps from the injected loader, spend against the cap, and leaves a screenshot", async (t) => {
    const db = await testDatabase(t);
    const files = 1200;
    await withClient(db.url, async (c) => {
      const ids = await enqueueFiles(c, files);
      const errors = new Map([
        [ids[17]!, "HDU 2, byte 8640: NAXIS2 = -1 is not a valid axis length"],
        [ids[260]!, "bzip2 stream corrupt at byte 1048576"],
        [ids[495]!, "no END card in the primary header"],
      ]);
      await ingest(c, ids.slice(0, 750), "i-0a1b2c3d4e5f60718-1", errors);
      await claim(c, ids.slice(750, 762), "i-0a1b2c3d4e5f60718-2");
      // The finishes spread over the last 40 minutes, faster as instances
      // joined: the chart's history, as a real run leaves it.
      await c.query(
        `WITH r AS (
           SELECT id, row_number() OVER (ORDER BY id) AS k, count(*) OVER () AS n
             FROM fitsfleet.ingest_ledger WHERE state IN ('done', 'failed'))
         UPDATE fitsfleet.ingest_ledger l
            SET finished_at = now() - make_interval(secs => 2400 * (1 - sqrt(r.k::float8 / r.n))),
                started_at = now() - make_interval(secs => 2400 * (1 - sqrt(r.k::float8 / r.n)) + 20)
           FROM r WHERE l.id = r.id`,
      );
      await recordFleet(c, {
        name: "rebuild-2026-12-07",
        run: "run-7",
        provider: "ec2",
        region: "us-west-2",
        spec: { instances: 3 },
        budget: 5,
        maxHourlyCost: 1,
        deadline: new Date(Date.now() + 4 * HOUR),
      });
      const launchedAt = new Date(Date.now() - 40 * 60_000);
      await recordMembers(c, "rebuild-2026-12-07", [
        {
          instanceId: "i-0a1b2c3d4e5f60718",
          instanceType: "c7g.2xlarge",
          zone: "us-west-2a",
          lifecycle: "spot",
          hourlyPrice: 0.1124,
          launchedAt,
        },
        {
          instanceId: "i-0f9e8d7c6b5a40312",
          instanceType: "c6g.2xlarge",
          zone: "us-west-2b",
          lifecycle: "spot",
          hourlyPrice: 0.0981,
          launchedAt,
        },
        {
          instanceId: "i-07766554433221100",
          instanceType: "m7g.2xlarge",
          zone: "us-west-2c",
          lifecycle: "spot",
          hourlyPrice: 0.1203,
          launchedAt,
          endedAt: new Date(Date.now() - 25 * 60_000),
        },
      ]);
      await setFleetState(c, "rebuild-2026-12-07", "running");
    });
    let state = runState("run-7");
    const asked: string[] = [];
    const loadRunState: RunStateLoader = (_client, runId) => {
      asked.push(runId);
      return Promise.resolve(runId === state.runId ? state : undefined);
    };
    const server = await startRebuildDashboard({
      databaseUrl: db.url,
      run: "run-7",
      pollMs: 200,
      loadRunState,
    });
    t.after(() => server.close());
    assert.ok(asked.length > 0 && asked.every((r) => r === "run-7"));

    const b = await browser(t);
    const { page, problems } = await openPage(b);
    await page.goto(server.tokenUrl);
    await waitForText(page, "#run-title", "run run-7 — running (ec2)");
    const steps = await tableRows(page, "#steps");
    assert.deepEqual(
      steps.map((r) => [r[0], r[1]]),
      RUN_STEPS.map((s) => [s, state.steps[s].status]),
    );
    assert.equal(steps[2]![4], "files 1,200, bytes 47,000,000,000");
    assert.equal(steps[1]![4], "no --from given");
    assert.equal(steps[0]![3], "6s");
    assert.equal(await textOf(page, "#count-done"), "747");
    assert.equal(await textOf(page, "#count-failed"), "3");
    assert.equal(await textOf(page, "#count-active"), "12");

    const snap = (await (
      await fetch(new URL("/api/snapshot", server.url), {
        headers: { authorization: `Bearer ${server.token}` },
      })
    ).json()) as DashboardSnapshot;
    // Two instances for 40 minutes, one for 15 of them.
    const expected = (0.1124 + 0.0981) * (40 / 60) + 0.1203 * (15 / 60);
    assert.ok(
      Math.abs(snap.spend.dollars - expected) < 0.01,
      `spend ${snap.spend.dollars}, expected about ${expected}`,
    );
    assert.equal(snap.spend.source, "fleet");
    assert.equal(snap.spend.budget, 5);
    assert.equal(snap.spend.maxHourlyCost, 1);
    assert.equal(snap.spend.runDollars, 0.21);
    assert.ok(Math.abs(snap.spend.hourlyRate - (0.1124 + 0.0981)) < 1e-9);
    assert.equal(
      await textOf(page, "#spend-dollars"),
      `$${snap.spend.dollars.toFixed(4)}`,
    );
    assert.equal(await textOf(page, "#spend-budget"), "a cap of $5.00");
    assert.ok(snap.progress.history.length > 20, "a chart over the run");
    const rate = snap.progress.filesPerSecond;
    assert.ok(rate > 0);
    assert.equal(await textOf(page, "#rate"), rate.toFixed(2));
    assert.deepEqual(
      snap.steps.steps.map((s) => s.status),
      RUN_STEPS.map((s) => state.steps[s].status),
    );

    // The run moves on: the loader's new state reaches the page.
    state = {
      ...state,
      seq: 58,
      steps: {
        ...state.steps,
        drain: {
          status: "done",
          startedAt: state.steps.drain.startedAt,
          endedAt: new Date().toISOString(),
          figures: { files: 1200 },
        },
        calcache: { status: "running", startedAt: new Date().toISOString() },
      },
    };
    await waitForText(
      page,
      "#steps tbody tr:nth-child(6) td:nth-child(2)",
      "running",
    );
    assert.equal(
      await textOf(page, "#steps tbody tr:nth-child(5) td:nth-child(2)"),
      "done",
    );
    // Back to the view the screenshot shows.
    state = runState("run-7");
    await waitForText(
      page,
      "#steps tbody tr:nth-child(5) td:nth-child(2)",
      "running",
    );
    assert.deepEqual(problems, []);

    const shot = join(tempDir(t), "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    assert.deepEqual(
      [...png.subarray(0, 8)],
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      "a PNG",
    );
    assert.ok(png.length > 20_000, `a real picture, ${png.length} bytes`);
    if (process.env.FFTEST_UPDATE_SCREENSHOT === "1") {
      copyFileSync(shot, join(packageRoot(), "docs", "dashboard.png"));
    }
  });
});
