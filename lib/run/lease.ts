/**
 * The coordinator lease (migration 0005): which coordinator is active for a
 * run, with a fencing epoch.
 *
 * The holder renews the row every second or so. A standby takes over when
 * the row has expired, or at once when the holder's lease connection is gone
 * from pg_stat_activity: a holder killed with SIGKILL loses its connection
 * as the kernel closes the socket, so takeover does not wait for the expiry.
 * Each takeover adds one to the epoch; appends name their epoch and are
 * refused when it is stale (lib/run/events.ts), and a takeover waits for the
 * appends still running under the old epoch to end, so the new holder reads
 * a log the old one can no longer add to.
 *
 * The lease connection must be a direct (session) connection, not one lent
 * by a transaction-pooling pgbouncer: the backend that renews is the one
 * whose death is watched.
 */
import type { AnyClient } from "../db/connect.js";
import { withTransaction } from "../db/connect.js";
import { sleep } from "../exec.js";

export interface Lease {
  runId: string;
  holder: string;
  epoch: number;
  expiresAt: Date;
}

export interface LeaseOptions {
  /** How long a renewal keeps the lease; default 5 s. */
  ttlMs?: number;
}

export interface LeaseRecord extends Lease {
  holderPid: number;
  acquiredAt: Date;
  /** The lease has run out. */
  expired: boolean;
  /** The holder's lease connection is gone. */
  holderGone: boolean;
}

export const DEFAULT_LEASE_TTL_MS = 5_000;

interface LeaseRow {
  run_id: string;
  holder: string;
  epoch: string;
  holder_pid: number;
  acquired_at: Date;
  expires_at: Date;
  expired: boolean;
  holder_gone: boolean;
}

const SELECT_LEASE = `
  SELECT l.*, l.expires_at <= now() AS expired,
         NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                      WHERE a.pid = l.holder_pid AND a.backend_start = l.holder_started) AS holder_gone
    FROM fitsfleet.run_leases l
   WHERE l.run_id = $1`;

function toRecord(r: LeaseRow): LeaseRecord {
  return {
    runId: r.run_id,
    holder: r.holder,
    epoch: Number(r.epoch),
    holderPid: r.holder_pid,
    acquiredAt: r.acquired_at,
    expiresAt: r.expires_at,
    expired: r.expired,
    holderGone: r.holder_gone,
  };
}

/** The run's lease row as it stands, or undefined when no coordinator ever held it. */
export async function describeLease(
  client: AnyClient,
  runId: string,
): Promise<LeaseRecord | undefined> {
  const { rows } = await client.query<LeaseRow>(SELECT_LEASE, [runId]);
  return rows[0] === undefined ? undefined : toRecord(rows[0]);
}

const ME = `pg_backend_pid(), (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())`;

/**
 * One attempt to become the run's active coordinator: succeeds when nobody
 * holds the lease, it has expired, or its holder's connection is gone.
 * Returns the lease (with a new epoch), or undefined while another holds
 * it. `client` becomes the lease connection: renew on it.
 */
export async function acquireLease(
  client: AnyClient,
  runId: string,
  holder: string,
  options: LeaseOptions = {},
): Promise<Lease | undefined> {
  const ttl = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  return withTransaction(client, async (c) => {
    // Appends under the old epoch hold KEY SHARE; waiting for them is the
    // fence, but not forever behind a hung one: try again later instead.
    await c.query("SET LOCAL lock_timeout = '2s'");
    let current: LeaseRow | undefined;
    try {
      current = (
        await c.query<LeaseRow>(`${SELECT_LEASE} FOR UPDATE OF l`, [runId])
      ).rows[0];
    } catch (error) {
      if ((error as { code?: string }).code === "55P03") {
        return undefined;
      }
      throw error;
    }
    let row: { epoch: string; expires_at: Date } | undefined;
    if (current === undefined) {
      row = (
        await c.query<{ epoch: string; expires_at: Date }>(
          `INSERT INTO fitsfleet.run_leases (run_id, holder, epoch, holder_pid, holder_started, expires_at)
           VALUES ($1, $2, 1, ${ME}, now() + make_interval(secs => $3::float8 / 1000))
           ON CONFLICT (run_id) DO NOTHING
           RETURNING epoch, expires_at`,
          [runId, holder, ttl],
        )
      ).rows[0];
    } else if (current.expired || current.holder_gone) {
      row = (
        await c.query<{ epoch: string; expires_at: Date }>(
          `UPDATE fitsfleet.run_leases
              SET holder = $2, epoch = epoch + 1, (holder_pid, holder_started) = (SELECT ${ME}),
                  acquired_at = now(), expires_at = now() + make_interval(secs => $3::float8 / 1000)
            WHERE run_id = $1
            RETURNING epoch, expires_at`,
          [runId, holder, ttl],
        )
      ).rows[0];
    }
    return row === undefined
      ? undefined
      : {
          runId,
          holder,
          epoch: Number(row.epoch),
          expiresAt: row.expires_at,
        };
  });
}

/**
 * Extends the lease from now; undefined when it is lost (another
 * coordinator has taken over). Renew on the connection that acquired it.
 */
export async function renewLease(
  client: AnyClient,
  lease: Lease,
  options: LeaseOptions = {},
): Promise<Lease | undefined> {
  const ttl = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  const { rows } = await client.query<{ expires_at: Date }>(
    `UPDATE fitsfleet.run_leases
        SET expires_at = now() + make_interval(secs => $4::float8 / 1000),
            (holder_pid, holder_started) = (SELECT ${ME})
      WHERE run_id = $1 AND epoch = $2 AND holder = $3
      RETURNING expires_at`,
    [lease.runId, lease.epoch, lease.holder, ttl],
  );
  return rows[0] === undefined
    ? undefined
    : { ...lease, expiresAt: rows[0].expires_at };
}

/**
 * Gives the lease up so that a standby takes over at once. The row stays,
 * with its epoch: epochs only ever grow, so a stale holder stays fenced.
 */
export async function releaseLease(
  client: AnyClient,
  lease: Lease,
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.run_leases SET expires_at = '-infinity'
      WHERE run_id = $1 AND epoch = $2 AND holder = $3`,
    [lease.runId, lease.epoch, lease.holder],
  );
}

export interface WatchOptions extends LeaseOptions {
  /** How often to look; default 250 ms. */
  pollMs?: number;
  signal?: AbortSignal;
  /** Told each time the lease is still held by someone else. */
  onWait?: (current: LeaseRecord | undefined) => void;
}

/**
 * Waits until this standby holds the run's lease, polling `acquireLease`;
 * rejects with the signal's reason when aborted.
 */
export async function watchLease(
  client: AnyClient,
  runId: string,
  holder: string,
  options: WatchOptions = {},
): Promise<Lease> {
  const poll = options.pollMs ?? 250;
  for (;;) {
    options.signal?.throwIfAborted();
    const lease = await acquireLease(client, runId, holder, options);
    if (lease !== undefined) {
      return lease;
    }
    if (options.onWait !== undefined) {
      options.onWait(await describeLease(client, runId));
    }
    await sleep(poll);
  }
}
