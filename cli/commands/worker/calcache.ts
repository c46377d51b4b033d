import { Command } from "commander";

import { formatCount } from "../../../lib/progress.js";
import type { CalcacheWorkerSummary } from "../../../worker/calcache.js";
import { wholeNumber } from "../../parse.js";
import { runContext } from "../../run.js";
import {
  addCommonWorkerOptions,
  type CommonWorkerFlags,
  commonWorkerSettings,
  withWorkerSignals,
} from "./common.js";
import { describeWorkerRun } from "./summary.js";

interface Flags extends CommonWorkerFlags {
  concurrency: string;
  batchSize: string;
  dependents: boolean;
}

export function describeCalcacheWorker(s: CalcacheWorkerSummary): string {
  return describeWorkerRun(
    s,
    `${formatCount(s.frames)} frame(s), ${formatCount(s.dependentsQueued)} dependent(s) queued,`,
  );
}

export function calcacheCommand(): Command {
  return addCommonWorkerOptions(
    new Command("calcache").description(
      "fill the calibration cache from the archive's calcachequeue until stopped (SIGINT/SIGTERM finish the batch in hand, or hand it back at --shutdown-timeout), or with --empty until nothing is left: each frame's associations are evaluated with the reference's rules and replace its calcache rows; a frame the reference fails on keeps its entry with fail_dt and the reason. A newly ingested frame also queues the frames whose associations it can change (its dependents; --no-dependents does as the reference does). After a rebuild, `rebuild calcache` is faster; ingest (with or without --fast-rebuild) still queues every new frame here, so run this worker for what arrives after that. While a `rebuild calcache` runs, the worker takes nothing (even with --empty) and carries on after it",
    ),
    "calcache",
  )
    .option(
      "--concurrency <n>",
      "batches worked on at once (about one per database core; the work is the database's)",
      "1",
    )
    .option(
      "--batch-size <n>",
      "queue entries per batch (one transaction)",
      "4",
    )
    .option(
      "--no-dependents",
      "evaluate only the queued frames, as the reference does: a new calibration then reaches earlier science frames only when they are queued again",
    )
    .action(async (flags: Flags, cmd: Command) => {
      const { logger, output, databaseUrl } = await runContext(cmd);
      const concurrency = wholeNumber("--concurrency", flags.concurrency, {
        max: 64,
      });
      const batchSize = wholeNumber("--batch-size", flags.batchSize, {
        max: 1000,
      });
      const common = commonWorkerSettings(flags);
      const { runCalcacheWorker } = await import("../../../worker/calcache.js");
      const summary = await withWorkerSignals((stop, abandon) =>
        runCalcacheWorker({
          name: flags.name,
          databaseUrl: databaseUrl(),
          concurrency,
          batchSize,
          empty: flags.empty === true,
          dependents: flags.dependents,
          ...common,
          logger,
          signal: stop,
          abandon,
        }),
      );
      output.result(summary, describeCalcacheWorker);
    });
}
