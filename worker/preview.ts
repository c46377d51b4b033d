/**
 * The preview worker process: works through the archive's `previewqueue`
 * (filled by `worker ingest --make-previews` when an inline preview failed,
 * by ingest without a renderer, or by operators), as the reference's
 * service_preview_queue does, with its flags meaning something: --lockfile is
 * a real lock, --empty exits when nothing is left, --concurrency batches run
 * at once, and SIGINT/SIGTERM finish the batches in hand.
 *
 * A batch is claimed with row locks (FOR UPDATE SKIP LOCKED) inside one
 * transaction that also writes its results: the preview rows, the queue rows
 * deleted, failures recorded with their reasons. A worker that dies holds
 * nothing: its transaction rolls back and the rows are claimable again, and
 * any JPEG it already stored is kept by the next attempt, not redone.
 * Rendering runs on worker threads (lib/preview/render-thread.ts).
 */
import pg from "pg";

import { withClient } from "../lib/db/connect.js";
import type { Logger } from "../lib/logger.js";
import type { PreviewPoolOptions } from "../lib/preview/render-thread.js";
import {
  newPreviewPool,
  previewers,
  type PreviewResult,
  recordPreviews,
} from "../lib/preview/store.js";
import { isPermanent } from "../lib/rebuild/ingest.js";
import { StorageSet } from "../lib/storage/index.js";
import { takeLock } from "../lib/worker-lock.js";

export interface PreviewWorkerOptions {
  name: string;
  databaseUrl: string;
  /** The archive's storage, for queue rows whose file no rebuild ledger names. */
  storage?: string;
  /** --previews: where previews go; default previews/ under each file's storage. */
  previews?: string;
  concurrency: number;
  /** Queue rows per batch (one transaction). */
  batchSize?: number;
  empty: boolean;
  lockDir?: string;
  s3Endpoint?: string;
  /** Rendering: size, quality, threads. */
  render?: PreviewPoolOptions;
  /** Where files from S3 are staged for rendering. */
  stagingDir?: string;
  logger: Logger;
  signal?: AbortSignal;
  /** How long an empty queue is left before looking again (the reference: 5 s). */
  idleMs?: number;
}

export type PreviewOutcomeKind = PreviewResult["kind"] | "failed";

export interface PreviewWorkerSummary {
  name: string;
  batches: number;
  files: number;
  outcomes: Record<PreviewOutcomeKind, number>;
  seconds: number;
}

const NOT_FAILED = "9999-12-31 23:59:59.999999";
const DEFAULT_BATCH = 8;

interface QueueRow {
  id: number;
  diskfile_id: number;
  force: boolean | null;
  scavengeonly: boolean | null;
  path: string;
  filename: string;
  storage: string | null;
}

export async function runPreviewWorker(
  options: PreviewWorkerOptions,
): Promise<PreviewWorkerSummary> {
  const started = Date.now();
  const release =
    options.lockDir === undefined
      ? () => undefined
      : takeLock(options.lockDir, "preview", options.name);
  const db = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.concurrency,
    application_name: `fitsfleet worker preview ${options.name}`,
  });
  db.on("error", () => undefined);
  const pool = await newPreviewPool(options.render);
  const storages = new StorageSet({ s3Endpoint: options.s3Endpoint });
  const previewerFor = previewers(storages, pool, options);
  const summary: PreviewWorkerSummary = {
    name: options.name,
    batches: 0,
    files: 0,
    outcomes: { made: 0, kept: 0, missing: 0, none: 0, failed: 0 },
    seconds: 0,
  };
  const stopped = () => options.signal?.aborted === true;

  async function oneBatch(client: pg.PoolClient): Promise<number> {
    await client.query("BEGIN");
    try {
      const { rows } = await client.query<QueueRow>(
        `SELECT q.id, q.diskfile_id, q.force, q.scavengeonly, d.path, d.filename, l.storage
           FROM previewqueue q
           JOIN diskfile d ON d.id = q.diskfile_id
           LEFT JOIN fitsfleet.ingest_ledger l ON l.diskfile_id = d.id
          WHERE NOT coalesce(q.inprogress, false) AND q.fail_dt = $1
          ORDER BY q.sortkey DESC NULLS LAST, q.id
          LIMIT $2
          FOR UPDATE OF q SKIP LOCKED`,
        [NOT_FAILED, options.batchSize ?? DEFAULT_BATCH],
      );
      const done: { diskfileId: number; result: PreviewResult }[] = [];
      const failed: { id: number; error: string }[] = [];
      await Promise.all(
        rows.map(async (row) => {
          const location = row.storage ?? options.storage;
          if (location === undefined) {
            failed.push({
              id: row.id,
              error: `no storage is known for ${row.path}/${row.filename}: give --storage`,
            });
            return;
          }
          try {
            const result = await previewerFor(location).make({
              storage: storages.get(location),
              path: row.path,
              filename: row.filename,
              force: row.force === true,
              scavengeOnly: row.scavengeonly === true,
            });
            done.push({ diskfileId: row.diskfile_id, result });
            if (result.kind === "none") {
              options.logger.info("no preview", {
                file: `${row.path}/${row.filename}`,
                reason: result.reason,
              });
            }
          } catch (error) {
            if (!isPermanent(error)) {
              throw error;
            }
            failed.push({ id: row.id, error: (error as Error).message });
            options.logger.warn("preview failed", {
              file: `${row.path}/${row.filename}`,
              error: (error as Error).message,
            });
          }
        }),
      );
      await recordPreviews(client, done);
      const doneIds = rows
        .filter((r) => !failed.some((f) => f.id === r.id))
        .map((r) => r.id);
      await client.query("DELETE FROM previewqueue WHERE id = ANY($1::int[])", [
        doneIds,
      ]);
      if (failed.length > 0) {
        await client.query(
          `UPDATE previewqueue AS q SET fail_dt = now(), inprogress = false, error = f.error
             FROM unnest($1::int[], $2::text[]) AS f(id, error)
            WHERE q.id = f.id`,
          [failed.map((f) => f.id), failed.map((f) => f.error)],
        );
      }
      await client.query("COMMIT");
      // Counted once committed: a batch that rolls back is done again.
      for (const { result } of done) {
        summary.outcomes[result.kind]++;
      }
      summary.outcomes.failed += failed.length;
      summary.files += rows.length;
      if (rows.length > 0) {
        summary.batches++;
      }
      return rows.length;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
  }

  async function loop(): Promise<void> {
    let backoff = 1000;
    while (!stopped()) {
      let claimed: number;
      try {
        const client = await db.connect();
        try {
          claimed = await oneBatch(client);
        } finally {
          client.release();
        }
        backoff = 1000;
      } catch (error) {
        // A database or storage fault: the batch rolled back; try again later.
        options.logger.warn("preview batch will be retried", {
          worker: options.name,
          error: (error as Error).message,
        });
        await sleep(backoff, options.signal);
        backoff = Math.min(backoff * 2, 60_000);
        continue;
      }
      if (claimed === 0) {
        if (options.empty) {
          return;
        }
        await sleep(options.idleMs ?? 5000, options.signal);
      }
    }
  }

  try {
    // Fail early and clearly on a wrong URL, before any thread starts.
    await withClient(options.databaseUrl, (c) => c.query("SELECT 1"));
    await Promise.all(
      Array.from({ length: options.concurrency }, () => loop()),
    );
    return { ...summary, seconds: (Date.now() - started) / 1000 };
  } finally {
    await pool.close().catch(() => undefined);
    await storages.closeAll();
    await db.end().catch(() => undefined);
    release();
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
