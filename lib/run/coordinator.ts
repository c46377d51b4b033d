/**
 * A run's coordinator, active or standby. The active one holds the lease,
 * renews it every second, appends the run's events under its epoch, folds
 * them into its state and snapshots that state every N events. A standby
 * waits for the lease (the active died, hung or let go), then recovers the
 * state from the youngest snapshot plus the later events (or from the
 * ledger) and carries on as the active one.
 *
 * The `rebuild run` pipeline drives it: `Coordinator.start` for a new or
 * resumed run, `Coordinator.standby` for `rebuild run --standby RUN`, then
 * `append(...)` as steps start and finish.
 *
 * Every event of the run goes through `append` on the active coordinator:
 * its state and its snapshots are the fold of what it appended itself (one
 * append at a time), so a snapshot at number n never leaves out an event
 * below n that another connection still had open.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";

import type { PgClient } from "../db/connect.js";
import { connect, withTransaction } from "../db/connect.js";
import { PreconditionError } from "../errors.js";
import type { Logger } from "../logger.js";
import { appendEvents, StaleEpochError } from "./events.js";
import { evolve } from "./fold.js";
import {
  acquireLease,
  DEFAULT_LEASE_TTL_MS,
  describeLease,
  type Lease,
  releaseLease,
  renewLease,
  watchLease,
} from "./lease.js";
import { recover, type Recovery } from "./recover.js";
import { pruneSnapshots, saveSnapshot } from "./snapshots.js";
import type { RunEvent, RunState } from "./types.js";

export interface CoordinatorOptions {
  /** Who holds the lease, for operators; default host:pid:random. */
  holder?: string;
  /** Lease time to live; default 5 s. */
  ttlMs?: number;
  /** How often the active one renews; default 1 s. */
  renewMs?: number;
  /** How often a standby looks at the lease; default 250 ms. */
  pollMs?: number;
  /** Snapshot after this many events; default 1,000. */
  snapshotEvery?: number;
  /** Snapshots kept; default 2. */
  keepSnapshots?: number;
  /** Recovery ignores snapshots older than this; default any age. */
  snapshotMaxAgeMs?: number;
  logger?: Logger;
  /** Called once if the lease is lost (another coordinator took over, or the database went away). */
  onLost?: (reason: string) => void;
  signal?: AbortSignal;
}

export class Coordinator {
  private lease: Lease;
  private current: RunState;
  private sinceSnapshot = 0;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private lostReason: string | undefined;

  private constructor(
    private readonly client: PgClient,
    lease: Lease,
    readonly recovery: Recovery,
    private readonly options: CoordinatorOptions,
  ) {
    this.lease = lease;
    this.current = recovery.state;
  }

  /**
   * Becomes the run's active coordinator now, or refuses (exit 3) while
   * another one holds the lease.
   */
  static async start(
    url: string,
    runId: string,
    options: CoordinatorOptions = {},
  ): Promise<Coordinator> {
    const client = await connect(url, {
      applicationName: "fitsfleet coordinator",
    });
    try {
      const holder = options.holder ?? defaultHolder();
      const lease = await acquireLease(client, runId, holder, options);
      if (lease === undefined) {
        const held = await describeLease(client, runId);
        throw new PreconditionError(
          `run ${runId} has an active coordinator: ${held?.holder ?? "unknown"} (epoch ${held?.epoch ?? "?"}, lease until ${held?.expiresAt.toISOString() ?? "?"})`,
          {
            suggestion: `wait for it to finish, or start this one as a standby (\`rebuild run --standby ${runId}\`) to take over when it dies`,
          },
        );
      }
      return await Coordinator.begin(client, runId, lease, options);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  /** Waits for the run's lease, then recovers its state and becomes active. */
  static async standby(
    url: string,
    runId: string,
    options: CoordinatorOptions = {},
  ): Promise<Coordinator> {
    const client = await connect(url, {
      applicationName: "fitsfleet coordinator (standby)",
    });
    try {
      const holder = options.holder ?? defaultHolder();
      let announced = false;
      const lease = await watchLease(client, runId, holder, {
        ...options,
        onWait: (held) => {
          if (!announced && held !== undefined) {
            announced = true;
            options.logger?.info("standing by", {
              run: runId,
              active: held.holder,
              epoch: held.epoch,
            });
          }
        },
      });
      return await Coordinator.begin(client, runId, lease, options);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  private static async begin(
    client: PgClient,
    runId: string,
    lease: Lease,
    options: CoordinatorOptions,
  ): Promise<Coordinator> {
    const recovery = await recover(client, runId, {
      snapshotMaxAgeMs: options.snapshotMaxAgeMs,
    });
    const c = new Coordinator(client, lease, recovery, options);
    options.logger?.info("coordinator active", {
      run: runId,
      epoch: lease.epoch,
      source: recovery.source,
      reason: recovery.reason,
      seq: recovery.state.seq,
      replayed: recovery.replayed,
    });
    // The next takeover starts from here rather than replaying the same events.
    if (
      recovery.state.seq > 0 &&
      (recovery.source !== "snapshot" || recovery.replayed > 0)
    ) {
      await c.snapshot();
    }
    c.timer = setInterval(() => {
      void c.renew();
    }, options.renewMs ?? 1_000);
    c.timer.unref();
    return c;
  }

  get runId(): string {
    return this.lease.runId;
  }

  get epoch(): number {
    return this.lease.epoch;
  }

  /** The run's state: the fold of every event appended or recovered so far. */
  get state(): RunState {
    return this.current;
  }

  /** Why the lease was lost, or undefined while it is held. */
  get lost(): string | undefined {
    return this.lostReason;
  }

  /** One query at a time on the lease connection: a renewal never lands inside an append's transaction. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async renew(): Promise<void> {
    if (this.lostReason !== undefined) {
      return;
    }
    try {
      const renewed = await this.serial(() =>
        renewLease(this.client, this.lease, {
          ttlMs: this.options.ttlMs ?? DEFAULT_LEASE_TTL_MS,
        }),
      );
      if (renewed === undefined) {
        this.lose(`epoch ${this.lease.epoch} was taken over`);
      } else {
        this.lease = renewed;
      }
    } catch (error) {
      // A renewal that fails may be transient; the lease only matters once
      // it expires, and appends are fenced by the epoch regardless.
      this.options.logger?.warn("lease renewal failed", {
        run: this.runId,
        error: (error as Error).message,
      });
    }
  }

  private lose(reason: string): void {
    if (this.lostReason === undefined) {
      this.lostReason = reason;
      clearInterval(this.timer);
      this.options.logger?.warn("coordinator lease lost", {
        run: this.runId,
        reason,
      });
      this.options.onLost?.(reason);
    }
  }

  /**
   * Appends events under this coordinator's epoch and folds them into the
   * state; refused (StaleEpochError) once another coordinator has taken over.
   */
  async append(...events: RunEvent[]): Promise<number[]> {
    return (await this.transact(async () => ({ events, result: undefined })))
      .seqs;
  }

  /**
   * Runs `fn` in one transaction on the coordinator's connection and
   * appends the events it returns in the same transaction, so that the
   * pipeline's own rows (a step's row, say) and the events that tell of them
   * commit together or not at all. Refused, and everything `fn` wrote
   * rolled back, once another coordinator has taken over.
   */
  async transact<T>(
    fn: (client: PgClient) => Promise<{ events: RunEvent[]; result: T }>,
  ): Promise<{ seqs: number[]; result: T }> {
    const { seqs, events, result } = await this.serial(async () => {
      try {
        return await withTransaction(this.client, async (c) => {
          // Fenced from the start: no takeover while `fn` works, and no
          // work at all under an epoch that is already stale.
          const { rows } = await c.query<{ epoch: string }>(
            "SELECT epoch FROM fitsfleet.run_leases WHERE run_id = $1 FOR KEY SHARE",
            [this.runId],
          );
          const current =
            rows[0] === undefined ? undefined : Number(rows[0].epoch);
          if (current !== this.lease.epoch) {
            throw new StaleEpochError(this.runId, this.lease.epoch, current);
          }
          const out = await fn(c);
          const seqs = await appendEvents(c, this.runId, out.events, {
            epoch: this.lease.epoch,
            inTransaction: true,
          });
          return { seqs, ...out };
        });
      } catch (error) {
        if (error instanceof StaleEpochError) {
          this.lose(error.message);
        }
        throw error;
      }
    });
    let state = this.current;
    events.forEach((event, i) => {
      state = evolve(state, { seq: seqs[i]!, event });
    });
    this.current = state;
    this.sinceSnapshot += events.length;
    if (this.sinceSnapshot >= (this.options.snapshotEvery ?? 1_000)) {
      await this.snapshot();
    }
    return { seqs, result };
  }

  /**
   * Folds in events that the pipeline appended under this coordinator's
   * epoch on its own connection and has committed. The pipeline appends one
   * transaction at a time and nothing else appends while this coordinator
   * is active, so its state (and the snapshots of it) still leave out no
   * event below their number.
   */
  async absorb(seqs: number[], events: RunEvent[]): Promise<void> {
    let state = this.current;
    events.forEach((event, i) => {
      state = evolve(state, { seq: seqs[i]!, event });
    });
    this.current = state;
    this.sinceSnapshot += events.length;
    if (this.sinceSnapshot >= (this.options.snapshotEvery ?? 1_000)) {
      await this.snapshot();
    }
  }

  /** An append under this epoch was refused: another coordinator took over. */
  fenced(error: StaleEpochError): void {
    this.lose(error.message);
  }

  /** Saves the state as a snapshot now and keeps the youngest few. */
  async snapshot(): Promise<void> {
    const state = this.current;
    await this.serial(async () => {
      await saveSnapshot(this.client, this.runId, state.seq, state);
      await pruneSnapshots(
        this.client,
        this.runId,
        this.options.keepSnapshots ?? 2,
      );
    });
    this.sinceSnapshot = 0;
  }

  /** Stops renewing; `release` hands the lease to a standby at once. */
  async close(options: { release?: boolean } = {}): Promise<void> {
    clearInterval(this.timer);
    try {
      if (options.release === true && this.lostReason === undefined) {
        await this.serial(() => releaseLease(this.client, this.lease));
      }
    } finally {
      await this.queue;
      await this.client.end().catch(() => undefined);
    }
  }
}

function defaultHolder(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}
