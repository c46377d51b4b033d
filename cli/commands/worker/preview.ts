import { Command } from "commander";

import { databaseUrl } from "../../../lib/endpoints.js";
import { UsageError } from "../../../lib/errors.js";
import { formatCount } from "../../../lib/progress.js";
import { defaultLockDir } from "../../../lib/worker-lock.js";
import {
  type PreviewWorkerSummary,
  runPreviewWorker,
} from "../../../worker/preview.js";
import { commandContext } from "../../context.js";
import { onInterrupt } from "../../signals.js";
import {
  addPreviewOptions,
  type PreviewFlags,
  previewPoolOptions,
} from "./preview-options.js";
import { describeWorkerRun } from "./summary.js";

interface Flags extends PreviewFlags {
  name: string;
  lockfile?: boolean;
  lockDir?: string;
  empty?: boolean;
  concurrency: string;
  batchSize: string;
}

export function describePreviewWorker(s: PreviewWorkerSummary): string {
  return describeWorkerRun(s, `${formatCount(s.files)} preview(s)`);
}

function wholeNumber(flag: string, value: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new UsageError(`${flag} ${value}: a whole number from 1 to ${max}`);
  }
  return n;
}

export function previewCommand(): Command {
  const command = new Command("preview")
    .description(
      "render the previews in the archive's preview queue until stopped (SIGINT/SIGTERM finish the batches in hand), or with --empty until none are left",
    )
    .option("--name <name>", "this worker's name (logs, lock)", "1")
    .option(
      "--lockfile",
      "refuse to start if a preview worker of the same name runs on this host",
    )
    .option(
      "--lock-dir <dir>",
      "where --lockfile keeps its lock (default: $XDG_RUNTIME_DIR or the temp folder)",
    )
    .option("--empty", "exit 0 when the queue has nothing left")
    .option("--concurrency <n>", "batches worked on at once", "1")
    .option(
      "--batch-size <n>",
      "queue entries per batch (one transaction)",
      "8",
    );
  return addPreviewOptions(command).action(
    async (flags: Flags, cmd: Command) => {
      const { config, logger, output } = commandContext(cmd);
      const render = previewPoolOptions(flags);
      const concurrency = wholeNumber("--concurrency", flags.concurrency, 64);
      const batchSize = wholeNumber("--batch-size", flags.batchSize, 1000);
      const abort = new AbortController();
      const unregister = onInterrupt(() => abort.abort());
      try {
        const summary = await runPreviewWorker({
          name: flags.name,
          databaseUrl: databaseUrl(config, logger),
          storage: config.storage,
          previews: config.previews,
          concurrency,
          batchSize,
          empty: flags.empty === true,
          lockDir:
            flags.lockfile === true
              ? (flags.lockDir ?? defaultLockDir())
              : undefined,
          s3Endpoint: config.s3Endpoint,
          render,
          stagingDir: flags.stagingDir,
          logger,
          signal: abort.signal,
        });
        output.result(summary, describePreviewWorker);
      } finally {
        unregister();
      }
    },
  );
}
