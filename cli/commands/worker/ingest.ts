import { Command, Option } from "commander";

import { formatCount } from "../../../lib/progress.js";
import type { IngestWorkerSummary } from "../../../worker/ingest.js";
import { duration, wholeNumber } from "../../parse.js";
import { runContext } from "../../run.js";
import { QUEUE_OPTION } from "../rebuild/common.js";
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

interface WorkerFlags extends PreviewFlags, CommonWorkerFlags {
  queue: string;
  concurrency?: string;
  fastRebuild?: boolean;
  makePreviews?: boolean;
  stallTimeout: string;
  startupProbe?: boolean;
}

/** The endpoint when one is configured; the probe connects to what there is. */
function configured(url: () => string): string | undefined {
  try {
    return url();
  } catch {
    return undefined;
  }
}

export function describeWorker(s: IngestWorkerSummary): string {
  const extra = [
    s.exhausted > 0 ? `${s.exhausted} batch(es) ran out of retries` : "",
    s.handedBack > 0 ? `${s.handedBack} batch(es) handed back` : "",
  ]
    .filter((x) => x !== "")
    .join("; ");
  return describeWorkerRun(
    s,
    `${formatCount(s.files)} file(s)${extra === "" ? "" : `; ${extra}`}`,
  );
}

export function ingestCommand(): Command {
  const command = addCommonWorkerOptions(
    new Command("ingest").description(
      "ingest queued files until stopped (SIGINT/SIGTERM finish the batches in hand, or hand them back at --shutdown-timeout), or with --empty until nothing is left that can still succeed",
    ),
    "ingest",
  )
    .option(...QUEUE_OPTION)
    .option(
      "--concurrency <n>",
      "batches worked on at once (default: 2 with --fast-rebuild, so that one batch's database write overlaps the next one's reading; else 1)",
    )
    .option(
      "--fast-rebuild",
      "for a freshly initialised database: skip the look-ups for earlier versions and write each batch in one transaction",
    )
    .option(
      "--stall-timeout <duration>",
      "how long the batch of a worker that died waits before another worker takes it over (seconds, or 90s, 2m)",
      "60",
    )
    .option(
      "--make-previews",
      "render each ingested file's preview from the copy in hand (an existing one is kept unless the file is forced or a new version); failures go to the preview queue with their reason",
    )
    // For `rebuild plan`, which times it: not an operator's flag.
    .addOption(
      new Option(
        "--startup-probe",
        "load what a worker loads, connect to the database and Redis once, and exit",
      ).hideHelp(),
    );
  return addPreviewOptions(command).action(
    async (flags: WorkerFlags, cmd: Command) => {
      const { config, logger, output, databaseUrl, redisUrl } =
        await runContext(cmd);
      const render =
        flags.makePreviews === true ? previewPoolOptions(flags) : undefined;
      const concurrency = wholeNumber(
        "--concurrency",
        flags.concurrency ?? (flags.fastRebuild === true ? "2" : "1"),
        { max: 64 },
      );
      const stallMs = duration("--stall-timeout", flags.stallTimeout);
      const common = commonWorkerSettings(flags);
      // Loaded here, not at the top: `--help` need not load BullMQ or sharp.
      const { runIngestWorker } = await import("../../../worker/ingest.js");
      if (flags.startupProbe === true) {
        const { probeWorkerStartup } = await import("../../../worker/probe.js");
        const probed = await probeWorkerStartup({
          databaseUrl: configured(databaseUrl),
          redisUrl: configured(redisUrl),
        });
        output.result(
          probed,
          (p) =>
            `started: database ${p.database ? "reached" : "not configured"}, redis ${p.redis ? "reached" : "not configured"}`,
        );
        return;
      }
      const summary = await withWorkerSignals((stop, abandon) =>
        runIngestWorker({
          name: flags.name,
          databaseUrl: databaseUrl(),
          redisUrl: redisUrl(),
          queue: flags.queue,
          concurrency,
          empty: flags.empty === true,
          fastRebuild: flags.fastRebuild === true,
          makePreviews: flags.makePreviews === true,
          previews: config.previews,
          render,
          stagingDir: flags.stagingDir,
          ...common,
          s3Endpoint: config.s3Endpoint,
          logger,
          lockDurationMs: stallMs,
          stalledIntervalMs: Math.min(30_000, stallMs / 2),
          signal: stop,
          abandon,
        }),
      );
      output.result(summary, describeWorker);
    },
  );
}
