/**
 * The ingest worker process: takes batches of ledger ids from the queue and
 * ingests them (lib/rebuild/ingest.ts). The reference's flags mean something
 * here: --lockfile is a real lock per name and host, --empty exits when
 * nothing is left that can still succeed, --fast-rebuild batches a whole
 * job into one transaction, and a stop finishes the batches in hand, or
 * hands them back at the shutdown deadline (worker/runtime.ts).
 *
 * Delivery is at least once: a worker killed mid-batch leaves its job to be
 * found stalled and handed to another worker, whose claim takes over the
 * rows once their lease has run out and skips what was committed. Retries
 * of transient faults are bounded in time (--max-retry-time); after that
 * the batch's unfinished files fail with the last error.
 */
import { DelayedError, type Job, Worker } from "bullmq";
import type { Redis } from "ioredis";

import {
  InterruptedError,
  isTransient,
  PreconditionError,
} from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import type { PreviewPoolOptions } from "../lib/preview/render-thread.js";
import { previewers } from "../lib/preview/store.js";
import { formatDuration } from "../lib/progress.js";
import {
  BatchInterruptedError,
  type BatchReport,
  DEFAULT_LEASE_SECONDS,
  ingestBatch,
  type IngestContext,
  type Outcome,
} from "../lib/rebuild/ingest.js";
import {
  failUnfinished,
  foreignDiskfiles,
  reconcile,
  unfinishedWork,
} from "../lib/rebuild/ledger.js";
import {
  BACKOFF_TYPE,
  DEFAULT_MAX_RETRY_MS,
  type IngestJobData,
  ingestQueue,
  openRedis,
  rangeIds,
  retryDelayMs,
} from "../lib/rebuild/queue.js";
import { type WorkerBaseOptions, WorkerRuntime } from "./runtime.js";
import { waitForDatabase } from "./wait.js";

export interface IngestWorkerOptions extends WorkerBaseOptions {
  redisUrl: string;
  queue: string;
  fastRebuild: boolean;
  makePreviews: boolean;
  /** --previews: where previews go; default previews/ under each file's storage. */
  previews?: string;
  /** Rendering for --make-previews: size, quality, threads. */
  render?: PreviewPoolOptions;
  /** Where files from S3 are staged for rendering. */
  stagingDir?: string;
  s3Endpoint?: string;
  /** BullMQ's job lock and the ledger lease: a killed worker's batch is handed on after about this long. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Transient faults of a batch are retried for this long, then its files fail (default 15 min). */
  maxRetryMs?: number;
  /** How long to wait for Redis at the start (default 30 s). */
  redisTimeoutMs?: number;
}

export interface IngestWorkerSummary {
  name: string;
  batches: number;
  files: number;
  outcomes: Record<Outcome, number>;
  /** Batches whose retries ran out: their unfinished files failed. */
  exhausted: number;
  /** Batches handed back unfinished at a stop. */
  handedBack: number;
  /** Database connections open at once, at most. */
  peakConnections: number;
  seconds: number;
}

/** How often an idle --empty worker asks the ledger what is left. */
const LEDGER_CHECK_MS = 2000;

export async function runIngestWorker(
  options: IngestWorkerOptions,
): Promise<IngestWorkerSummary> {
  const maxRetryMs = options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS;
  const lockDurationMs = options.lockDurationMs ?? 60_000;
  const rt = await WorkerRuntime.start({
    kind: "ingest",
    name: options.name,
    databaseUrl: options.databaseUrl,
    concurrency: options.concurrency,
    lockDir: options.lockDir,
    s3Endpoint: options.s3Endpoint,
    render: options.makePreviews ? (options.render ?? {}) : undefined,
    logger: options.logger,
    stop: options.signal,
    abandon: options.abandon,
    shutdownMs: options.shutdownMs,
    spotWatch: options.spotWatch,
  });
  const { logger } = options;
  const ctx: IngestContext = {
    storage: (location) => rt.storages.get(location),
    worker: options.name,
    fastRebuild: options.fastRebuild,
    makePreviews: options.makePreviews,
    logger,
    stagingDir: options.stagingDir,
    leaseSeconds: Math.max(
      DEFAULT_LEASE_SECONDS / 6,
      Math.round(lockDurationMs / 1000),
    ),
  };
  if (rt.previewPool !== undefined) {
    ctx.previewer = previewers(rt.storages, rt.previewPool, options);
  }
  const summary: IngestWorkerSummary = {
    name: options.name,
    batches: 0,
    files: 0,
    outcomes: { new: 0, "new version": 0, unchanged: 0, failed: 0, skipped: 0 },
    exhausted: 0,
    handedBack: 0,
    peakConnections: 0,
    seconds: 0,
  };
  const connections: Redis[] = [];
  try {
    await waitForDatabase(rt, maxRetryMs);
    if (options.fastRebuild) {
      await checkFreshDatabase(rt);
    }
    const queueProblem = throttledWarning(logger, "queue connection problem");
    for (let i = 0; i < 2; i++) {
      const connection = await openRedis(options.redisUrl, {
        timeoutMs: options.redisTimeoutMs,
        signal: rt.stopping,
        onError: (error) => queueProblem(error.message),
      }).catch((error: unknown) => {
        // A notice before any work was taken leaves nothing to finish or
        // hand back, and is no failure.
        if (
          error instanceof InterruptedError &&
          rt.interruption !== undefined
        ) {
          return undefined;
        }
        throw error;
      });
      if (connection === undefined) {
        return { ...summary, seconds: rt.seconds() };
      }
      connections.push(connection);
    }
    const queue = ingestQueue(connections[1]!, options.queue);
    queue.on("error", () => undefined);
    let inFlight = 0;

    async function processBatch(
      job: Job<IngestJobData>,
      token: string | undefined,
    ): Promise<BatchReport | undefined> {
      const ids = rangeIds(job.data.ranges);
      try {
        const report = await ingestBatch(rt.db, ctx, ids, {
          signal: rt.abandoning,
        });
        summary.batches++;
        summary.files += report.claimed;
        for (const [k, v] of Object.entries(report.outcomes)) {
          summary.outcomes[k as Outcome] += v;
        }
        logger.info("batch done", {
          worker: options.name,
          job: job.id,
          files: report.claimed,
          ...report.outcomes,
        });
        return report;
      } catch (error) {
        if (error instanceof BatchInterruptedError || rt.abandoning.aborted) {
          // Back to the queue at once, not counted as an attempt.
          summary.handedBack++;
          await job.moveToDelayed(Date.now(), token);
          throw new DelayedError();
        }
        const message = (error as Error).message;
        if (isTransient(error)) {
          const first = job.data.firstFailedAt ?? Date.now();
          if (job.data.firstFailedAt === undefined) {
            await job
              .updateData({ ...job.data, firstFailedAt: first })
              .catch(() => undefined);
          }
          if (Date.now() - first < maxRetryMs) {
            throw error; // the queue retries it after a backoff
          }
          await giveUp(
            ids,
            `gave up after retrying for ${formatDuration((Date.now() - first) / 1000)}: ${message}`,
            error,
          );
        } else {
          // Not a file's fault (those fail alone inside the batch) and not
          // one that passes: retrying cannot help.
          await giveUp(ids, message, error);
        }
        return undefined;
      }
    }

    async function giveUp(ids: number[], reason: string, cause: unknown) {
      try {
        const failed = await rt.db.withClient((c) =>
          failUnfinished(c, ids, reason),
        );
        summary.exhausted++;
        summary.outcomes.failed += failed;
        logger.warn("batch failed", {
          worker: options.name,
          files: failed,
          error: reason,
        });
      } catch {
        throw cause; // the ledger is out of reach too: retry later
      }
    }

    const worker = new Worker<IngestJobData, BatchReport | undefined>(
      options.queue,
      async (job, token) => {
        inFlight++;
        try {
          if (rt.stopping.aborted) {
            // Fetched as the stop came (BullMQ takes the next job as it
            // completes one): back to the queue at once, untouched.
            summary.handedBack++;
            await job.moveToDelayed(Date.now(), token);
            throw new DelayedError();
          }
          return await processBatch(job, token);
        } finally {
          inFlight--;
          summary.peakConnections = Math.max(
            summary.peakConnections,
            rt.db.peak,
          );
        }
      },
      {
        connection: connections[0]!,
        concurrency: options.concurrency,
        lockDuration: lockDurationMs,
        stalledInterval: options.stalledIntervalMs ?? 30_000,
        // A stalled batch is an interruption (a killed worker, a lost spot
        // instance), not a failure: hand it on however often it happens.
        maxStalledCount: 1000,
        name: options.name,
        settings: {
          backoffStrategy: (attemptsMade, type, _error, job) => {
            if (type !== BACKOFF_TYPE) {
              return retryDelayMs(attemptsMade);
            }
            const first =
              (job?.data as IngestJobData | undefined)?.firstFailedAt ??
              Date.now();
            const left = first + maxRetryMs - Date.now();
            return Math.max(0, Math.min(retryDelayMs(attemptsMade), left));
          },
        },
      },
    );
    worker.on("failed", (job, error) => {
      if (error instanceof DelayedError) {
        return;
      }
      logger.warn("batch will be retried", {
        worker: options.name,
        job: job?.id,
        attempt: job?.attemptsMade,
        error: error.message,
      });
    });
    worker.on("error", (error) => queueProblem(error.message));
    logger.info("taking work", {
      worker: options.name,
      queue: options.queue,
      concurrency: options.concurrency,
    });
    await new Promise<void>((resolve) => {
      let closing = false;
      const close = () => {
        if (closing) {
          return;
        }
        closing = true;
        // With nothing in hand and Redis away there is nothing to wait for.
        // Otherwise close() lets the batches in hand finish, and also a job
        // BullMQ fetched as it completed the last one, which the processor
        // then hands back: a forced close would leave that job active under
        // this worker's lock until the lock ran out.
        void worker
          .close(inFlight === 0 && connections[0]!.status !== "ready")
          .then(resolve, resolve);
      };
      rt.stopping.addEventListener("abort", close, { once: true });
      if (rt.stopping.aborted) {
        close();
      }
      if (options.empty) {
        let lastLedgerCheck = 0;
        const check = async () => {
          if (closing || inFlight > 0) {
            return;
          }
          const counts = await queue.getJobCounts(
            "wait",
            "delayed",
            "prioritized",
            "waiting-children",
            "active",
          );
          if (Object.values(counts).some((n) => n > 0) || inFlight > 0) {
            return;
          }
          // Redis says done; the ledger is the truth (Redis may have lost
          // work, an enqueue may have been interrupted).
          if (Date.now() - lastLedgerCheck < LEDGER_CHECK_MS) {
            return;
          }
          lastLedgerCheck = Date.now();
          const left = await rt.db.withClient(unfinishedWork);
          if (left.claimable + left.later > 0) {
            const queued = await rt.db.withClient((c) => reconcile(c, queue));
            logger.warn(
              "the ledger holds files the queue does not: queued them again",
              {
                worker: options.name,
                files: queued.files,
              },
            );
            return;
          }
          if (left.held === 0 && !closing && inFlight === 0) {
            rt.stop("no work left");
          }
        };
        const timer = setInterval(
          () => void check().catch(() => undefined),
          250,
        );
        worker.on("closed", () => clearInterval(timer));
      }
    });
    await queue.close().catch(() => undefined);
    return { ...summary, seconds: rt.seconds() };
  } finally {
    for (const connection of connections) {
      connection.disconnect();
    }
    await rt.close();
  }
}

/** --fast-rebuild skips the look-ups for earlier versions: only right when there are none. */
async function checkFreshDatabase(rt: WorkerRuntime): Promise<void> {
  const foreign = await rt.db.withClient(foreignDiskfiles);
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

/** A warning logged when a problem starts and then at most every 30 s, not once a second. */
function throttledWarning(
  logger: Logger,
  what: string,
): (message: string) => void {
  let last = 0;
  let suppressed = 0;
  return (message) => {
    if (Date.now() - last < 30_000) {
      suppressed++;
      return;
    }
    logger.warn(what, {
      error: message,
      ...(suppressed > 0 && { repeated: suppressed }),
    });
    last = Date.now();
    suppressed = 0;
  };
}
