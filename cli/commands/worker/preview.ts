import { Command } from "commander";

import { formatCount } from "../../../lib/progress.js";
import type { PreviewWorkerSummary } from "../../../worker/preview.js";
import { wholeNumber } from "../../parse.js";
import { runContext } from "../../run.js";
import {
  addCommonWorkerOptions,
  type CommonWorkerFlags,
  commonWorkerSettings,
  withWorkerSignals,
} from "./common.js";
import {
  addPreviewOptions,
  type PreviewFlags,
  previewPoolOptions,
} from "./preview-options.js";
import { describeWorkerRun } from "./summary.js";

interface Flags extends PreviewFlags, CommonWorkerFlags {
  concurrency: string;
  batchSize: string;
}

export function describePreviewWorker(s: PreviewWorkerSummary): string {
  return describeWorkerRun(s, `${formatCount(s.files)} preview(s)`);
}

export function previewCommand(): Command {
  const command = addCommonWorkerOptions(
    new Command("preview").description(
      "render the previews in the archive's preview queue until stopped (SIGINT/SIGTERM finish the batches in hand, or hand them back at --shutdown-timeout), or with --empty until none are left",
    ),
    "preview",
  )
    .option("--concurrency <n>", "batches worked on at once", "1")
    .option(
      "--batch-size <n>",
      "queue entries per batch (one transaction)",
      "8",
    );
  return addPreviewOptions(command).action(
    async (flags: Flags, cmd: Command) => {
      const { config, logger, output, databaseUrl } = await runContext(cmd);
      const render = previewPoolOptions(flags);
      const concurrency = wholeNumber("--concurrency", flags.concurrency, {
        max: 64,
      });
      const batchSize = wholeNumber("--batch-size", flags.batchSize, {
        max: 1000,
      });
      const common = commonWorkerSettings(flags);
      // Loaded here, not at the top: `--help` need not load BullMQ or sharp.
      const { runPreviewWorker } = await import("../../../worker/preview.js");
      const summary = await withWorkerSignals((stop, abandon) =>
        runPreviewWorker({
          name: flags.name,
          databaseUrl: databaseUrl(),
          storage: config.storage,
          previews: config.previews,
          concurrency,
          batchSize,
          empty: flags.empty === true,
          ...common,
          s3Endpoint: config.s3Endpoint,
          render,
          stagingDir: flags.stagingDir,
          logger,
          signal: stop,
          abandon,
        }),
      );
      output.result(summary, describePreviewWorker);
    },
  );
}
