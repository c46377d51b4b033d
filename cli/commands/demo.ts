import { Command } from "commander";

import type { DemoRebuild, DemoResult } from "../../fixtures/demo.js";
import { UsageError } from "../../lib/errors.js";
import { formatCount, formatRate } from "../../lib/progress.js";
import { commandContext } from "../context.js";
import { describeInit } from "./db/init.js";
import { describeStatus } from "./db/status.js";
import { describeCalcacheRebuild } from "./rebuild/calcache.js";
import { describeRun } from "./rebuild/runs.js";
import { describeStack } from "./stack/up.js";
import { describeMigration } from "./upgrade/migrate-tables.js";

function describeRebuild(r: DemoRebuild): string {
  return [
    `synthetic archive ${r.archive}: ${formatCount(r.files)} files (${r.compressed} .bz2, ${r.corrupt} deliberately broken)`,
    `enqueued ${formatCount(r.enqueue.queued)} in ${r.enqueue.jobs} job(s); ${r.workers} local worker processes (--fast-rebuild --make-previews)`,
    `ingested ${formatCount(r.done)}, failed ${formatCount(r.failed)} in ${r.seconds.toFixed(1)} s (${formatRate(r.filesPerSecond)} files/s from the first file started to the last finished)`,
    `rows: ${Object.entries(r.rows)
      .map(([t, n]) => `${t} ${formatCount(n)}`)
      .join(", ")}`,
    `previews: ${formatCount(r.previews)} JPEGs in ${r.previewLocation}, rendered while ingesting`,
    `calibration cache: ${formatCount(r.calcache.frames)} frames, ${formatCount(r.calcache.associated)} associated, ${formatCount(r.calcache.rows)} rows`,
    ...(r.failures.length === 0
      ? []
      : [
          "failures (as `fitsfleet rebuild failures` lists them):",
          ...r.failures.map((f) => `  ${f.error.split("\n")[0]}`),
        ]),
  ].join("\n");
}

function describeDemo(result: DemoResult): string {
  return [
    "== embedded stack",
    describeStack(result.stack),
    "",
    "== db init",
    describeInit(result.init),
    "",
    "== db status",
    describeStatus(result.status),
    "",
    "== upgrade migrate-tables (a generated v2 archive's dump, mapped by mappings/fitsstorage-v2-to-v3.json)",
    describeMigration(result.upgrade),
    "",
    "== rebuild (enqueue, local ingest workers, calibration cache, verify)",
    describeRebuild(result.rebuild),
    "",
    ...(result.calcache === undefined
      ? []
      : [
          "== rebuild calcache (set-based, swapped in; `fitsfleet cal show FILE` for one frame)",
          describeCalcacheRebuild(result.calcache),
          "",
        ]),
    `== rebuild run ${result.run.id} (\`fitsfleet rebuild runs show ${result.run.id}\`)`,
    describeRun(result.run),
    "",
    `demo finished in ${result.seconds.toFixed(1)} s; the stack keeps running (\`fitsfleet rebuild status\`, \`fitsfleet stack down\`)`,
  ].join("\n");
}

export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "run the toolkit end to end on the embedded local stack: stack up, a generated previous-version dump and a synthetic archive, then `rebuild run` on the local provider over them (db init, migrate-tables from the dump, enqueue, local worker processes, the calibration cache, verify)",
    )
    .option("--files <n>", "files in the synthetic archive", "240")
    .option("--workers <n>", "local ingest worker processes", "2")
    .action(
      async (flags: { files: string; workers: string }, command: Command) => {
        const { config, logger, output } = commandContext(command);
        const files = Number(flags.files);
        const workers = Number(flags.workers);
        if (!Number.isInteger(files) || files < 1) {
          throw new UsageError(
            `--files ${flags.files}: a whole number, at least 1`,
          );
        }
        if (!Number.isInteger(workers) || workers < 1 || workers > 32) {
          throw new UsageError(
            `--workers ${flags.workers}: a whole number from 1 to 32`,
          );
        }
        // Loaded here, not at the top: `--help` need not load the demo's fixtures.
        const { runDemo } = await import("../../fixtures/demo.js");
        output.result(
          await runDemo(config.stackDir, {
            files,
            workers,
            logger,
            onProgress: (p) =>
              output.progress({ step: p.step, ...p.fields }, p.message),
            onStep: (step, status, detail) =>
              output.progress(
                { step, status, detail },
                `run: ${step} ${status}${detail === "" ? "" : ` (${detail})`}`,
              ),
          }),
          describeDemo,
        );
      },
    );
}
