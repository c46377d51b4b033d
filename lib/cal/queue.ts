/**
 * The archive's `calcachequeue`, as `worker calcache` works it: the
 * reference's pop (queues/queue/queue.py, DOMAIN.md §2.5) and what becomes
 * of an entry, plus fitsfleet's one addition, the dependents of a new
 * calibration.
 *
 * ## Taking work
 * Entries are taken with `FOR UPDATE SKIP LOCKED` inside the transaction
 * that also evaluates the frames, writes their rows and deletes the
 * entries. Evaluating a frame is database work only (a few statements), so
 * the row lock held to the commit is the lease: a worker that dies mid-frame
 * loses its connection, PostgreSQL rolls its transaction back, and the entry
 * is there for the next worker as it was. `inprogress` is therefore never
 * set by fitsfleet; an entry another tool marked in progress (the
 * reference's own service) is left to it, and so is any entry of a file
 * that has one, as the reference does.
 *
 * ## Dependents
 * The reference re-evaluates only the queued frame: a new calibration
 * reaches the science frames that should take it only when those are
 * queued again (its cron re-queues the last 2 and 180 days). fitsfleet
 * queues them at once: evaluating a new frame (one with no rows of its own
 * in the cache yet, from an entry that is not itself a dependent) queues
 * every frame whose associations it can change:
 * - frames whose cache names an older version of the same file (no longer
 *   canonical, so no longer a calibration);
 * - frames of the same instrument rules whose searches could find it: in
 *   its instrument table, within the widest time window of those rules,
 *   or at any time for the kinds that are searched without one (processed
 *   BPMs, at or after it; GMOS masks; GNIRS processed flats).
 * A dependent's entry carries DEPENDENT_NOTE in `error` (its reason, for
 * the operator) and queues nothing in turn, so the cascade ends there; its
 * sortkey puts it after all other work (DEPENDENT_SORTKEY_PREFIX). A
 * frame whose rows come out the same is not rewritten (`syncFrameAssociations`).
 */
import { NOT_FAILED } from "../archive-writer.js";
import type { AnyClient } from "../db/connect.js";
import {
  CALCACHE_FRAME_LOCK_CLASS,
  CALCACHE_WRITERS_GATE_KEY,
} from "../db/locks.js";
import { sortKey } from "../rebuild/names.js";
import { INSTRUMENT_RULES } from "./rules/index.js";

/** The start of a dependent entry's `error`: why it was queued, and that it queues nothing itself. */
export const DEPENDENT_NOTE = "fitsfleet: re-evaluate for a new calibration:";

/**
 * Before every sortkey the reference makes ('z…', 'y…', 'x…', 'aaaa…'), so
 * in the descending pop dependents come after all other work: new frames
 * first, and a frame many new calibrations reach waits in the queue once
 * (one waiting entry per frame) instead of being evaluated after each.
 */
export const DEPENDENT_SORTKEY_PREFIX = "0";

/** The reference's error text for a frame that raised (service_calcache_queue.py). */
export const REFERENCE_FAILURE =
  "Exception while associating calibrations for CalCache";

/**
 * The widest `max_interval` of each instrument's rules, in days (a frame
 * further than this from a calibration cannot take it): GMOS dark, arc,
 * fringe 365 (calibration_gmos.py); NIRI dark, flat, arc 180; F2 dark,
 * flat, arc, standard 90; GNIRS dark, arc 365. test/cal/worker.test.ts
 * checks them against every frame of a generated archive.
 */
export const WIDEST_WINDOW_DAYS: Record<string, number> = {
  gmos: 365,
  niri: 180,
  f2: 90,
  gnirs: 365,
};

/**
 * Enters the calcache writers' gate for the rest of the caller's
 * transaction, shared (workers never wait for each other), without waiting:
 * false while a `rebuild calcache` holds it or waits for it. A rebuild
 * computes every covered frame's rows from one moment and puts them in
 * place at its end, so a frame a worker re-associated meanwhile would get
 * rows older than the calibration that queued it; the worker takes nothing
 * then, and its entries stay queued for after the rebuild (whose queue
 * snapshot is taken once it holds the gate, so they are not cleared).
 */
export async function enterCalcacheWriters(
  client: AnyClient,
): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(
    "SELECT pg_try_advisory_xact_lock_shared($1::bigint) AS ok",
    [CALCACHE_WRITERS_GATE_KEY],
  );
  return rows[0]?.ok === true;
}

export interface QueueEntry {
  id: number;
  obsHid: number;
  filename: string | null;
  /** A dependent: queued by fitsfleet for a new calibration; queues nothing itself. */
  dependent: boolean;
}

/**
 * Takes up to `limit` entries, newest sortkey first, locked to the end of
 * the caller's transaction, and the frames' locks, in frame order (so two
 * writers of one frame take turns and never wait on each other in a circle).
 */
export async function takeCalcacheEntries(
  client: AnyClient,
  limit: number,
): Promise<QueueEntry[]> {
  const { rows } = await client.query<{
    id: number;
    obs_hid: number;
    filename: string | null;
    error: string | null;
  }>(
    `SELECT q.id, q.obs_hid, q.filename, q.error
       FROM calcachequeue q
      WHERE q.fail_dt = $1
        AND NOT coalesce(q.inprogress, false)
        AND (q.filename IS NULL OR q.filename NOT IN (
              SELECT p.filename FROM calcachequeue p
               WHERE p.fail_dt = $1 AND p.inprogress AND p.filename IS NOT NULL))
      ORDER BY q.sortkey DESC, q.id
      LIMIT $2
      FOR UPDATE OF q SKIP LOCKED`,
    [NOT_FAILED, limit],
  );
  const entries = rows
    .map((r) => ({
      id: r.id,
      obsHid: r.obs_hid,
      filename: r.filename,
      dependent: r.error?.startsWith(DEPENDENT_NOTE) === true,
    }))
    .sort((a, b) => a.obsHid - b.obsHid);
  await lockFrames(
    client,
    entries.map((e) => e.obsHid),
  );
  return entries;
}

/** Holds the frames' locks to the end of the transaction, taken in id order. */
export async function lockFrames(
  client: AnyClient,
  obsHids: number[],
): Promise<void> {
  if (obsHids.length === 0) {
    return;
  }
  await client.query(
    `SELECT pg_advisory_xact_lock($1, id)
       FROM (SELECT DISTINCT unnest($2::int[]) AS id) AS f ORDER BY id`,
    [CALCACHE_FRAME_LOCK_CLASS, obsHids],
  );
}

/** Deletes finished entries (the reference: success, or a frame it leaves alone). */
export async function deleteEntries(
  client: AnyClient,
  ids: number[],
): Promise<void> {
  if (ids.length > 0) {
    await client.query("DELETE FROM calcachequeue WHERE id = ANY($1::int[])", [
      ids,
    ]);
  }
}

/** Marks an entry failed with its reason, appended as the reference's `seterror` does. */
export async function failEntry(
  client: AnyClient,
  id: number,
  reason: string,
): Promise<void> {
  await client.query(
    `UPDATE calcachequeue
        SET fail_dt = now(), inprogress = false,
            error = CASE WHEN error IS NULL OR error = '' THEN $2
                         ELSE error || E'\\n\\n' || $2 END
      WHERE id = $1`,
    [id, reason],
  );
}

/**
 * Whether the frame has rows of its own in the cache: then it was evaluated
 * before, and its dependents were queued when it was first (a bulk re-queue
 * does not fan out again). A new version of a file is a new header, so it
 * is always new here. (Being some other frame's calibration proves
 * nothing: that frame may have been evaluated after this one arrived while
 * others were not.) A frame with no rows at all fans out each time it is
 * queued, which costs work, not correctness.
 */
export async function knownToCache(
  client: AnyClient,
  headerId: number,
): Promise<boolean> {
  const { rows } = await client.query<{ known: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM calcache WHERE obs_hid = $1) AS known",
    [headerId],
  );
  return rows[0]?.known === true;
}

/** The frames whose associations a new frame can change (see the module's comment), itself excluded. */
export async function dependentsOf(
  client: AnyClient,
  headerId: number,
): Promise<{ id: number; filename: string }[]> {
  const found = new Map<number, string>();
  // Frames that name an older version of the same file as a calibration.
  const superseded = await client.query<{ id: number; filename: string }>(
    `SELECT DISTINCT s.id, sd.filename
       FROM header x
       JOIN diskfile xd ON xd.id = x.diskfile_id
       JOIN diskfile od ON od.file_id = xd.file_id AND od.id <> xd.id AND NOT coalesce(od.canonical, false)
       JOIN header o ON o.diskfile_id = od.id
       JOIN calcache c ON c.cal_hid = o.id
       JOIN header s ON s.id = c.obs_hid
       JOIN diskfile sd ON sd.id = s.diskfile_id
      WHERE x.id = $1 AND sd.canonical`,
    [headerId],
  );
  for (const r of superseded.rows) {
    found.set(r.id, r.filename);
  }
  // Only the tables the frame has a row in (normally one): the base query
  // joins the instrument table, so no other rules can find it.
  const { rows: tables } = await client.query<{ tables: string[] }>(
    `SELECT array_remove(ARRAY[${INSTRUMENT_RULES.map(
      (r) =>
        `CASE WHEN EXISTS (SELECT 1 FROM ${r.table} WHERE header_id = $1) THEN '${r.table}' END`,
    ).join(", ")}], NULL) AS tables`,
    [headerId],
  );
  const inTables = new Set(tables[0]?.tables ?? []);
  for (const rules of INSTRUMENT_RULES.filter((r) => inTables.has(r.table))) {
    const window = WIDEST_WINDOW_DAYS[rules.table];
    if (window === undefined) {
      throw new Error(`no widest window for the ${rules.table} rules`);
    }
    // Only a canonical, not failed frame with a row in the table can be
    // found by these rules (the base query's joins and filters).
    const { rows } = await client.query<{ id: number; filename: string }>(
      `WITH x AS (
         SELECT h.id, h.ut_datetime, h.reduction, h.observation_type, h.engineering
           FROM header h JOIN diskfile d ON d.id = h.diskfile_id
          WHERE h.id = $1 AND d.canonical AND h.qa_state <> 'Fail'
            AND EXISTS (SELECT 1 FROM ${rules.table} i WHERE i.header_id = h.id))
       SELECT s.id, sd.filename
         FROM x, header s JOIN diskfile sd ON sd.id = s.diskfile_id
        WHERE sd.canonical AND s.id <> x.id
          AND s.instrument = ANY($2::text[])
          AND s.ut_datetime IS NOT NULL
          AND s.qa_state IS DISTINCT FROM 'Fail'
          AND (x.engineering IS FALSE OR s.engineering IS DISTINCT FROM false)
          AND (
            (x.reduction = 'PROCESSED_BPM' AND s.ut_datetime >= x.ut_datetime)
            OR ($3::text = 'gmos' AND x.observation_type = 'MASK')
            OR ($3::text = 'gnirs' AND x.reduction = 'PROCESSED_FLAT')
            OR s.ut_datetime BETWEEN x.ut_datetime - make_interval(days => $4::int)
                                 AND x.ut_datetime + make_interval(days => $4::int))`,
      [headerId, rules.instruments, rules.table, window],
    );
    for (const r of rows) {
      found.set(r.id, r.filename);
    }
  }
  found.delete(headerId);
  return [...found].map(([id, filename]) => ({ id, filename }));
}

/**
 * Queues the frames as dependents of `cause` (a file name, for the note).
 * A frame already waiting in the queue is left as it is (its entry is
 * worked after this one was committed, so it sees the new frame), and so is
 * a frame with a failed entry (as add_to_calcache_queue skips them: it
 * waits for an operator). Returns how many were queued.
 */
export async function queueDependents(
  client: AnyClient,
  frames: { id: number; filename: string }[],
  cause: string,
): Promise<number> {
  if (frames.length === 0) {
    return 0;
  }
  const sorted = [...frames].sort((a, b) => a.id - b.id);
  const { rowCount } = await client.query(
    `INSERT INTO calcachequeue (obs_hid, inprogress, fail_dt, added, sortkey, filename, error)
     SELECT f.id, false, $1, now() AT TIME ZONE 'UTC', f.sortkey, f.filename, $5
       FROM unnest($2::int[], $3::text[], $4::text[]) AS f(id, filename, sortkey)
      WHERE NOT EXISTS (SELECT 1 FROM calcachequeue q
                         WHERE q.obs_hid = f.id AND q.fail_dt <> $1)
     ON CONFLICT DO NOTHING`,
    [
      NOT_FAILED,
      sorted.map((f) => f.id),
      sorted.map((f) => f.filename),
      sorted.map((f) => DEPENDENT_SORTKEY_PREFIX + sortKey(f.filename)),
      `${DEPENDENT_NOTE} ${cause}`,
    ],
  );
  return rowCount ?? 0;
}

/** Entries that can still be worked (not failed): the workers' backlog. */
export async function calcacheWorkLeft(client: AnyClient): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    "SELECT count(*) AS n FROM calcachequeue WHERE fail_dt = $1",
    [NOT_FAILED],
  );
  return Number(rows[0]?.n ?? 0);
}
