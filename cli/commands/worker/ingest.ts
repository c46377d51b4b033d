import { Command } from "commander";

import { databaseUrl, redisUrl } from "../../../lib/endpoints.js";
import { UsageError } from "../../../lib/errors.js";
import { formatCount } from "../../../lib/progress.js";
import { defaultLockDir } from "../../../lib/worker-lock.js";
import {
  type IngestWorkerSummary,
  runIngestWorker,
} from "../../../worker/ingest.js";
import { commandContext } from "../../context.js";
import { onInterrupt } from "../../signals.js";
import { QUEUE_OPTION } from "../rebuild/common.js";
import {
  addPreviewOptions,
  type PreviewFlags,
  previewPoolOptions,
} from "./preview-options.js";
import { describeWorkerRun } from "./summary.js";

interface WorkerFlags extends PreviewFlags {
  name: string;
  queue: string;
  lockfile?: boolean;
  lockDir?: string;
  empty?: boolean;
  concurrency?: string;
  fastRebuild?: boolean;
  makePreviews?: boolean;
  stallTimeout: string;
}

export function describeWorker(s: IngestWorkerSummary): string {
  return describeWorkerRun(s, `${formatCount(s.files)} file(s)`);
}

export function ingestCommand(): Command {
  const command = new Command("ingest")
    .description(
      "ingest queued files until stopped (SIGINT/SIGTERM finish the batches in hand), or with --empty until no work is left",
    )
    .option("--name <name>", "this worker's name (logs, ledger, lock)", "1")
    .option(...QUEUE_OPTION)
    .option(
      "--lockfile",
      "refuse to start if a worker of the same name runs on this host",
    )
    .option(
      "--lock-dir <dir>",
      "where --lockfile keeps its lock (default: $XDG_RUNTIME_DIR or the temp folder)",
    )
    .option("--empty", "exit 0 when the queue has no work left")
    .option(
      "--concurrency <n>",
      "batches worked on at once (default: 2 with --fast-rebuild, so that one batch's database write overlaps the next one's reading; else 1)",
    )
    .option(
      "--fast-rebuild",
      "for a freshly initialised database: skip the look-ups for earlier versions and write each batch in one transaction",
    )
    .option(
      "--stall-timeout <seconds>",
      "how long the batch of a worker that died waits before another worker takes it over",
      "60",
    )
    .option(
      "--make-previews",
      "render each ingested file's preview from the copy in hand (an existing one is kept unless the file is forced or a new version); failures go to the preview queue",
    );
  return addPreviewOptions(command).action(
    async (flags: WorkerFlags, cmd: Command) => {
      const { config, logger, output } = commandContext(cmd);
      const render =
        flags.makePreviews === true ? previewPoolOptions(flags) : undefined;
      const concurrency = Number(
        flags.concurrency ?? (flags.fastRebuild === true ? 2 : 1),
      );
      if (
        !Number.isInteger(concurrency) ||
        concurrency < 1 ||
        concurrency > 64
      ) {
        throw new UsageError(
          `--concurrency ${flags.concurrency}: a whole number from 1 to 64`,
        );
      }
      const stall = Number(flags.stallTimeout);
      if (!Number.isFinite(stall) || stall < 1) {
        throw new UsageError(
          `--stall-timeout ${flags.stallTimeout}: at least 1 second`,
        );
      }
      const abort = new AbortController();
      const unregister = onInterrupt(() => abort.abort());
      try {
        const summary = await runIngestWorker({
          name: flags.name,
          databaseUrl: databaseUrl(config, logger),
          redisUrl: redisUrl(config, logger),
          queue: flags.queue,
          concurrency,
          empty: flags.empty === true,
          fastRebuild: flags.fastRebuild === true,
          makePreviews: flags.makePreviews === true,
          previews: config.previews,
          render,
          stagingDir: flags.stagingDir,
          lockDir:
            flags.lockfile === true
              ? (flags.lockDir ?? defaultLockDir())
              : undefined,
          s3Endpoint: config.s3Endpoint,
          logger,
          lockDurationMs: stall * 1000,
          stalledIntervalMs: Math.min(30_000, (stall * 1000) / 2),
          signal: abort.signal,
        });
        output.result(summary, describeWorker);
      } finally {
        unregister();
      }
    },
  );
}
