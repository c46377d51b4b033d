/**
 * The ingest worker process: takes batches of ledger ids from the queue and
 * ingests them (lib/rebuild/ingest.ts). The reference's flags mean something
 * here: --lockfile is a real lock per name and host, --empty exits when no
 * work is left, --fast-rebuild batches a whole job into one transaction, and
 * SIGINT/SIGTERM finish the batches in hand before exiting.
 *
 * Delivery is at least once: a worker killed mid-batch leaves its job to be
 * found stalled and handed to another worker, whose claim of the same ledger
 * rows skips what was already committed.
 */
import { type Job, Worker } from "bullmq";
import pg from "pg";

import { PreconditionError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import type { PreviewPoolOptions } from "../lib/preview/render-thread.js";
import { newPreviewPool, previewers } from "../lib/preview/store.js";
import {
  type BatchReport,
  ingestBatch,
  type IngestContext,
  type Outcome,
} from "../lib/rebuild/ingest.js";
import {
  type IngestJobData,
  ingestQueue,
  rangeIds,
  redisConnection,
} from "../lib/rebuild/queue.js";
import { StorageSet } from "../lib/storage/index.js";
import { takeLock } from "../lib/worker-lock.js";

export interface IngestWorkerOptions {
  name: string;
  databaseUrl: string;
  redisUrl: string;
  queue: string;
  concurrency: number;
  /** Exit when the queue has no work left. */
  empty: boolean;
  fastRebuild: boolean;
  makePreviews: boolean;
  /** --previews: where previews go; default previews/ under each file's storage. */
  previews?: string;
  /** Rendering for --make-previews: size, quality, threads. */
  render?: PreviewPoolOptions;
  /** Where files from S3 are staged for rendering. */
  stagingDir?: string;
  /** Take the per-name lock in this folder (the reference's --lockfile). */
  lockDir?: string;
  s3Endpoint?: string;
  logger: Logger;
  /** BullMQ's job lock; a killed worker's batch is handed on after about this long. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Stops the worker (like SIGTERM) when aborted. */
  signal?: AbortSignal;
}

export interface IngestWorkerSummary {
  name: string;
  batches: number;
  files: number;
  outcomes: Record<Outcome, number>;
  seconds: number;
}

export async function runIngestWorker(
  options: IngestWorkerOptions,
): Promise<IngestWorkerSummary> {
  const started = Date.now();
  const release =
    options.lockDir === undefined
      ? () => undefined
      : takeLock(options.lockDir, "ingest", options.name);
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.concurrency,
    application_name: `fitsfleet worker ingest ${options.name}`,
  });
  pool.on("error", () => undefined);
  const storages = new StorageSet({ s3Endpoint: options.s3Endpoint });
  const ctx: IngestContext = {
    storage: (location) => storages.get(location),
    worker: options.name,
    fastRebuild: options.fastRebuild,
    makePreviews: options.makePreviews,
    logger: options.logger,
    stagingDir: options.stagingDir,
  };
  const previewPool = options.makePreviews
    ? await newPreviewPool(options.render)
    : undefined;
  if (previewPool !== undefined) {
    ctx.previewer = previewers(storages, previewPool, options);
  }
  const summary: IngestWorkerSummary = {
    name: options.name,
    batches: 0,
    files: 0,
    outcomes: { new: 0, "new version": 0, unchanged: 0, failed: 0, skipped: 0 },
    seconds: 0,
  };
  const connection = redisConnection(options.redisUrl);
  const queueConnection = redisConnection(options.redisUrl);
  const queue = ingestQueue(queueConnection, options.queue);
  // ioredis reconnects by itself; without listeners it would print every refused attempt.
  const quiet = (error: Error) =>
    options.logger.debug("redis connection", { error: error.message });
  connection.on("error", quiet);
  queueConnection.on("error", quiet);
  queue.on("error", quiet);
  try {
    if (options.fastRebuild) {
      await checkFreshDatabase(pool);
    }
    let inFlight = 0;
    const worker = new Worker<IngestJobData, BatchReport>(
      options.queue,
      async (job: Job<IngestJobData>) => {
        inFlight++;
        const client = await pool.connect();
        try {
          const report = await ingestBatch(
            client,
            ctx,
            rangeIds(job.data.ranges),
          );
          summary.batches++;
          summary.files += report.claimed;
          for (const [k, v] of Object.entries(report.outcomes)) {
            summary.outcomes[k as Outcome] += v;
          }
          options.logger.info("batch done", {
            worker: options.name,
            job: job.id,
            files: report.claimed,
            ...report.outcomes,
          });
          return report;
        } finally {
          client.release();
          inFlight--;
        }
      },
      {
        connection,
        concurrency: options.concurrency,
        lockDuration: options.lockDurationMs ?? 60_000,
        stalledInterval: options.stalledIntervalMs ?? 30_000,
        // A stalled batch is an interruption (a killed worker, a lost spot
        // instance), not a failure: hand it on however often it happens.
        maxStalledCount: 1000,
        name: options.name,
      },
    );
    worker.on("failed", (job, error) => {
      options.logger.warn("batch will be retried", {
        worker: options.name,
        job: job?.id,
        attempt: job?.attemptsMade,
        error: error.message,
      });
    });
    worker.on("error", (error) => {
      options.logger.warn("queue connection problem", { error: error.message });
    });
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = () => {
        if (!stopping) {
          stopping = true;
          // close() lets the batches in hand finish.
          void worker.close().then(resolve, resolve);
        }
      };
      options.signal?.addEventListener("abort", stop, { once: true });
      if (options.signal?.aborted === true) {
        stop();
      }
      if (options.empty) {
        const check = async () => {
          if (stopping || inFlight > 0) {
            return;
          }
          // Active counts too: a batch held by a worker that died comes back to the queue when its lock runs out.
          const counts = await queue.getJobCounts(
            "wait",
            "delayed",
            "prioritized",
            "waiting-children",
            "active",
          );
          if (Object.values(counts).every((n) => n === 0) && inFlight === 0) {
            stop();
          }
        };
        worker.on("drained", () => void check().catch(() => undefined));
        // Often: the last batch of a rebuild may be another worker's, and
        // everyone waits for the slowest; a count is one cheap Redis call.
        const timer = setInterval(
          () => void check().catch(() => undefined),
          250,
        );
        worker.on("closed", () => clearInterval(timer));
      }
    });
    return { ...summary, seconds: (Date.now() - started) / 1000 };
  } finally {
    await queue.close().catch(() => undefined);
    queueConnection.disconnect();
    connection.disconnect();
    await storages.closeAll();
    await previewPool?.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    release();
  }
}

/** --fast-rebuild skips the look-ups for earlier versions: only right when there are none. */
async function checkFreshDatabase(pool: pg.Pool): Promise<void> {
  const { rows } = await pool.query<{ foreign: string }>(
    `SELECT count(*) AS foreign FROM diskfile d
      WHERE NOT EXISTS (SELECT 1 FROM fitsfleet.ingest_ledger l WHERE l.diskfile_id = d.id)`,
  );
  const foreign = Number(rows[0]?.foreign ?? 0);
  if (foreign > 0) {
    throw new PreconditionError(
      `--fast-rebuild is for a freshly initialised database, but this one has ${foreign} diskfile row(s) that no rebuild in its ledger wrote`,
      {
        suggestion:
          "run without --fast-rebuild (each file is then checked against its earlier versions), or rebuild into a fresh `db init` database",
      },
    );
  }
}
