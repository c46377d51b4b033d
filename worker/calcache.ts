/**
 * The calibration-cache worker process: works through the archive's
 * `calcachequeue` (filled by ingest, by the reference's
 * add_to_calcache_queue, and by this worker's dependents) as the
 * reference's service_calcache_queue does: for each entry, evaluate the
 * frame (lib/cal/evaluate.ts), replace its calcache rows, delete the entry;
 * a frame the reference raises on keeps its entry, failed, with the reason.
 *
 * One transaction per batch takes the entries (FOR UPDATE SKIP LOCKED) and
 * the frames' locks, evaluates, writes and deletes, so a batch's effects
 * land once or not at all: a worker killed mid-batch leaves its entries to
 * the next one untouched (lib/cal/queue.ts explains why no claim table is
 * needed), and two workers never write one frame at once. Each frame runs
 * under a savepoint, so an unexpected error fails that frame alone. A
 * transient fault (a restart, a deadlock between two workers' dependents)
 * rolls the batch back; it is retried with capped backoff for at most
 * --max-retry-time in a row. A frame whose dependents cannot be queued at
 * once (another worker's batch holds one of their entries, and may be
 * queueing this batch's frames) is put back untouched and taken again,
 * rather than waited for into a deadlock. While a `rebuild calcache` runs,
 * a batch takes nothing (lib/cal/queue.ts, `enterCalcacheWriters`): the
 * worker waits as it does on an empty queue, even with --empty, and carries
 * on once the rebuild is over.
 */
import { syncFrameAssociations } from "../lib/cal/calcache.js";
import { evaluateFrame, type FrameEvaluation } from "../lib/cal/evaluate.js";
import {
  calcacheWorkLeft,
  deleteEntries,
  dependentsOf,
  enterCalcacheWriters,
  failEntry,
  knownToCache,
  queueDependents,
  type QueueEntry,
  REFERENCE_FAILURE,
  takeCalcacheEntries,
} from "../lib/cal/queue.js";
import type { AnyClient } from "../lib/db/connect.js";
import { sqlState } from "../lib/db/errors.js";
import { isTransient } from "../lib/errors.js";
import { sleep } from "../lib/exec.js";
import { RateMeter } from "../lib/progress.js";
import { DEFAULT_MAX_RETRY_MS, retryDelayMs } from "../lib/rebuild/queue.js";
import { type WorkerBaseOptions, WorkerRuntime } from "./runtime.js";
import { waitForDatabase } from "./wait.js";

export interface CalcacheWorkerOptions extends WorkerBaseOptions {
  /** Queue entries per batch (one transaction); 1 is the reference's one frame per commit. */
  batchSize?: number;
  /**
   * Queue the frames a newly ingested frame can change (lib/cal/queue.ts);
   * false does as the reference does: only the queued frame. Default true.
   */
  dependents?: boolean;
  /** How long an empty queue is left before looking again (the reference: 10 s). */
  idleMs?: number;
  /** Transient faults in a row are retried for this long, then the worker exits (default 15 min). */
  maxRetryMs?: number;
  /** Between progress lines in the log (default 10 s). */
  progressMs?: number;
}

/**
 * associated: rows written. unchanged: the frame's rows were already these.
 * skipped: the reference leaves the frame alone (no instrument, no
 * ut_datetime, failed QA). unsupported: fitsfleet has no rules for the
 * instrument yet (the entry is kept, failed, for when it does). failed: the
 * reference raises on this frame, or evaluating it failed unexpectedly.
 */
export type CalcacheOutcome =
  "associated" | "unchanged" | "skipped" | "unsupported" | "failed";

export interface CalcacheWorkerSummary {
  name: string;
  batches: number;
  frames: number;
  outcomes: Record<CalcacheOutcome, number>;
  /** Frames queued as dependents of new frames. */
  dependentsQueued: number;
  /** Frames put back to be taken again, because a dependent's entry was held by another worker. */
  postponed: number;
  /** Times the worker found a `rebuild calcache` running and waited for it. */
  rebuildWaits: number;
  seconds: number;
}

/**
 * Small: a batch holds its entries' locks while it works, and another
 * worker queueing one of them as a dependent waits for it (or puts its own
 * frame back); batching saves little besides commits.
 */
const DEFAULT_BATCH = 4;
const DEFAULT_IDLE_MS = 10_000;
/**
 * A worker that stalls holding a batch (not dead, so its connection stays)
 * would hold the entries' locks; the server ends such a transaction after
 * this long idle, and the entries are free again.
 */
const STALLED_TRANSACTION = "60s";
const CONNECTION_CHECK = "2s";
/** How long queueing a dependent waits for another worker's batch before the frame is put back. */
const DEPENDENT_WAIT = "200ms";
const LOCK_NOT_AVAILABLE = "55P03";
const POSTPONED_PAUSE_MS = 100;

/** Thrown inside a batch to roll it back when its work is handed back. */
class HandedBack extends Error {}

interface BatchResult {
  taken: number;
  finished: number;
  /** A rebuild held the writers' gate: nothing was taken. */
  gated: boolean;
}

interface FrameResult {
  entry: QueueEntry;
  /** postponed: put back untouched, to be taken again (see DEPENDENT_WAIT). */
  outcome: CalcacheOutcome | "postponed";
  reason?: string;
  dependents: number;
}

export async function runCalcacheWorker(
  options: CalcacheWorkerOptions,
): Promise<CalcacheWorkerSummary> {
  const rt = await WorkerRuntime.start({
    kind: "calcache",
    name: options.name,
    databaseUrl: options.databaseUrl,
    concurrency: options.concurrency,
    lockDir: options.lockDir,
    logger: options.logger,
    stop: options.signal,
    abandon: options.abandon,
    shutdownMs: options.shutdownMs,
    spotWatch: options.spotWatch,
  });
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const maxRetryMs = options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS;
  const withDependents = options.dependents ?? true;
  const summary: CalcacheWorkerSummary = {
    name: options.name,
    batches: 0,
    frames: 0,
    outcomes: {
      associated: 0,
      unchanged: 0,
      skipped: 0,
      unsupported: 0,
      failed: 0,
    },
    dependentsQueued: 0,
    postponed: 0,
    rebuildWaits: 0,
    seconds: 0,
  };

  async function oneFrame(
    c: AnyClient,
    entry: QueueEntry,
  ): Promise<FrameResult> {
    let evaluation: FrameEvaluation;
    let outcome: CalcacheOutcome;
    await c.query("SAVEPOINT frame");
    try {
      // Asked before its rows are written: a frame the cache knows already
      // (re-queued in bulk) has been found by its neighbours before.
      const fresh =
        withDependents &&
        !entry.dependent &&
        !(await knownToCache(c, entry.obsHid));
      evaluation = await evaluateFrame(c, entry.obsHid);
      outcome = await record(c, entry, evaluation);
      let dependents = 0;
      if (fresh) {
        const frames = await dependentsOf(c, entry.obsHid);
        // A dependent's entry may be held by another worker's batch, which
        // may in turn be queueing this worker's frames: rather than wait
        // (and deadlock), this frame is put back untouched and taken again.
        await c.query(`SET LOCAL lock_timeout = '${DEPENDENT_WAIT}'`);
        dependents = await queueDependents(
          c,
          frames,
          `${entry.filename ?? "?"} (header ${entry.obsHid})`,
        );
        await c.query("SET LOCAL lock_timeout = 0");
      }
      await c.query("RELEASE SAVEPOINT frame");
      return { entry, outcome, reason: evaluation.reason, dependents };
    } catch (error) {
      if (sqlState(error) === LOCK_NOT_AVAILABLE) {
        // Undoes the frame's writes and the SET LOCAL with them.
        await c.query("ROLLBACK TO SAVEPOINT frame");
        return { entry, outcome: "postponed", dependents: 0 };
      }
      if (isTransient(error) || error instanceof HandedBack) {
        throw error;
      }
      // As the reference's service: the frame fails, the worker goes on.
      await c.query("ROLLBACK TO SAVEPOINT frame");
      const reason = `${REFERENCE_FAILURE}: ${(error as Error).message}`;
      await failEntry(c, entry.id, reason);
      return { entry, outcome: "failed", reason, dependents: 0 };
    }
  }

  async function record(
    c: AnyClient,
    entry: QueueEntry,
    evaluation: FrameEvaluation,
  ): Promise<CalcacheOutcome> {
    switch (evaluation.outcome) {
      case "skipped":
        await deleteEntries(c, [entry.id]);
        return "skipped";
      case "unsupported":
        await failEntry(c, entry.id, evaluation.reason ?? "unsupported");
        return "unsupported";
      case "failed":
        // What the reference had written before it raised stays written.
        await syncFrameAssociations(c, evaluation);
        await failEntry(
          c,
          entry.id,
          `${REFERENCE_FAILURE}: ${evaluation.reason ?? "the reference raised"}`,
        );
        return "failed";
      case "associated": {
        const { changed } = await syncFrameAssociations(c, evaluation);
        await deleteEntries(c, [entry.id]);
        return changed.length > 0 ? "associated" : "unchanged";
      }
    }
  }

  async function oneBatch(): Promise<BatchResult> {
    let gated = false;
    const results = await rt.db.transaction(async (c) => {
      await c.query(
        `SET LOCAL idle_in_transaction_session_timeout = '${STALLED_TRANSACTION}'`,
      );
      // A killed worker's backend may be waiting for a frame's lock: it
      // notices the closed connection at once, not when the wait ends.
      await c.query(
        `SET LOCAL client_connection_check_interval = '${CONNECTION_CHECK}'`,
      );
      if (!(await enterCalcacheWriters(c))) {
        gated = true;
        return [];
      }
      const entries = await takeCalcacheEntries(c, batchSize);
      const done: FrameResult[] = [];
      for (const entry of entries) {
        if (rt.abandoning.aborted) {
          throw new HandedBack("handed back");
        }
        done.push(await oneFrame(c, entry));
      }
      return done;
    });
    // Counted once committed.
    const finished = results.filter(
      (r): r is FrameResult & { outcome: CalcacheOutcome } =>
        r.outcome !== "postponed",
    );
    summary.postponed += results.length - finished.length;
    for (const r of finished) {
      summary.outcomes[r.outcome]++;
      summary.dependentsQueued += r.dependents;
      if (r.outcome === "failed" || r.outcome === "unsupported") {
        options.logger.warn("frame failed", {
          worker: options.name,
          file: r.entry.filename,
          header: r.entry.obsHid,
          reason: r.reason,
        });
      }
    }
    summary.frames += finished.length;
    if (results.length > 0) {
      summary.batches++;
    }
    return { taken: results.length, finished: finished.length, gated };
  }

  /** Logs once when the worker starts waiting for a rebuild, once when it carries on. */
  let waitingForRebuild = false;
  function noteGate(gated: boolean): void {
    if (gated === waitingForRebuild) {
      return;
    }
    waitingForRebuild = gated;
    if (gated) {
      summary.rebuildWaits++;
      options.logger.info("waiting: a calcache rebuild is running", {
        worker: options.name,
      });
    } else {
      options.logger.info("carrying on: the calcache rebuild is over", {
        worker: options.name,
      });
    }
  }

  async function loop(): Promise<void> {
    let failingSince: number | undefined;
    let attempt = 0;
    while (!rt.stopping.aborted) {
      let taken: BatchResult;
      try {
        taken = await oneBatch();
        failingSince = undefined;
        attempt = 0;
      } catch (error) {
        if (error instanceof HandedBack) {
          return;
        }
        failingSince ??= Date.now();
        if (!isTransient(error) || Date.now() - failingSince >= maxRetryMs) {
          throw error;
        }
        options.logger.warn("calcache batch will be retried", {
          worker: options.name,
          error: (error as Error).message,
        });
        await sleep(retryDelayMs(++attempt), rt.stopping);
        continue;
      }
      noteGate(taken.gated);
      if (taken.gated) {
        // Entries may be queued still: --empty waits for the rebuild too.
        await sleep(options.idleMs ?? DEFAULT_IDLE_MS, rt.stopping);
      } else if (taken.taken === 0) {
        if (options.empty) {
          return;
        }
        await sleep(options.idleMs ?? DEFAULT_IDLE_MS, rt.stopping);
      } else if (taken.finished === 0) {
        // Everything put back: give the other worker's batch time to end.
        await sleep(POSTPONED_PAUSE_MS, rt.stopping);
      }
    }
  }

  const meter = new RateMeter(60_000);
  const progress = setInterval(() => {
    meter.sample(summary.frames);
    void rt.db
      .withClient((c) => calcacheWorkLeft(c))
      .then((left) =>
        options.logger.info("calcache progress", {
          worker: options.name,
          frames: summary.frames,
          framesPerSecond: Math.round(meter.rate() * 10) / 10,
          queueLeft: left,
          etaSeconds:
            meter.rate() > 0 ? Math.round(left / meter.rate()) : undefined,
        }),
      )
      .catch(() => undefined);
  }, options.progressMs ?? 10_000);
  progress.unref();

  try {
    await waitForDatabase(rt, maxRetryMs);
    meter.sample(0);
    await Promise.all(
      Array.from({ length: options.concurrency }, () => loop()),
    );
    return { ...summary, seconds: rt.seconds() };
  } finally {
    clearInterval(progress);
    await rt.close();
  }
}
