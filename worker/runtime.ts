/**
 * What every worker process shares, whatever its work: the per-name lock,
 * the database pool, the storages, the rendering pool, and the way it
 * stops. A stop (SIGINT/SIGTERM, a spot interruption notice) means: take
 * no new work, finish the work in hand, and, once the shutdown deadline
 * passes (or on a second signal), hand back what is still unfinished so
 * that another worker takes it at once instead of after a lease runs out.
 * A spot instance's two minutes are met by a deadline shorter than that,
 * and, with `spotWatch`, by the notice itself: the hand-back then comes at
 * the latest 30 s before the time EC2 gave (worker/interruption.ts).
 */
import { Db } from "../lib/db/pool.js";
import type { Logger } from "../lib/logger.js";
import type {
  PreviewPool,
  PreviewPoolOptions,
} from "../lib/preview/render-thread.js";
import { newPreviewPool } from "../lib/preview/store.js";
import { StorageSet } from "../lib/storage/index.js";
import { takeLock, type WorkerKind } from "../lib/worker-lock.js";
import {
  handBackTime,
  type InterruptionNotice,
  watchForInterruption,
} from "./interruption.js";

/** Time from a stop to handing back what is unfinished: inside a spot instance's two-minute notice. */
export const DEFAULT_SHUTDOWN_MS = 90_000;

export interface RuntimeOptions {
  kind: WorkerKind;
  name: string;
  databaseUrl: string;
  /** Units of work at once; the database pool allows one connection more. */
  concurrency: number;
  /** Take the per-name lock in this folder (the reference's --lockfile). */
  lockDir?: string;
  s3Endpoint?: string;
  /** Start the rendering pool with these settings. */
  render?: PreviewPoolOptions;
  logger: Logger;
  /** A stop, like SIGTERM. */
  stop?: AbortSignal;
  /** Hand back at once, like a second SIGTERM. */
  abandon?: AbortSignal;
  /** From a stop to handing back (default 90 s). */
  shutdownMs?: number;
  /**
   * Watch the instance metadata for a spot interruption notice or a
   * rebalance recommendation (worker/interruption.ts), and stop on either.
   */
  spotWatch?: boolean | SpotWatchOptions;
}

/** What every worker's options share: who it is, and how it stops. */
export interface WorkerBaseOptions {
  name: string;
  databaseUrl: string;
  /** Units of work (batches) at once. */
  concurrency: number;
  /** Exit when nothing is left that can still succeed. */
  empty: boolean;
  /** Take the per-name lock in this folder (the reference's --lockfile). */
  lockDir?: string;
  logger: Logger;
  /** Stops the worker (like SIGTERM) when aborted. */
  signal?: AbortSignal;
  /** Hands back the batches in hand at once (like a second SIGTERM). */
  abandon?: AbortSignal;
  /** From a stop to handing back unfinished batches (default 90 s). */
  shutdownMs?: number;
  /** Stop on a spot interruption notice or rebalance recommendation (worker/interruption.ts). */
  spotWatch?: RuntimeOptions["spotWatch"];
}

export interface SpotWatchOptions {
  /** Default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254. */
  endpoint?: string;
  /** Between looks (default 5 s). */
  intervalMs?: number;
}

export interface StopOptions {
  /**
   * Hand back what is unfinished at this time (ms since the epoch) at the
   * latest, when that is sooner than the shutdown deadline.
   */
  handBackBy?: number;
}

export class WorkerRuntime {
  readonly db: Db;
  readonly storages: StorageSet;
  readonly started = Date.now();
  private readonly stopController = new AbortController();
  private readonly abandonController = new AbortController();
  private readonly watchController = new AbortController();
  private readonly watching: Promise<void> | undefined;
  private readonly firstLook: Promise<void> | undefined;
  private notice: InterruptionNotice | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private handBackAt: number | undefined;

  private constructor(
    private readonly options: RuntimeOptions,
    private readonly releaseLock: () => void,
    readonly previewPool: PreviewPool | undefined,
  ) {
    this.db = new Db(options.databaseUrl, {
      applicationName: `fitsfleet worker ${options.kind} ${options.name}`,
      max: options.concurrency + 1,
      logger: options.logger,
    });
    this.storages = new StorageSet({ s3Endpoint: options.s3Endpoint });
    const follow = (signal: AbortSignal | undefined, act: () => void) => {
      if (signal?.aborted === true) {
        act();
      }
      signal?.addEventListener("abort", act, { once: true });
    };
    follow(options.stop, () => this.stop("signal"));
    follow(options.abandon, () => this.abandon("second signal"));
    if (options.spotWatch !== undefined && options.spotWatch !== false) {
      const watch = options.spotWatch === true ? {} : options.spotWatch;
      let looked: () => void = () => undefined;
      this.firstLook = new Promise<void>((resolve) => {
        looked = resolve;
      });
      this.watching = watchForInterruption({
        ...watch,
        signal: this.watchController.signal,
        logger: options.logger,
        onNotice: (notice) => this.interrupted(notice),
        afterFirstLook: () => looked(),
      })
        .catch((error: unknown) =>
          options.logger.error("the spot interruption watch ended", {
            worker: options.name,
            error: (error as Error).message,
          }),
        )
        .finally(() => looked());
    }
  }

  static async start(options: RuntimeOptions): Promise<WorkerRuntime> {
    const release =
      options.lockDir === undefined
        ? () => undefined
        : takeLock(options.lockDir, options.kind, options.name);
    try {
      const pool =
        options.render === undefined
          ? undefined
          : await newPreviewPool(options.render);
      const runtime = new WorkerRuntime(options, release, pool);
      // An instance may be under notice already when its worker starts:
      // known before the worker takes work, it takes none.
      await runtime.firstLook;
      return runtime;
    } catch (error) {
      release();
      throw error;
    }
  }

  get name(): string {
    return this.options.name;
  }

  get logger(): Logger {
    return this.options.logger;
  }

  /** Aborted when the worker should take no new work. */
  get stopping(): AbortSignal {
    return this.stopController.signal;
  }

  /** Aborted when work in hand should be handed back unfinished. */
  get abandoning(): AbortSignal {
    return this.abandonController.signal;
  }

  /** When the work in hand is handed back, once stopping (and until it is). */
  get handBackBy(): Date | undefined {
    return this.handBackAt === undefined
      ? undefined
      : new Date(this.handBackAt);
  }

  private get shutdownMs(): number {
    return this.options.shutdownMs ?? DEFAULT_SHUTDOWN_MS;
  }

  /**
   * Takes no new work from now on; what is in hand is handed back at the
   * shutdown deadline, or at `handBackBy` if sooner. Stopping again with an
   * earlier time brings the hand-back forward, never back.
   */
  stop(reason: string, options: StopOptions = {}): void {
    const now = Date.now();
    const at = Math.min(
      now + this.shutdownMs,
      options.handBackBy ?? Number.POSITIVE_INFINITY,
    );
    const fields = {
      worker: this.options.name,
      reason,
      handBackAfterSeconds: Math.max(0, Math.round((at - now) / 100) / 10),
    };
    if (this.stopController.signal.aborted) {
      if (
        !this.abandonController.signal.aborted &&
        this.handBackAt !== undefined &&
        at < this.handBackAt
      ) {
        this.options.logger.info("hand-back brought forward", fields);
        this.handBackOn(at);
      }
      return;
    }
    this.options.logger.info(
      "stopping: no new work; finishing what is in hand",
      fields,
    );
    this.stopController.abort();
    this.handBackOn(at);
  }

  private handBackOn(at: number): void {
    clearTimeout(this.deadline);
    this.handBackAt = at;
    this.deadline = setTimeout(
      () => this.abandon("shutdown deadline"),
      Math.max(0, at - Date.now()),
    );
    this.deadline.unref();
  }

  /** The notice that stopped the worker, if one did (the spot notice once there is one). */
  get interruption(): InterruptionNotice | undefined {
    return this.notice;
  }

  /** A notice is not a failure: the worker stops as if told to, only sooner. */
  private interrupted(notice: InterruptionNotice): void {
    this.notice = notice;
    const handBackBy = handBackTime(notice, Date.now(), this.shutdownMs);
    if (notice.kind === "spot-interruption") {
      this.options.logger.warn("spot interruption notice", {
        worker: this.options.name,
        action: notice.action,
        // Not `time`: that is the log line's own timestamp in JSON logs.
        interruptionTime: notice.time.toISOString(),
        handBackBy: new Date(handBackBy).toISOString(),
      });
      this.stop("spot interruption notice", { handBackBy });
    } else {
      this.options.logger.warn("rebalance recommendation", {
        worker: this.options.name,
        noticeTime: notice.noticeTime.toISOString(),
        handBackBy: new Date(handBackBy).toISOString(),
      });
      this.stop("rebalance recommendation", { handBackBy });
    }
  }

  abandon(reason: string): void {
    this.stop(reason);
    if (!this.abandonController.signal.aborted) {
      this.options.logger.info("handing back unfinished work", {
        worker: this.options.name,
        reason,
      });
      this.abandonController.abort();
    }
  }

  /** Elapsed seconds since the start. */
  seconds(): number {
    return (Date.now() - this.started) / 1000;
  }

  async close(): Promise<void> {
    this.watchController.abort();
    await this.watching;
    clearTimeout(this.deadline);
    await this.storages.closeAll();
    await this.previewPool?.close().catch(() => undefined);
    await this.db.end();
    this.releaseLock();
  }
}
