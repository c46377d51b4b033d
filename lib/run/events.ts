/**
 * The run's event log (migration 0005): append-only, ordered by sequence
 * number, read only up to a safe high-water mark.
 *
 * ## Why a high-water mark
 * Numbers come from one PostgreSQL sequence, drawn inside the appending
 * transaction, so appends never wait for each other; but a sequence is not
 * commit-ordered. Transaction T1 draws 101 and is still open when T2 draws
 * 102 and commits: a reader that passed 102 would never see 101 (Marten's
 * async daemon skipped events this way). So every append first takes its
 * transaction id and a shared lock on the run, then draws its numbers,
 * then records the transactions holding that lock at that moment
 * (`in_flight`, read from pg_locks after the draw). Whoever holds a number
 * below 102 drew it earlier, so already held its id and the lock: it had
 * either ended by then (its events are visible to
 * anyone who sees 102) or it is in 102's `in_flight`. A reader therefore
 * passes event b only when none of b's `in_flight` transactions still runs
 * (`pg_xact_status`), then reads again up to b so that what those
 * transactions committed meanwhile is included. A number whose transaction
 * rolled back is passed on that evidence, never because time went by.
 *
 * Appends must run at READ COMMITTED: a repeatable-read transaction would
 * record the snapshot it started with, taken before its numbers were drawn.
 */
import type { AnyClient } from "../db/connect.js";
import { withTransaction } from "../db/connect.js";
import { RUN_APPEND_LOCK_CLASS } from "../db/locks.js";
import { PreconditionError, UsageError } from "../errors.js";
import type { StoredEvent } from "./fold.js";
import type { RunEvent } from "./types.js";

/** Thrown when an append names an epoch that is no longer the run's lease epoch. */
export class StaleEpochError extends PreconditionError {
  constructor(
    runId: string,
    epoch: number | undefined,
    current: number | undefined,
  ) {
    super(
      current === undefined
        ? `run ${runId}: append under lease epoch ${String(epoch)} refused: the run has no coordinator lease`
        : epoch === undefined
          ? `run ${runId}: append without a lease epoch refused: coordinator epoch ${current} holds the run`
          : `run ${runId}: append under lease epoch ${epoch} refused: epoch ${current} has taken over`,
      {
        suggestion:
          "this coordinator is no longer active; stop it (the active one continues the run)",
        context: { runId, epoch, current },
      },
    );
  }
}

export interface AppendOptions {
  /**
   * The lease epoch this writer holds. Required when the run has a lease;
   * the append is refused unless it is the current one.
   */
  epoch?: number;
  /**
   * The caller has opened the transaction (to append together with other
   * writes); otherwise the append runs in a transaction of its own.
   */
  inTransaction?: boolean;
}

/**
 * The transactions, other than ours, appending to run `$2` now: those that
 * hold the run's shared append lock in this database, by their transaction
 * ids (the lock on its own id that every transaction holds). pg_locks is
 * read whole and consistently; a snapshot's xip list would not do, as it
 * leaves out every transaction at or above its xmax. The 32-bit ids get the
 * epoch of ours, or the neighbouring one when they lie more than 2^31 away.
 */
const RUNNING_APPENDERS = `
  WITH me AS (SELECT pg_current_xact_id()::text::bigint AS full_id),
  appenders AS (
    SELECT DISTINCT t.transactionid::text::bigint AS x
      FROM pg_locks a
      JOIN pg_locks t
        ON t.virtualtransaction = a.virtualtransaction
       AND t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted
     WHERE a.locktype = 'advisory' AND a.granted
       AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND a.classid = $1::int::oid AND a.objid = hashtext($2)::oid AND a.objsubid = 2)
  SELECT coalesce(array_agg(
           (((me.full_id >> 32)
             + CASE WHEN r.x - (me.full_id & 4294967295) > 2147483648 THEN -1
                    WHEN (me.full_id & 4294967295) - r.x > 2147483648 THEN 1
                    ELSE 0 END) << 32 | r.x)::text) FILTER (WHERE r.x <> (me.full_id & 4294967295)),
         '{}') AS in_flight
    FROM me LEFT JOIN appenders r ON true
   GROUP BY me.full_id`;

function serialise(runId: string, events: readonly RunEvent[]): string[] {
  return events.map((event, i) => {
    let text: string | undefined;
    try {
      text = JSON.stringify(event);
    } catch (error) {
      throw new UsageError(
        `run ${runId}: event ${i} (${String(event?.type)}) cannot be stored: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const parsed: unknown = text === undefined ? undefined : JSON.parse(text);
    if (
      typeof parsed !== "object" ||
      parsed === null ||
      typeof (parsed as { type?: unknown }).type !== "string"
    ) {
      throw new UsageError(
        `run ${runId}: event ${i} is not an object with a string "type"; nothing was appended`,
      );
    }
    return text!;
  });
}

/**
 * Appends `events` in order, atomically, and returns their sequence numbers
 * (increasing, not necessarily consecutive: other runs draw from the same
 * sequence). Refused with StaleEpochError when `options.epoch` is not the
 * run's current lease epoch.
 */
export async function appendEvents(
  client: AnyClient,
  runId: string,
  events: readonly RunEvent[],
  options: AppendOptions = {},
): Promise<number[]> {
  if (events.length === 0) {
    return [];
  }
  const texts = serialise(runId, events);
  const types = events.map((e) => e.type);
  const work = async (c: AnyClient): Promise<number[]> => {
    const { rows: head } = await c.query<{
      isolation: string;
    }>(
      // The transaction id first: it must exist before the numbers are drawn.
      `SELECT pg_current_xact_id(), current_setting('transaction_isolation') AS isolation`,
    );
    if (head[0]?.isolation !== "read committed") {
      throw new PreconditionError(
        `run ${runId}: events must be appended at READ COMMITTED, not ${head[0]?.isolation}`,
        {
          suggestion:
            "append outside the repeatable-read or serializable transaction",
        },
      );
    }
    // KEY SHARE: appends do not block each other or the holder's renewal,
    // but a takeover (FOR UPDATE) waits until every append under the old
    // epoch has ended, and any append after it sees the new epoch.
    const { rows: lease } = await c.query<{ epoch: string }>(
      "SELECT epoch FROM fitsfleet.run_leases WHERE run_id = $1 FOR KEY SHARE",
      [runId],
    );
    const current = lease[0] === undefined ? undefined : Number(lease[0].epoch);
    if (current !== options.epoch) {
      throw new StaleEpochError(runId, options.epoch, current);
    }
    // Announced before the draw and held to the end: whoever draws a later
    // number finds this transaction in pg_locks.
    await c.query("SELECT pg_advisory_xact_lock_shared($1, hashtext($2))", [
      RUN_APPEND_LOCK_CLASS,
      runId,
    ]);
    const { rows: drawn } = await c.query<{ seq: string }>(
      "SELECT nextval('fitsfleet.run_event_seq') AS seq FROM generate_series(1, $1)",
      [events.length],
    );
    const seqs = drawn.map((r) => Number(r.seq)).sort((a, b) => a - b);
    // Only now, after the draw: every writer of a smaller number already
    // holds its transaction id, so it is in this list or has ended.
    const { rows: running } = await c.query<{ in_flight: string[] }>(
      RUNNING_APPENDERS,
      [RUN_APPEND_LOCK_CLASS, runId],
    );
    await c.query(
      `INSERT INTO fitsfleet.run_events (run_id, seq, epoch, type, event, in_flight)
       SELECT $1, u.seq, $2, u.type, u.event::jsonb, $6::xid8[]
         FROM unnest($3::bigint[], $4::text[], $5::text[]) AS u(seq, type, event)`,
      [runId, current ?? 0, seqs, types, texts, running[0]?.in_flight ?? []],
    );
    return seqs;
  };
  return options.inTransaction === true
    ? work(client)
    : withTransaction(client, work);
}

export interface ReadOptions {
  /** First sequence number wanted (inclusive); default 1. */
  from?: number;
  /** Last sequence number wanted (inclusive); default no bound. */
  to?: number;
  /** At most this many events; default no limit. 0 returns none. */
  limit?: number;
}

export interface EventPage {
  /** Events in sequence order, each final: nothing can appear before them later. */
  events: StoredEvent[];
  /** The sequence number a reader may continue after (the last event returned, or from - 1). */
  safeTo: number;
  /**
   * Transactions still running that hold events back: later events exist
   * (committed) but one of these may hold a smaller number. Empty when the
   * read was not held back.
   */
  waitingOn: string[];
}

interface ProbeRow {
  seq: string;
  epoch: string;
  type: string;
  event: RunEvent;
  written_at: Date;
  in_flight: string[] | null;
}

function toStored(r: ProbeRow): StoredEvent {
  return {
    seq: Number(r.seq),
    epoch: Number(r.epoch),
    writtenAt: r.written_at,
    event: r.event,
  };
}

const SELECT_EVENTS = `
  SELECT seq, epoch, type, event, written_at,
         CASE WHEN cardinality(in_flight) = 0 THEN NULL ELSE in_flight::text[] END AS in_flight
    FROM fitsfleet.run_events
   WHERE run_id = $1 AND seq >= $2 AND seq <= $3
   ORDER BY seq
   LIMIT $4`;

/** The highest bigint; `to` and `limit` default to it. */
const NO_BOUND = "9223372036854775807";

/** Reads the run's events, never past a number an open transaction may still commit. */
export async function readEvents(
  client: AnyClient,
  runId: string,
  options: ReadOptions = {},
): Promise<EventPage> {
  const from = Math.max(1, options.from ?? 1);
  const to = options.to === undefined ? NO_BOUND : String(options.to);
  const limit = options.limit === undefined ? NO_BOUND : String(options.limit);
  const none: EventPage = { events: [], safeTo: from - 1, waitingOn: [] };
  if (options.limit === 0 || (options.to !== undefined && options.to < from)) {
    return none;
  }
  const probe = await client.query<ProbeRow>(SELECT_EVENTS, [
    runId,
    from,
    to,
    limit,
  ]);
  const xids = new Set<string>();
  for (const r of probe.rows) {
    for (const x of r.in_flight ?? []) {
      xids.add(x);
    }
  }
  let live = new Set<string>();
  if (xids.size > 0) {
    const { rows } = await client.query<{ x: string }>(
      `SELECT x::text FROM unnest($1::xid8[]) AS x
        WHERE pg_xact_status(x) = 'in progress'`,
      [[...xids]],
    );
    live = new Set(rows.map((r) => r.x));
  }
  // The last event none of whose in-flight transactions still runs: its
  // list covers every writer of a smaller number.
  let last = -1;
  for (let i = probe.rows.length - 1; i >= 0; i--) {
    const held = probe.rows[i]!.in_flight ?? [];
    if (!held.some((x) => live.has(x))) {
      last = i;
      break;
    }
  }
  const waitingOn = [...live].sort();
  if (last < 0) {
    return { ...none, waitingOn };
  }
  const bound = probe.rows[last]!;
  const heldBack = last < probe.rows.length - 1 ? waitingOn : [];
  let rows = probe.rows.slice(0, last + 1);
  if (bound.in_flight !== null) {
    // Those transactions have ended since the probe; what they committed
    // below `bound` is visible now.
    rows = (
      await client.query<ProbeRow>(SELECT_EVENTS, [
        runId,
        from,
        bound.seq,
        limit,
      ])
    ).rows;
  }
  const events = rows.map(toStored);
  return {
    events,
    safeTo: events[events.length - 1]?.seq ?? from - 1,
    waitingOn: heldBack,
  };
}

/** All safe events from `from` on, a page at a time. */
export async function* eventPages(
  client: AnyClient,
  runId: string,
  options: { from?: number; to?: number; pageSize?: number } = {},
): AsyncGenerator<EventPage> {
  let from = options.from ?? 1;
  const pageSize = options.pageSize ?? 10_000;
  for (;;) {
    const page = await readEvents(client, runId, {
      from,
      to: options.to,
      limit: pageSize,
    });
    if (page.events.length > 0) {
      yield page;
    }
    if (page.events.length < pageSize) {
      if (page.events.length === 0 && page.waitingOn.length > 0) {
        yield page;
      }
      return;
    }
    from = page.safeTo + 1;
  }
}

/**
 * The highest sequence number the run's log has had, committed: deleting
 * events never lowers it (0 for a run with none).
 */
export async function highestSeq(
  client: AnyClient,
  runId: string,
): Promise<number> {
  const { rows } = await client.query<{ highest: string }>(
    `SELECT greatest(
              (SELECT coalesce(max(seq), 0) FROM fitsfleet.run_events WHERE run_id = $1),
              (SELECT coalesce(max(highest_deleted), 0) FROM fitsfleet.run_journals WHERE run_id = $1)
            ) AS highest`,
    [runId],
  );
  return Number(rows[0]?.highest ?? 0);
}

/** The highest sequence number deleted from the run's log (0: none). */
export async function deletedThrough(
  client: AnyClient,
  runId: string,
): Promise<number> {
  const { rows } = await client.query<{ highest_deleted: string }>(
    "SELECT highest_deleted FROM fitsfleet.run_journals WHERE run_id = $1",
    [runId],
  );
  return Number(rows[0]?.highest_deleted ?? 0);
}

/**
 * Deletes the run's events up to and including `toSeq` (typically once a
 * snapshot covers them) and returns how many went. The highest number is
 * remembered, so `highestSeq` stays where it was.
 */
export async function deleteEvents(
  client: AnyClient,
  runId: string,
  toSeq: number,
): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    `WITH gone AS (
       DELETE FROM fitsfleet.run_events WHERE run_id = $1 AND seq <= $2 RETURNING seq),
     noted AS (
       INSERT INTO fitsfleet.run_journals (run_id, highest_deleted)
       SELECT $1, max(seq) FROM gone HAVING count(*) > 0
       ON CONFLICT (run_id) DO UPDATE
         SET highest_deleted = greatest(fitsfleet.run_journals.highest_deleted, EXCLUDED.highest_deleted))
     SELECT count(*) AS n FROM gone`,
    [runId, toSeq],
  );
  return Number(rows[0]?.n ?? 0);
}
