/**
 * The resume chain the pipeline-resume tests share: `rebuild run` (the real
 * CLI) killed at each of a list of kill points (lib/run/faults.ts), then
 * `--resume`d, until a last resume finishes; then what must hold: nothing
 * repeated, nothing lost.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";

import { createPreviousVersionDatabase } from "../../fixtures/previous-version.js";
import { withClient } from "../../lib/db/connect.js";
import { packageRoot } from "../../lib/paths.js";
import { KILL_AT_VARIABLE } from "../../lib/run/faults.js";
import { RUN_STEPS } from "../../lib/run/types.js";
import { testArchive } from "../helpers/archive.js";
import { CLI } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function cli(
  args: string[],
  env: Record<string, string>,
): Promise<Exit> {
  const base: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("FITSFLEET_") && !k.startsWith("FFTEST_")) {
      base[k] = v;
    }
  }
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...base, ...env }, timeout: 120_000 },
      (_error, stdout, stderr) =>
        resolve({
          code: child.exitCode,
          signal: child.signalCode,
          stdout,
          stderr,
        }),
    );
  });
}

/** Every kill point in pipeline order: the boundaries, and the points inside the steps. */
export const POINTS = [
  "after:init",
  "before:migrate",
  "migrate:started",
  "after:migrate",
  "before:enqueue",
  "enqueue:listed",
  "enqueue:ledger-written",
  "enqueue:queued",
  "after:enqueue",
  "before:launch",
  "launch:recorded",
  "launch:launched",
  "after:launch",
  "before:drain",
  "drain:working",
  "after:drain",
  "before:calcache",
  "calcache:working",
  "after:calcache",
  "before:terminate",
  "after:terminate",
  "before:verify",
  "after:verify",
];

/** Points inside a step, after it was marked started and before done: that step runs again. */
export const INSIDE = new Set([
  "migrate:started",
  "enqueue:listed",
  "enqueue:ledger-written",
  "enqueue:queued",
  "launch:recorded",
  "launch:launched",
  "drain:working",
  "calcache:working",
]);

export async function resumeChain(
  t: TestContext,
  points: readonly string[],
  options: { migrate: boolean },
): Promise<void> {
  const archive = testArchive(t, { dumpsPerInstrument: 2 });
  const previous = options.migrate
    ? await testDatabase(t, { empty: true })
    : undefined;
  if (previous !== undefined) {
    await withClient(previous.url, (c) =>
      createPreviousVersionDatabase(c, { usagelogRows: 500, seed: 3 }),
    );
  }
  const db = await testDatabase(t, { empty: true });
  const env = {
    FITSFLEET_DATABASE_URL: db.url,
    FITSFLEET_REDIS_URL: testEnv().redisUrl,
    FITSFLEET_STORAGE: archive.root,
  };
  const start = [
    "--json",
    "rebuild",
    "run",
    "--queue",
    uniqueQueueName("resume"),
    "--instances",
    "2",
    "--interval",
    "1s",
    ...(previous === undefined
      ? []
      : [
          "--from",
          previous.url,
          "--preset",
          "archive,summit",
          "--mapping",
          join(packageRoot(), "mappings", "fitsstorage-v2-to-v3.json"),
        ]),
  ];
  let runId: string | undefined;
  let extraAdded = false;
  for (const point of points) {
    const args =
      runId === undefined
        ? start
        : ["--json", "rebuild", "run", "--resume", runId];
    const begun = Date.now();
    const r = await cli(args, { ...env, [KILL_AT_VARIABLE]: point });
    t.diagnostic(`${point}: ${r.signal ?? r.code} in ${Date.now() - begun} ms`);
    assert.equal(
      r.signal,
      "SIGKILL",
      `${point}: expected the kill, got exit ${r.code}: ${r.stderr.slice(-2000)}`,
    );
    if (runId === undefined) {
      runId = await withClient(db.url, async (c) => {
        const { rows } = await c.query<{ id: string }>(
          "SELECT id FROM fitsfleet.runs",
        );
        return rows[0]?.id;
      });
      assert.ok(runId !== undefined, "the first attempt recorded its run");
    }
    if (
      !extraAdded &&
      (points.includes("enqueue:ledger-written")
        ? points.indexOf(point) >= points.indexOf("enqueue:ledger-written")
        : true)
    ) {
      // A file that arrives after the listing: a resumed enqueue that
      // listed the storage again would take it into the ledger.
      const first = archive.good[0]!;
      copyFileSync(
        join(archive.root, first.path, first.name),
        join(archive.root, first.path, "N20991231S9999.fits"),
      );
      extraAdded = true;
    }
  }
  // The last resume has nothing to kill it: it finishes.
  const last = await cli(["--json", "rebuild", "run", "--resume", runId!], env);
  assert.equal(last.code, 0, last.stderr.slice(-3000));
  const report = JSON.parse(last.stdout) as {
    run: {
      state: string;
      steps: {
        step: string;
        status: string;
        attempts: number;
        figures: Record<string, number>;
      }[];
    };
    ledger: Record<string, number>;
    rows: Record<string, number>;
  };
  assert.equal(report.run.state, "succeeded");
  // A step killed inside itself was started twice; every other step once.
  const insideCount = (step: string) =>
    points.filter((p) => INSIDE.has(p) && p.startsWith(`${step}:`)).length;
  for (const step of RUN_STEPS) {
    const s = report.run.steps.find((x) => x.step === step)!;
    assert.equal(
      s.status,
      step === "migrate" && !options.migrate ? "skipped" : "done",
      step,
    );
    if (step !== "init" && !(step === "migrate" && !options.migrate)) {
      assert.equal(
        s.attempts,
        1 + insideCount(step),
        `${step}: started ${s.attempts} times`,
      );
    }
  }
  const files = archive.good.length + archive.corrupt.length;
  const enqueue = report.run.steps.find((s) => s.step === "enqueue")!;
  assert.equal(enqueue.figures.matched, files);
  assert.equal(report.ledger.done, archive.good.length);
  assert.equal(report.ledger.failed, archive.corrupt.length);
  assert.equal(report.rows.diskfile, archive.good.length);
  await withClient(db.url, async (c) => {
    const { rows: late } = await c.query(
      "SELECT 1 FROM fitsfleet.ingest_ledger WHERE filename = 'N20991231S9999.fits'",
    );
    assert.equal(late.length, 0, "the storage was listed again on resume");
    const { rows: fleets } = await c.query<{ name: string; state: string }>(
      "SELECT name, state FROM fitsfleet.fleets WHERE run = $1",
      [runId],
    );
    // Killed after recording the fleet's name but before launching it, the
    // run launches under the next name: still one fleet.
    assert.equal(fleets.length, 1, JSON.stringify(fleets));
    assert.equal(fleets[0]!.state, "ended");
    if (options.migrate) {
      const { rows: users } = await c.query<{ n: string }>(
        "SELECT count(*) AS n FROM users",
      );
      assert.ok(
        Number(users[0]!.n) > 0,
        "the migrate step carried the users over",
      );
    }
    const { rows: bad } = await c.query(
      "SELECT 1 FROM fitsfleet.ingest_ledger WHERE state NOT IN ('done', 'failed') OR (state = 'failed' AND coalesce(error, '') = '')",
    );
    assert.equal(bad.length, 0);
  });
}
