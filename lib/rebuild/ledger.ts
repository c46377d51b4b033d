/**
 * The ingest ledger (`fitsfleet.ingest_ledger`): every statement on it lives
 * here. PostgreSQL is the truth of a rebuild; Redis only carries batches of
 * ledger ids. A row goes queued → active (claimed by one delivery, under a
 * lease the delivery renews) → done, failed or skipped, in the same
 * transaction as the archive rows it stands for.
 */
import type { Queue } from "bullmq";

import type { AnyClient } from "../db/connect.js";
import { addBatches, type IngestJobData } from "./queue.js";

export const LEDGER_STATES = [
  "queued",
  "active",
  "done",
  "failed",
  "skipped",
] as const;
export type LedgerState = (typeof LEDGER_STATES)[number];

/** A claimed row: what a worker needs to ingest the file. */
export interface LedgerEntry {
  id: number;
  storage: string;
  path: string;
  filename: string;
  sortkey: string;
  force: boolean;
  forceMd5: boolean;
}

// --- enqueue -------------------------------------------------------------

export interface LedgerInsertOptions {
  storage: string;
  force: boolean;
  forceMd5: boolean;
  notBefore: Date | null;
}

/**
 * Writes the candidates of a temporary table (path, filename, sortkey,
 * size, lastmod) into the ledger in sort-key order, so that ledger ids run
 * newest first and a batch of files is mostly one id range. A file already
 * queued or running is left alone; one finished before is queued again when
 * forced, when it failed, or when its listed size or time differs from what
 * was ingested. Returns the ids to queue, newest first.
 */
export async function insertLedgerRows(
  client: AnyClient,
  candidates: string,
  options: LedgerInsertOptions,
): Promise<{ ids: number[]; inserted: number }> {
  const { rows } = await client.query<{
    id: string;
    sortkey: string;
    inserted: boolean;
  }>(
    `INSERT INTO fitsfleet.ingest_ledger AS l
            (storage, path, filename, sortkey, size, lastmod, force, force_md5, not_before)
     SELECT $4, path, filename, sortkey, size, lastmod, $1, $2, $3
       FROM (SELECT DISTINCT ON (path, filename) *
               FROM ${candidates} ORDER BY path, filename) AS c
      ORDER BY sortkey DESC, path, filename
     ON CONFLICT (path, filename) DO UPDATE
        SET state = 'queued', storage = EXCLUDED.storage, force = EXCLUDED.force, force_md5 = EXCLUDED.force_md5,
            not_before = EXCLUDED.not_before, size = coalesce(EXCLUDED.size, l.size),
            lastmod = coalesce(EXCLUDED.lastmod, l.lastmod), error = NULL,
            outcome = NULL, queued_at = now(), claim = NULL, lease_until = NULL
      WHERE l.state IN ('done', 'failed', 'skipped')
        AND (EXCLUDED.force OR EXCLUDED.force_md5 OR l.state = 'failed'
             OR (EXCLUDED.size IS NOT NULL AND EXCLUDED.size IS DISTINCT FROM l.size)
             OR (EXCLUDED.lastmod IS NOT NULL AND EXCLUDED.lastmod IS DISTINCT FROM l.lastmod))
     RETURNING l.id::text, l.sortkey, (xmax = 0) AS inserted`,
    [options.force, options.forceMd5, options.notBefore, options.storage],
  );
  // RETURNING is normally in insertion order already; sort only if it is not.
  const inOrder = rows.every(
    (r, i) => i === 0 || rows[i - 1]!.sortkey >= r.sortkey,
  );
  if (!inOrder) {
    rows.sort((a, b) =>
      a.sortkey < b.sortkey ? 1 : a.sortkey > b.sortkey ? -1 : 0,
    );
  }
  return {
    ids: rows.map((r) => Number(r.id)),
    inserted: rows.filter((r) => r.inserted).length,
  };
}

// --- claims ----------------------------------------------------------------

export interface Claim {
  /** This delivery's token (a uuid). */
  token: string;
  worker: string;
  leaseSeconds: number;
}

/**
 * Claims the batch's rows that no live delivery holds: queued ones, and
 * active ones whose lease ran out (their worker died). Rows another
 * delivery is claiming at this moment are skipped, not waited for.
 */
export async function claimRows(
  client: AnyClient,
  ids: number[],
  claim: Claim,
): Promise<LedgerEntry[]> {
  const { rows } = await client.query<{
    id: string;
    storage: string;
    path: string;
    filename: string;
    sortkey: string;
    force: boolean;
    force_md5: boolean;
  }>(
    `WITH free AS (
       SELECT id, state FROM fitsfleet.ingest_ledger
        WHERE id = ANY($1::bigint[])
          AND (state = 'queued'
               OR (state = 'active' AND (lease_until IS NULL OR lease_until < now())))
        FOR UPDATE SKIP LOCKED)
     UPDATE fitsfleet.ingest_ledger AS l
        SET state = 'active', worker = $2, claim = $3,
            lease_until = now() + make_interval(secs => $4),
            started_at = now(), attempts = l.attempts + 1,
            interruptions = l.interruptions + (free.state = 'active')::int
       FROM free WHERE l.id = free.id
     RETURNING l.id::text, l.storage, l.path, l.filename, l.sortkey, l.force, l.force_md5`,
    [ids, claim.worker, claim.token, claim.leaseSeconds],
  );
  return rows
    .map((r) => ({
      id: Number(r.id),
      storage: r.storage,
      path: r.path,
      filename: r.filename,
      sortkey: r.sortkey,
      force: r.force,
      forceMd5: r.force_md5,
    }))
    .sort((a, b) =>
      a.sortkey < b.sortkey ? 1 : a.sortkey > b.sortkey ? -1 : 0,
    );
}

/** How many of the batch's rows are unfinished and not this delivery's: another delivery holds them, or will claim them. */
export async function heldElsewhere(
  client: AnyClient,
  ids: number[],
  token: string,
): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM fitsfleet.ingest_ledger
      WHERE id = ANY($1::bigint[]) AND state IN ('queued', 'active')
        AND claim IS DISTINCT FROM $2`,
    [ids, token],
  );
  return Number(rows[0]?.n ?? 0);
}

// A delivery finds its rows by the batch's ids and its claim, never by
// `state = 'active'`: `claim` has no index, and the state index finds every
// active row of the fleet (120,000 for 600 workers with batches of 200).
// With `state = 'active'` in the condition the planner takes that index
// whenever its statistics count few active rows, as they do for a ledger
// analysed after its enqueue, and each statement read them all
// (docs/BENCHMARKS.md, "The central database at fleet scale"). A claim
// implies the row is active: only claimRows sets one, and every statement
// that takes a row out of `active` clears it.

/** Extends the lease on the batch's rows this delivery holds. */
export async function renewLease(
  client: AnyClient,
  claim: Claim,
  ids: number[],
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.ingest_ledger
        SET lease_until = now() + make_interval(secs => $2)
      WHERE id = ANY($3::bigint[]) AND claim = $1`,
    [claim.token, claim.leaseSeconds, ids],
  );
}

/** Hands a delivery's unfinished rows of the batch back (a stop, a retry): claimable again at once. */
export async function releaseClaim(
  client: AnyClient,
  token: string,
  ids: number[],
): Promise<number> {
  const { rowCount } = await client.query(
    `UPDATE fitsfleet.ingest_ledger
        SET state = 'queued', claim = NULL, lease_until = NULL
      WHERE id = ANY($2::bigint[]) AND claim = $1`,
    [token, ids],
  );
  return rowCount ?? 0;
}

/**
 * Of these rows, the ones this delivery still owns, locked until the end of
 * the transaction: only those may be written. Another delivery that took a
 * row over (after this one's lease ran out) owns it instead.
 */
export async function lockOwnedRows(
  client: AnyClient,
  ids: number[],
  token: string,
): Promise<Set<number>> {
  // Locked in id order (numeric, as every writer takes them), so that two
  // transactions never wait on each other in a circle; bigint comes back as text.
  const { rows } = await client.query<{ id: string; state: LedgerState }>(
    `SELECT id, state FROM fitsfleet.ingest_ledger
      WHERE id = ANY($1::bigint[]) AND claim = $2
      ORDER BY id FOR UPDATE`,
    [ids, token],
  );
  return new Set(
    rows.filter((r) => r.state === "active").map((r) => Number(r.id)),
  );
}

export interface LedgerFinish {
  id: number;
  state: "done" | "failed" | "skipped";
  outcome: string;
  error: string | null;
  diskfileId: number | null;
  /** What was ingested: a later enqueue compares the listing with these. */
  size?: number;
  lastmod?: Date;
}

/** Ends rows in their final state (inside the transaction that wrote their archive rows). */
export async function finishRows(
  client: AnyClient,
  updates: LedgerFinish[],
): Promise<void> {
  if (updates.length === 0) {
    return;
  }
  await client.query(
    `UPDATE fitsfleet.ingest_ledger AS l
        SET state = u.state, outcome = u.outcome, error = u.error,
            diskfile_id = u.diskfile_id, finished_at = now(),
            size = coalesce(u.size, l.size), lastmod = coalesce(u.lastmod, l.lastmod),
            claim = NULL, lease_until = NULL
       FROM (SELECT unnest($1::bigint[]) AS id, unnest($2::text[]) AS state,
                    unnest($3::text[]) AS outcome, unnest($4::text[]) AS error,
                    unnest($5::int[]) AS diskfile_id, unnest($6::bigint[]) AS size,
                    unnest($7::timestamptz[]) AS lastmod) AS u
      WHERE l.id = u.id`,
    [
      updates.map((u) => u.id),
      updates.map((u) => u.state),
      updates.map((u) => u.outcome),
      updates.map((u) => u.error),
      updates.map((u) => u.diskfileId),
      updates.map((u) => u.size ?? null),
      updates.map((u) => u.lastmod?.toISOString() ?? null),
    ],
  );
}

/**
 * A batch that ran out of retries: each of its files not finished is
 * failed with the last error, whoever held it, so nothing waits for a
 * delivery that will not come.
 */
export async function failUnfinished(
  client: AnyClient,
  ids: number[],
  error: string,
): Promise<number> {
  const { rowCount } = await client.query(
    `UPDATE fitsfleet.ingest_ledger
        SET state = 'failed', outcome = 'failed', error = $2, finished_at = now(),
            claim = NULL, lease_until = NULL
      WHERE id = ANY($1::bigint[]) AND state IN ('queued', 'active')`,
    [ids, error],
  );
  return rowCount ?? 0;
}

// --- the ledger's view of what is left ---------------------------------------

export interface UnfinishedWork {
  /** Queued, due, or active with a lease run out: work no delivery holds. */
  claimable: number;
  /** Active under a live lease: someone is on it. */
  held: number;
  /** Queued but not before a later time (--after). */
  later: number;
}

export async function unfinishedWork(
  client: AnyClient,
): Promise<UnfinishedWork> {
  const { rows } = await client.query<{
    claimable: string;
    held: string;
    later: string;
  }>(
    `SELECT count(*) FILTER (WHERE (state = 'queued' AND (not_before IS NULL OR not_before <= now()))
                              OR (state = 'active' AND (lease_until IS NULL OR lease_until < now()))) AS claimable,
            count(*) FILTER (WHERE state = 'active' AND lease_until >= now()) AS held,
            count(*) FILTER (WHERE state = 'queued' AND not_before > now()) AS later
       FROM fitsfleet.ingest_ledger WHERE state IN ('queued', 'active')`,
  );
  const r = rows[0];
  return {
    claimable: Number(r?.claimable ?? 0),
    held: Number(r?.held ?? 0),
    later: Number(r?.later ?? 0),
  };
}

/**
 * Rows some delivery should pick up, with the time before which each may
 * not start: the queue is re-created from these when Redis lost it.
 */
async function requeueRows(
  client: AnyClient,
  where: string,
): Promise<{ id: number; notBefore: Date | null }[]> {
  const { rows } = await client.query<{
    id: string;
    not_before: Date | null;
  }>(
    `WITH moved AS (
       UPDATE fitsfleet.ingest_ledger AS l
          SET state = 'queued', queued_at = now(), claim = NULL, lease_until = NULL
        WHERE ${where} RETURNING id, sortkey, not_before)
     SELECT id::text, not_before FROM moved ORDER BY sortkey DESC, id`,
  );
  return rows.map((r) => ({ id: Number(r.id), notBefore: r.not_before }));
}

/** Queues the rows' work: due rows at once, --after rows delayed to their time. */
async function queueRows(
  queue: Queue<IngestJobData>,
  rows: { id: number; notBefore: Date | null }[],
  batchSize: number | undefined,
): Promise<number> {
  const groups = new Map<number, number[]>();
  const now = Date.now();
  for (const row of rows) {
    const at = Math.max(now, row.notBefore?.getTime() ?? now);
    const list = groups.get(at) ?? [];
    list.push(row.id);
    groups.set(at, list);
  }
  let jobs = 0;
  for (const [at, ids] of groups) {
    jobs += await addBatches(queue, ids, {
      batchSize,
      delayMs: at - now,
    });
  }
  return jobs;
}

/** `rebuild retry-failed`: failed files go back to the queue (their error stays until they succeed). */
export async function retryFailed(
  client: AnyClient,
  queue: Queue<IngestJobData>,
  batchSize?: number,
): Promise<{ files: number; jobs: number }> {
  const rows = await requeueRows(client, "l.state = 'failed'");
  return { files: rows.length, jobs: await queueRows(queue, rows, batchSize) };
}

/**
 * `rebuild reconcile`, and what a worker does by itself when the queue is
 * empty but the ledger is not: every file no live delivery holds (queued,
 * or active under a lease that ran out) is queued again. Queuing a file
 * twice is harmless: a delivery writes only the rows it claimed.
 */
export async function reconcile(
  client: AnyClient,
  queue: Queue<IngestJobData>,
  batchSize?: number,
): Promise<{ files: number; jobs: number }> {
  const rows = await requeueRows(
    client,
    `l.state = 'queued'
     OR (l.state = 'active' AND (l.lease_until IS NULL OR l.lease_until < now()))`,
  );
  return { files: rows.length, jobs: await queueRows(queue, rows, batchSize) };
}

// --- reading the ledger --------------------------------------------------------

export interface WorkerActivity {
  worker: string;
  active: number;
  /** Files finished in the rate window. */
  recent: number;
  lastFinished: string | null;
}

export interface RebuildStatus {
  counts: Record<LedgerState, number>;
  total: number;
  /** Finished files (done, failed, skipped) per second over the window. */
  filesPerSecond: number;
  windowMinutes: number;
  /**
   * Where the window ends: now while work remains (or nothing has finished),
   * else at the last finish, so that a finished run keeps the rate it had
   * instead of one that decays towards 0 while nothing runs.
   */
  windowEnd: "now" | "lastFinish";
  /** Finished files per second over the whole run: from the first start to the last finish. */
  runFilesPerSecond: number;
  /** Seconds until queued and active files are done at that rate; null when unknown. */
  etaSeconds: number | null;
  /** Of the done files: new, new version, unchanged. */
  outcomes: Record<string, number>;
  /** Deliveries that took over the files of a worker that died or was stopped: not failures. */
  interruptions: number;
  workers: WorkerActivity[];
}

export async function rebuildStatus(
  client: AnyClient,
  windowMinutes = 5,
): Promise<RebuildStatus> {
  const { rows: states } = await client.query<{
    state: LedgerState;
    n: string;
  }>("SELECT state, count(*) AS n FROM fitsfleet.ingest_ledger GROUP BY state");
  const counts = Object.fromEntries(LEDGER_STATES.map((s) => [s, 0])) as Record<
    LedgerState,
    number
  >;
  for (const r of states) {
    counts[r.state] = Number(r.n);
  }
  const remaining = counts.queued + counts.active;
  // Only rows in a final state count as finished: a row queued again keeps
  // the finished_at of its last run until it finishes anew. A row failed
  // without ever being claimed (its batch ran out of retries) has no start.
  const { rows: rates } = await client.query<{
    upto: string;
    run_n: string;
    run_seconds: number | null;
    n: string;
    seconds: number;
    interruptions: string;
  }>(
    `WITH finished AS (
       SELECT coalesce(started_at, finished_at) AS started_at, finished_at
         FROM fitsfleet.ingest_ledger
        WHERE state IN ('done', 'failed', 'skipped') AND finished_at IS NOT NULL),
     bounds AS (
       SELECT CASE WHEN $2 THEN now() ELSE coalesce(max(finished_at), now()) END AS upto,
              count(*) AS run_n,
              extract(epoch FROM max(finished_at) - min(started_at))::float8 AS run_seconds
         FROM finished),
     recent AS (
       SELECT f.* FROM finished f, bounds b
        WHERE f.finished_at > b.upto - make_interval(mins => $1))
     -- upto as text: a Date would drop its microseconds.
     SELECT b.upto::text, b.run_n, b.run_seconds,
            (SELECT count(*) FROM recent) AS n,
            -- A run shorter than the window is measured from its first start.
            extract(epoch FROM b.upto - greatest(b.upto - make_interval(mins => $1),
                                                 (SELECT min(started_at) FROM recent)))::float8 AS seconds,
            (SELECT coalesce(sum(interruptions), 0) FROM fitsfleet.ingest_ledger) AS interruptions
       FROM bounds b`,
    [windowMinutes, remaining > 0],
  );
  const rate = rates[0]!;
  const runFinished = Number(rate.run_n);
  // At least a second, so that a file or two finished within a moment of
  // starting do not make an absurd rate; the same floor for both rates, so
  // that a run shorter than the window has one rate, not two.
  const filesPerSecond = Number(rate.n) / Math.max(1, rate.seconds);
  const runFilesPerSecond =
    runFinished === 0 ? 0 : runFinished / Math.max(1, rate.run_seconds ?? 0);
  const { rows: outcomes } = await client.query<{ outcome: string; n: string }>(
    `SELECT outcome, count(*) AS n FROM fitsfleet.ingest_ledger
      WHERE state = 'done' GROUP BY outcome`,
  );
  const { rows: workers } = await client.query<{
    worker: string;
    active: string;
    recent: string;
    last: Date | null;
  }>(
    `SELECT worker,
            count(*) FILTER (WHERE state = 'active') AS active,
            count(*) FILTER (WHERE state IN ('done', 'failed', 'skipped')
                               AND finished_at > $2::timestamptz - make_interval(mins => $1)) AS recent,
            max(finished_at) FILTER (WHERE state IN ('done', 'failed', 'skipped')) AS last
       FROM fitsfleet.ingest_ledger
      WHERE worker IS NOT NULL
        AND (state = 'active'
             OR (state IN ('done', 'failed', 'skipped')
                 AND finished_at > $2::timestamptz - make_interval(mins => $1)))
      GROUP BY worker ORDER BY worker`,
    [windowMinutes, rate.upto],
  );
  return {
    counts,
    total: Object.values(counts).reduce((a, b) => a + b, 0),
    filesPerSecond,
    windowMinutes,
    windowEnd: remaining > 0 || runFinished === 0 ? "now" : "lastFinish",
    runFilesPerSecond,
    etaSeconds:
      remaining === 0
        ? 0
        : filesPerSecond > 0
          ? remaining / filesPerSecond
          : null,
    outcomes: Object.fromEntries(outcomes.map((r) => [r.outcome, Number(r.n)])),
    interruptions: Number(rate.interruptions),
    workers: workers.map((w) => ({
      worker: w.worker,
      active: Number(w.active),
      recent: Number(w.recent),
      lastFinished: w.last?.toISOString() ?? null,
    })),
  };
}

export interface Failure {
  id: number;
  storage: string;
  path: string;
  filename: string;
  /** `path/filename`, the file as the ingest names it. */
  file: string;
  /** The error as the worker recorded it. */
  error: string;
  /** The error without the file's name, for a list that already shows the file. */
  reason: string;
  attempts: number;
  finishedAt: string | null;
}

export async function listFailures(
  client: AnyClient,
  limit = 100,
): Promise<{ total: number; failures: Failure[] }> {
  const { rows } = await client.query<{
    id: string;
    storage: string;
    path: string;
    filename: string;
    error: string | null;
    attempts: number;
    finished_at: Date | null;
    total: string;
  }>(
    `SELECT id::text, storage, path, filename, error, attempts, finished_at,
            count(*) OVER () AS total
       FROM fitsfleet.ingest_ledger WHERE state = 'failed'
      ORDER BY sortkey DESC, path, filename LIMIT $1`,
    [limit],
  );
  return {
    total: Number(rows[0]?.total ?? 0),
    failures: rows.map((r) => {
      const file = r.path === "" ? r.filename : `${r.path}/${r.filename}`;
      const error = r.error ?? "";
      // A FITS error starts with the file's place (`file: …`, or `file, HDU
      // 1, byte 2880: …` when it knows where in the file); other errors name
      // the file inside (`cannot access file in …`).
      const reason =
        error.startsWith(`${file}: `) || error.startsWith(`${file}, `)
          ? error.slice(file.length + 2)
          : error.replaceAll(file, "the file");
      return {
        id: Number(r.id),
        storage: r.storage,
        path: r.path,
        filename: r.filename,
        file,
        error,
        reason,
        attempts: r.attempts,
        finishedAt: r.finished_at?.toISOString() ?? null,
      };
    }),
  };
}

/** Diskfiles that no ledger row wrote: a database --fast-rebuild must not touch. */
export async function foreignDiskfiles(client: AnyClient): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM diskfile d
      WHERE NOT EXISTS (SELECT 1 FROM fitsfleet.ingest_ledger l WHERE l.diskfile_id = d.id)`,
  );
  return Number(rows[0]?.n ?? 0);
}

/** The storage location each of these diskfiles was ingested from, where a ledger row says. */
export async function storageOfDiskfiles(
  client: AnyClient,
  diskfileIds: number[],
): Promise<Map<number, string>> {
  const { rows } = await client.query<{ diskfile_id: number; storage: string }>(
    `SELECT diskfile_id, storage FROM fitsfleet.ingest_ledger
      WHERE diskfile_id = ANY($1::int[])`,
    [diskfileIds],
  );
  return new Map(rows.map((r) => [r.diskfile_id, r.storage]));
}

/** Empties the ledger (the demo, before it runs again). */
export async function resetLedger(client: AnyClient): Promise<void> {
  await client.query("TRUNCATE fitsfleet.ingest_ledger");
}
