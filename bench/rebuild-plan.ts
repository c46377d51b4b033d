/**
 * `rebuild plan` against `rebuild run`: the plan's estimate of the drain
 * (wall time for the run's shape) against the run's actual drain, on the
 * demo's corpus (240 synthetic files) and a bigger one (1,200), on the
 * local provider with two workers, previews off (the plan's sample does
 * not render them). Two estimates each: from a sample of 20 files measured
 * before the run, and from the previous run's ledger rates (the demo
 * corpus's run predicting the bigger one, and back). Rounds interleave the
 * corpora. Prints the error of each estimate in % (positive: the plan said
 * longer than it took).
 *
 * Usage: node --import tsx bench/rebuild-plan.ts [--rounds 2] [--big 1200]
 * (after `npm run build`: the workers run dist/cli/main.js). Starts and
 * removes its own throwaway stack.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { writeSyntheticArchive } from "../fixtures/synthetic/archive.js";
import { withClient } from "../lib/db/connect.js";
import { createLogger } from "../lib/logger.js";
import { runPipeline } from "../lib/run/pipeline.js";
import { planRebuild } from "../lib/run/plan.js";
import { DEFAULT_RUN_SETTINGS } from "../lib/run/settings.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const rounds = arg("--rounds", 2);
const big = arg("--big", 1200);
const WORKERS = 2;

const dir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-plan-"));
const logger = createLogger({ level: "warn" });
const pct = (estimate: number, actual: number) =>
  `${(((estimate - actual) / actual) * 100).toFixed(0)}%`;

try {
  const { state } = await stackUp(dir, { unsafeFast: true });
  const urls = stackUrls(state);
  const corpora = [
    { name: "demo (240 files)", files: 240 },
    { name: `bigger (${big} files)`, files: big },
  ];
  for (const c of corpora) {
    await writeSyntheticArchive(join(dir, `archive-${c.files}`), {
      files: c.files,
      dataScale: "small",
      layout: "by-night",
    });
  }
  const rows: string[][] = [];
  let database = 0;
  /** The database of the previous run: its ledger rates predict the next. */
  let previousDb: string | undefined;
  for (let round = 1; round <= rounds; round++) {
    for (const c of corpora) {
      const storage = join(dir, `archive-${c.files}`);
      const name = `bench_plan_${++database}`;
      await withClient(urls.adminUrl, (a) =>
        a.query(`CREATE DATABASE ${name}`),
      );
      const url = new URL(urls.databaseUrl);
      url.pathname = `/${name}`;
      // The endpoints the run will use: the plan's start-up probe connects to them.
      const sampled = await planRebuild({
        storage,
        provider: "local",
        localWorkers: [WORKERS],
        measure: true,
        sampleFiles: 20,
        databaseUrl: url.toString(),
        redisUrl: urls.redisUrl,
      });
      const fromLedger =
        previousDb === undefined
          ? undefined
          : await planRebuild({
              storage,
              provider: "local",
              localWorkers: [WORKERS],
              databaseUrl: previousDb,
              redisUrl: urls.redisUrl,
            });
      const report = await runPipeline(
        {
          ...DEFAULT_RUN_SETTINGS,
          provider: "local",
          storage,
          queue: `bench-plan-${database}`,
          instances: WORKERS,
          workersPerInstance: 1,
          intervalMs: 250,
          calcache: false,
          verifySample: 0,
        },
        { databaseUrl: url.toString(), redisUrl: urls.redisUrl, logger },
      );
      const drain = report.run.steps.find((s) => s.step === "drain")!;
      const actual = drain.figures.seconds!;
      const sampleEstimate = sampled.shapes[0]!.hours * 3600;
      const ledgerEstimate =
        fromLedger === undefined
          ? undefined
          : fromLedger.shapes[0]!.hours * 3600;
      rows.push([
        String(round),
        c.name,
        `${actual.toFixed(1)} s`,
        `${sampleEstimate.toFixed(1)} s`,
        pct(sampleEstimate, actual),
        ledgerEstimate === undefined ? "-" : `${ledgerEstimate.toFixed(1)} s`,
        ledgerEstimate === undefined ? "-" : pct(ledgerEstimate, actual),
      ]);
      console.log(rows.at(-1)!.join(" | "));
      previousDb = url.toString();
    }
  }
  console.log(
    [
      "",
      "| round | corpus | actual drain | plan (sample) | error | plan (previous run's ledger) | error |",
      "| --- | --- | --- | --- | --- | --- | --- |",
      ...rows.map((r) => `| ${r.join(" | ")} |`),
    ].join("\n"),
  );
} finally {
  await stackDown(dir, { purge: true });
  rmSync(dir, { recursive: true, force: true });
}
