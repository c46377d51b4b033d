/**
 * Reading and repairing a rebuild through its ledger: status and rates,
 * failures, re-queuing failed files, and re-creating the queue from the
 * ledger after Redis lost it.
 */
import type { PgClient } from "../db/connect.js";
import { addBatches, ingestQueue, redisConnection } from "./queue.js";

export const LEDGER_STATES = [
  "queued",
  "active",
  "done",
  "failed",
  "skipped",
] as const;
export type LedgerState = (typeof LEDGER_STATES)[number];

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
  /** Seconds until queued and active files are done at that rate; null when unknown. */
  etaSeconds: number | null;
  /** Of the done files: new, new version, unchanged. */
  outcomes: Record<string, number>;
  /** Deliveries beyond the first: interruptions and replays, which are not failures. */
  redeliveries: number;
  workers: WorkerActivity[];
}

export async function rebuildStatus(
  client: PgClient,
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
  const { rows: recent } = await client.query<{
    n: string;
    first: Date | null;
    redeliveries: string;
  }>(
    `SELECT count(*) FILTER (WHERE finished_at > now() - make_interval(mins => $1)) AS n,
            min(finished_at) FILTER (WHERE finished_at > now() - make_interval(mins => $1)) AS first,
            coalesce(sum(greatest(attempts - 1, 0)), 0) AS redeliveries
       FROM fitsfleet.ingest_ledger`,
    [windowMinutes],
  );
  const finished = Number(recent[0]?.n ?? 0);
  // Over the window, or since the first file finished when the run is younger than that.
  const first = recent[0]?.first;
  const seconds =
    first === null || first === undefined
      ? windowMinutes * 60
      : Math.min(
          windowMinutes * 60,
          Math.max(1, (Date.now() - first.getTime()) / 1000),
        );
  const filesPerSecond = finished / seconds;
  const remaining = counts.queued + counts.active;
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
            count(*) FILTER (WHERE finished_at > now() - make_interval(mins => $1)) AS recent,
            max(finished_at) AS last
       FROM fitsfleet.ingest_ledger
      WHERE worker IS NOT NULL
        AND (state = 'active' OR finished_at > now() - make_interval(mins => $1))
      GROUP BY worker ORDER BY worker`,
    [windowMinutes],
  );
  return {
    counts,
    total: Object.values(counts).reduce((a, b) => a + b, 0),
    filesPerSecond,
    windowMinutes,
    etaSeconds:
      remaining === 0
        ? 0
        : filesPerSecond > 0
          ? remaining / filesPerSecond
          : null,
    outcomes: Object.fromEntries(outcomes.map((r) => [r.outcome, Number(r.n)])),
    redeliveries: Number(recent[0]?.redeliveries ?? 0),
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
  error: string;
  attempts: number;
  finishedAt: string | null;
}

export async function listFailures(
  client: PgClient,
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
    failures: rows.map((r) => ({
      id: Number(r.id),
      storage: r.storage,
      path: r.path,
      filename: r.filename,
      error: r.error ?? "",
      attempts: r.attempts,
      finishedAt: r.finished_at?.toISOString() ?? null,
    })),
  };
}

/** Puts ledger rows back to queued and queues their work; returns files and jobs. */
async function requeue(
  client: PgClient,
  redisUrl: string,
  queueName: string,
  where: string,
): Promise<{ files: number; jobs: number }> {
  const { rows } = await client.query<{ id: string }>(
    `WITH moved AS (
       UPDATE fitsfleet.ingest_ledger SET state = 'queued', queued_at = now()
        WHERE ${where} RETURNING id, sortkey)
     SELECT id::text FROM moved ORDER BY sortkey DESC, id`,
  );
  if (rows.length === 0) {
    return { files: 0, jobs: 0 };
  }
  const connection = redisConnection(redisUrl);
  const queue = ingestQueue(connection, queueName);
  try {
    const jobs = await addBatches(
      queue,
      rows.map((r) => Number(r.id)),
    );
    return { files: rows.length, jobs };
  } finally {
    await queue.close().catch(() => undefined);
    connection.disconnect();
  }
}

/** `rebuild retry-failed`: failed files go back to the queue (their error stays until they succeed). */
export function retryFailed(
  client: PgClient,
  redisUrl: string,
  queueName: string,
): Promise<{ files: number; jobs: number }> {
  return requeue(client, redisUrl, queueName, "state = 'failed'");
}

/**
 * `rebuild reconcile`: after Redis lost the queue, every file not finished
 * (queued, or active for a worker whose job went with it) is queued again. A
 * file that is in fact still being worked on is harmless to queue twice: its
 * second delivery finds the work done.
 */
export function reconcile(
  client: PgClient,
  redisUrl: string,
  queueName: string,
): Promise<{ files: number; jobs: number }> {
  return requeue(client, redisUrl, queueName, "state IN ('queued', 'active')");
}
