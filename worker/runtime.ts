/**
 * What every worker process shares, whatever its work: the per-name lock,
 * the database pool, the storages, the rendering pool, and the way it
 * stops. A stop (SIGINT/SIGTERM, a spot interruption notice) means: take
 * no new work, finish the work in hand, and, once the shutdown deadline
 * passes (or on a second signal), hand back what is still unfinished so
 * that another worker takes it at once instead of after a lease runs out.
 * A spot instance's two minutes are met by a deadline shorter than that.
 */
import { Db } from "../lib/db/pool.js";
import type { Logger } from "../lib/logger.js";
import type {
  PreviewPool,
  PreviewPoolOptions,
} from "../lib/preview/render-thread.js";
import { newPreviewPool } from "../lib/preview/store.js";
import { StorageSet } from "../lib/storage/index.js";
import { takeLock } from "../lib/worker-lock.js";

/** Time from a stop to handing back what is unfinished: inside a spot instance's two-minute notice. */
export const DEFAULT_SHUTDOWN_MS = 90_000;

export interface RuntimeOptions {
  kind: "ingest" | "preview";
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
}

export class WorkerRuntime {
  readonly db: Db;
  readonly storages: StorageSet;
  readonly started = Date.now();
  private readonly stopController = new AbortController();
  private readonly abandonController = new AbortController();
  private deadline: NodeJS.Timeout | undefined;

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
      return new WorkerRuntime(options, release, pool);
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

  stop(reason: string): void {
    if (this.stopController.signal.aborted) {
      return;
    }
    this.options.logger.info(
      "stopping: no new work; finishing what is in hand",
      {
        worker: this.options.name,
        reason,
        handBackAfterSeconds:
          (this.options.shutdownMs ?? DEFAULT_SHUTDOWN_MS) / 1000,
      },
    );
    this.stopController.abort();
    this.deadline = setTimeout(
      () => this.abandon("shutdown deadline"),
      this.options.shutdownMs ?? DEFAULT_SHUTDOWN_MS,
    );
    this.deadline.unref();
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
    clearTimeout(this.deadline);
    await this.storages.closeAll();
    await this.previewPool?.close().catch(() => undefined);
    await this.db.end();
    this.releaseLock();
  }
}
