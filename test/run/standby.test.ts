/**
 * `rebuild run` (the real CLI, local provider) with a real
 * `rebuild run --standby RUN` waiting on it: the active one is SIGKILLed
 * mid-run, the standby takes its lease, recovers the state from a snapshot
 * plus the later events, and finishes the run without repeating a finished
 * step. Then: the run's state folded from all its events equals the one
 * from a snapshot plus events and agrees with run_steps; the killed
 * coordinator's epoch can record nothing more; the dashboard shows the
 * steps; `runs show` names the coordinator; a standby for an ended run
 * exits 0 saying so.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { it } from "node:test";

import { startRebuildDashboard } from "../../cli/commands/rebuild/dashboard.js";
import { withClient } from "../../lib/db/connect.js";
import {
  appendEvents,
  eventPages,
  StaleEpochError,
} from "../../lib/run/events.js";
import { HOLD_AT_VARIABLE } from "../../lib/run/faults.js";
import { fold, initialState } from "../../lib/run/fold.js";
import { recover } from "../../lib/run/recover.js";
import { getRun } from "../../lib/run/store.js";
import { RUN_STEPS, type RunState } from "../../lib/run/types.js";
import { testArchive } from "../helpers/archive.js";
import { CLI } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { cli } from "./resume-chain.js";

interface Spawned {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout: () => string;
  stderr: () => string;
}

function start(args: string[], env: Record<string, string>): Spawned {
  const base: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("FITSFLEET_") && !k.startsWith("FFTEST_")) {
      base[k] = v;
    }
  }
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...base, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  return { child, done, stdout: () => out, stderr: () => err };
}

/** Polls `probe` until it returns a value; failing (not timing) after a generous bound. */
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  context: () => string,
): Promise<T> {
  const bound = Date.now() + 120_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > bound) {
      assert.fail(`never happened: ${what}\n${context()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

it("the active coordinator SIGKILLed mid-run: the waiting standby takes over, recovers and finishes the run, repeating no finished step", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 2 });
  const db = await testDatabase(t, { empty: true });
  const env = {
    FITSFLEET_DATABASE_URL: db.url,
    FITSFLEET_REDIS_URL: testEnv().redisUrl,
    FITSFLEET_STORAGE: archive.root,
  };
  const active = start(
    [
      "--json",
      "rebuild",
      "run",
      "--queue",
      uniqueQueueName("standby"),
      "--instances",
      "2",
      "--interval",
      "1s",
      "--snapshot-every",
      "3",
    ],
    { ...env, [HOLD_AT_VARIABLE]: "before:drain" },
  );
  const standbys: Spawned[] = [];
  t.after(() => {
    for (const p of [active, ...standbys]) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill("SIGKILL");
      }
    }
  });
  const logs = () =>
    `active: ${active.stderr().slice(-2000)}\nstandby: ${standbys[0]?.stderr().slice(-2000) ?? ""}`;
  // The active one is at the drain (init to launch done) when it is killed.
  await until(
    "the active run holding before the drain",
    () => {
      assert.equal(
        active.child.exitCode,
        null,
        `the active run ended: ${active.stderr()}`,
      );
      return Promise.resolve(
        /holding at before:drain/.test(active.stderr()) || undefined,
      );
    },
    logs,
  );
  const runId = await withClient(db.url, async (c) => {
    const { rows } = await c.query<{ id: string }>(
      "SELECT id FROM fitsfleet.runs",
    );
    return rows[0]!.id;
  });
  const standby = start(["--json", "rebuild", "run", "--standby", runId], env);
  standbys.push(standby);
  await until(
    "the standby waiting on the lease",
    () =>
      withClient(db.url, async (c) => {
        const { rows } = await c.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = 'fitsfleet coordinator (standby)'",
        );
        return rows.length > 0 || undefined;
      }),
    logs,
  );
  const before = await withClient(db.url, async (c) => {
    const { rows } = await c.query<{
      step: string;
      status: string;
      attempts: number;
      ended_at: Date | null;
    }>(
      "SELECT step, status, attempts, ended_at FROM fitsfleet.run_steps WHERE run_id = $1",
      [runId],
    );
    const { rows: lease } = await c.query<{ epoch: string }>(
      "SELECT epoch FROM fitsfleet.run_leases WHERE run_id = $1",
      [runId],
    );
    return { steps: rows, epoch: Number(lease[0]!.epoch) };
  });
  assert.equal(before.epoch, 1);
  const finishedBefore = before.steps.filter(
    (s) => s.status === "done" || s.status === "skipped",
  );
  assert.deepEqual(finishedBefore.map((s) => s.step).sort(), [
    "enqueue",
    "init",
    "launch",
    "migrate",
  ]);
  assert.equal(
    standby.child.exitCode,
    null,
    "the standby waits while the active one lives",
  );

  active.child.kill("SIGKILL");
  assert.equal((await active.done).signal, "SIGKILL");
  const bound = setTimeout(() => standby.child.kill("SIGKILL"), 180_000);
  const exit = await standby.done;
  clearTimeout(bound);
  assert.equal(exit.code, 0, logs());
  const outcome = JSON.parse(standby.stdout()) as {
    endedWhileStandingBy: boolean;
    recovery: { source: string; reason: string; replayed: number };
    report: { run: { state: string }; ledger: Record<string, number> };
  };
  assert.equal(outcome.endedWhileStandingBy, false);
  assert.equal(outcome.recovery.source, "snapshot", outcome.recovery.reason);
  assert.equal(outcome.report.run.state, "succeeded");
  assert.equal(outcome.report.ledger.done, archive.good.length);
  assert.equal(outcome.report.ledger.failed, archive.corrupt.length);

  await withClient(db.url, async (c) => {
    const { rows: steps } = await c.query<{
      step: (typeof RUN_STEPS)[number];
      status: string;
      attempts: number;
      ended_at: Date | null;
      figures: Record<string, number>;
    }>(
      "SELECT step, status, attempts, ended_at, figures FROM fitsfleet.run_steps WHERE run_id = $1",
      [runId],
    );
    for (const s of steps) {
      assert.ok(
        s.status === "done" || s.status === "skipped",
        `${s.step}: ${s.status}`,
      );
      if (s.step !== "init" && s.step !== "migrate") {
        assert.equal(s.attempts, 1, `${s.step} started ${s.attempts} times`);
      }
    }
    // What the killed coordinator had finished stayed as it finished it.
    for (const f of finishedBefore) {
      const now = steps.find((s) => s.step === f.step)!;
      assert.equal(
        now.ended_at?.toISOString(),
        f.ended_at?.toISOString(),
        f.step,
      );
    }
    const { rows: bad } = await c.query(
      "SELECT 1 FROM fitsfleet.ingest_ledger WHERE state NOT IN ('done', 'failed')",
    );
    assert.equal(bad.length, 0);

    // Both coordinators wrote events, each under its own epoch.
    const { rows: epochs } = await c.query<{ epoch: string }>(
      "SELECT DISTINCT epoch FROM fitsfleet.run_events WHERE run_id = $1 ORDER BY epoch",
      [runId],
    );
    assert.deepEqual(
      epochs.map((e) => Number(e.epoch)),
      [1, 2],
    );

    // From scratch (every event) and from a snapshot plus the later events: one state.
    let all: RunState = initialState(runId);
    for await (const page of eventPages(c, runId, { from: 1 })) {
      all = fold(all, page.events);
    }
    const fromSnapshot = await recover(c, runId);
    assert.equal(fromSnapshot.source, "snapshot");
    assert.ok((fromSnapshot.snapshotSeq ?? 0) > 0);
    assert.deepEqual(fromSnapshot.state, all);
    assert.equal(all.status, "succeeded");
    for (const s of steps) {
      const folded = all.steps[s.step];
      assert.equal(folded.status, s.status, s.step);
      if (s.status === "done") {
        assert.deepEqual(folded.figures, s.figures, s.step);
      }
    }

    // The killed coordinator's epoch records nothing more.
    const count = async () =>
      Number(
        (
          await c.query<{ n: string }>(
            "SELECT count(*) AS n FROM fitsfleet.run_events WHERE run_id = $1",
            [runId],
          )
        ).rows[0]!.n,
      );
    const n = await count();
    await assert.rejects(
      appendEvents(
        c,
        runId,
        [{ type: "spend", at: new Date().toISOString(), dollars: 1 }],
        {
          epoch: 1,
        },
      ),
      StaleEpochError,
    );
    assert.equal(await count(), n);
  });

  // The dashboard's steps panel, from the event log without a lease.
  const dashboard = await startRebuildDashboard({
    databaseUrl: db.url,
    run: runId,
  });
  try {
    const url = new URL("/api/steps", dashboard.url);
    url.searchParams.set("token", dashboard.token);
    const panel = await until(
      "the dashboard's steps",
      async () => {
        const res = await fetch(url);
        const body = (await res.json()) as {
          runId: string;
          status: string;
          steps: { step: string; status: string }[];
        };
        return body.status === "no run" ? undefined : body;
      },
      () => "",
    );
    assert.equal(panel.runId, runId);
    assert.equal(panel.status, "succeeded");
    assert.deepEqual(
      panel.steps.map((s) => `${s.step}:${s.status}`),
      RUN_STEPS.map((s) => `${s}:${s === "migrate" ? "skipped" : "done"}`),
    );
  } finally {
    await dashboard.close();
  }

  // runs show names the coordinator and counts the events.
  const shown = await cli(["rebuild", "runs", "show", runId], env);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(
    shown.stdout,
    /coordinator: \S+, epoch 2, lease released; \d+ events logged/,
  );

  // A standby for a run that has ended takes the free lease, says so, exits 0.
  const late = await cli(["--json", "rebuild", "run", "--standby", runId], env);
  assert.equal(late.code, 0, late.stderr);
  assert.equal(
    (JSON.parse(late.stdout) as { endedWhileStandingBy: boolean })
      .endedWhileStandingBy,
    true,
  );
  const plain = await cli(["rebuild", "run", "--standby", runId], env);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(
    plain.stdout,
    /ended \(succeeded\) while this coordinator stood by/,
  );
});

it("a coordinator whose lease epoch is superseded stops at once: no further step, nothing recorded, the fleet left to the new holder", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 1 });
  const db = await testDatabase(t, { empty: true });
  const env = {
    FITSFLEET_DATABASE_URL: db.url,
    FITSFLEET_REDIS_URL: testEnv().redisUrl,
    FITSFLEET_STORAGE: archive.root,
  };
  const active = start(
    [
      "rebuild",
      "run",
      "--queue",
      uniqueQueueName("superseded"),
      "--instances",
      "1",
      "--interval",
      "1s",
    ],
    { ...env, [HOLD_AT_VARIABLE]: "before:drain" },
  );
  t.after(() => {
    if (active.child.exitCode === null && active.child.signalCode === null) {
      active.child.kill("SIGKILL");
    }
  });
  await until(
    "the active run holding before the drain",
    () => {
      assert.equal(
        active.child.exitCode,
        null,
        `the active run ended: ${active.stderr()}`,
      );
      return Promise.resolve(
        /holding at before:drain/.test(active.stderr()) || undefined,
      );
    },
    () => active.stderr(),
  );
  const { runId, events } = await withClient(db.url, async (c) => {
    const { rows } = await c.query<{ id: string }>(
      "SELECT id FROM fitsfleet.runs",
    );
    // What a standby's takeover does to the lease when the active one hangs.
    await c.query(
      "UPDATE fitsfleet.run_leases SET epoch = epoch + 1 WHERE run_id = $1",
      [rows[0]!.id],
    );
    const { rows: n } = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM fitsfleet.run_events",
    );
    return { runId: rows[0]!.id, events: Number(n[0]!.n) };
  });
  const exit = await active.done;
  assert.equal(exit.code, 3, active.stderr());
  assert.match(
    active.stderr(),
    new RegExp(`run ${runId}: this coordinator lost its lease .*stopped`),
  );
  await withClient(db.url, async (c) => {
    const { rows: n } = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM fitsfleet.run_events",
    );
    assert.equal(Number(n[0]!.n), events, "nothing recorded after the loss");
    const run = (await getRun(c, runId))!;
    assert.equal(run.state, "running", "not marked failed by the stale one");
    const drain = run.steps.find((s) => s.step === "drain")!;
    assert.equal(drain.status, "pending");
    assert.equal(drain.attempts, 0);
    const { rows: fleets } = await c.query<{ state: string }>(
      "SELECT state FROM fitsfleet.fleets WHERE run = $1",
      [runId],
    );
    assert.equal(fleets.length, 1);
    assert.notEqual(fleets[0]!.state, "ended", "its fleet is the run's still");
  });
  // The run goes on under a new coordinator (here `--resume`, whose lease
  // waits out the stopped one's).
  const resumed = await cli(
    ["--json", "rebuild", "run", "--resume", runId],
    env,
  );
  assert.equal(resumed.code, 0, resumed.stderr.slice(-2000));
  assert.equal(
    (JSON.parse(resumed.stdout) as { run: { state: string } }).run.state,
    "succeeded",
  );
});
