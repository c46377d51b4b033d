/**
 * The preview worker process: works through the archive's `previewqueue`
 * (filled by `worker ingest --make-previews` when an inline preview failed,
 * by ingest without a renderer, or by operators), as the reference's
 * service_preview_queue does, with its flags meaning something: --lockfile is
 * a real lock, --empty exits when nothing is left, --concurrency batches run
 * at once, and SIGINT/SIGTERM finish the batches in hand.
 *
 * A batch is taken under a claim with a lease and committed at once
 * (lib/archive-writer.ts), rendered with no database connection held, and
 * recorded in one transaction that touches only the items the claim still
 * holds: the preview rows, the queue rows deleted, failures kept with their
 * reasons. A worker that dies leaves its items to be taken again when the
 * lease runs out; any JPEG it already stored is kept by the next attempt,
 * not redone. Transient faults are retried with capped backoff for at most
 * --max-retry-time in a row. Rendering runs on worker threads
 * (lib/preview/render-thread.ts).
 */
import { randomUUID } from "node:crypto";

import {
  finishPreviewWork,
  renewPreviewClaim,
  returnPreviewWork,
  takePreviewWork,
} from "../lib/archive-writer.js";
import { isTransient } from "../lib/errors.js";
import { sleep } from "../lib/exec.js";
import type { PreviewPoolOptions } from "../lib/preview/render-thread.js";
import { previewers, type PreviewResult } from "../lib/preview/store.js";
import { storageOfDiskfiles } from "../lib/rebuild/ledger.js";
import { DEFAULT_MAX_RETRY_MS, retryDelayMs } from "../lib/rebuild/queue.js";
import { type WorkerBaseOptions, WorkerRuntime } from "./runtime.js";
import { waitForDatabase } from "./wait.js";

export interface PreviewWorkerOptions extends WorkerBaseOptions {
  /** The archive's storage, for queue rows whose file no rebuild ledger names. */
  storage?: string;
  /** --previews: where previews go; default previews/ under each file's storage. */
  previews?: string;
  /** Queue rows per batch (one transaction). */
  batchSize?: number;
  s3Endpoint?: string;
  /** Rendering: size, quality, threads. */
  render?: PreviewPoolOptions;
  /** Where files from S3 are staged for rendering. */
  stagingDir?: string;
  /** How long an empty queue is left before looking again (the reference: 5 s). */
  idleMs?: number;
  /** Transient faults in a row are retried for this long, then the worker exits (default 15 min). */
  maxRetryMs?: number;
  /** A claim not renewed for this long is taken over (default 60 s). */
  leaseSeconds?: number;
}

export type PreviewOutcomeKind = PreviewResult["kind"] | "failed";

export interface PreviewWorkerSummary {
  name: string;
  batches: number;
  files: number;
  outcomes: Record<PreviewOutcomeKind, number>;
  seconds: number;
}

const DEFAULT_BATCH = 8;
const DEFAULT_LEASE_SECONDS = 60;

export async function runPreviewWorker(
  options: PreviewWorkerOptions,
): Promise<PreviewWorkerSummary> {
  const rt = await WorkerRuntime.start({
    kind: "preview",
    name: options.name,
    databaseUrl: options.databaseUrl,
    concurrency: options.concurrency,
    lockDir: options.lockDir,
    s3Endpoint: options.s3Endpoint,
    render: options.render ?? {},
    logger: options.logger,
    stop: options.signal,
    abandon: options.abandon,
    shutdownMs: options.shutdownMs,
    spotWatch: options.spotWatch,
  });
  const previewerFor = previewers(rt.storages, rt.previewPool!, options);
  const leaseSeconds = options.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  const maxRetryMs = options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS;
  const summary: PreviewWorkerSummary = {
    name: options.name,
    batches: 0,
    files: 0,
    outcomes: { made: 0, kept: 0, missing: 0, none: 0, failed: 0 },
    seconds: 0,
  };

  async function oneBatch(): Promise<number> {
    const claim = randomUUID();
    const rows = await rt.db.withClient((c) =>
      takePreviewWork(
        c,
        claim,
        options.batchSize ?? DEFAULT_BATCH,
        leaseSeconds,
      ),
    );
    if (rows.length === 0) {
      return 0;
    }
    const renewal = setInterval(
      () =>
        void rt.db
          .withClient((c) => renewPreviewClaim(c, claim, leaseSeconds))
          .catch(() => undefined),
      (leaseSeconds * 1000) / 3,
    );
    renewal.unref();
    try {
      const storages = await rt.db.withClient((c) =>
        storageOfDiskfiles(
          c,
          rows.map((r) => r.diskfileId),
        ),
      );
      const done: { id: number; diskfileId: number; result: PreviewResult }[] =
        [];
      const failed: { id: number; error: string }[] = [];
      await Promise.all(
        rows.map(async (row) => {
          const location = storages.get(row.diskfileId) ?? options.storage;
          if (location === undefined) {
            failed.push({
              id: row.id,
              error: `no storage is known for ${row.path}/${row.filename}: give --storage`,
            });
            return;
          }
          try {
            const result = await previewerFor(location).make({
              storage: rt.storages.get(location),
              path: row.path,
              filename: row.filename,
              force: row.force,
              scavengeOnly: row.scavengeOnly,
            });
            done.push({ id: row.id, diskfileId: row.diskfileId, result });
            if (result.kind === "none") {
              options.logger.info("no preview", {
                file: `${row.path}/${row.filename}`,
                reason: result.reason,
              });
            }
          } catch (error) {
            if (isTransient(error)) {
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
      if (rt.abandoning.aborted) {
        await rt.db.withClient((c) => returnPreviewWork(c, claim));
        return rows.length;
      }
      const recorded = await rt.db.transaction((c) =>
        finishPreviewWork(c, claim, done, failed),
      );
      // Counted once committed, and only what this claim still held.
      for (const { id, result } of done) {
        if (recorded.has(id)) {
          summary.outcomes[result.kind]++;
        }
      }
      summary.outcomes.failed += failed.filter((f) =>
        recorded.has(f.id),
      ).length;
      summary.files += recorded.size;
      summary.batches++;
      return rows.length;
    } catch (error) {
      await rt.db
        .withClient((c) => returnPreviewWork(c, claim))
        .catch(() => undefined); // else its lease runs out
      throw error;
    } finally {
      clearInterval(renewal);
    }
  }

  async function loop(): Promise<void> {
    let failingSince: number | undefined;
    let attempt = 0;
    while (!rt.stopping.aborted) {
      let taken: number;
      try {
        taken = await oneBatch();
        failingSince = undefined;
        attempt = 0;
      } catch (error) {
        failingSince ??= Date.now();
        if (!isTransient(error) || Date.now() - failingSince >= maxRetryMs) {
          throw error;
        }
        options.logger.warn("preview batch will be retried", {
          worker: options.name,
          error: (error as Error).message,
        });
        await sleep(retryDelayMs(++attempt), rt.stopping);
        continue;
      }
      if (taken === 0) {
        if (options.empty) {
          return;
        }
        await sleep(options.idleMs ?? 5000, rt.stopping);
      }
    }
  }

  try {
    await waitForDatabase(rt, maxRetryMs);
    await Promise.all(
      Array.from({ length: options.concurrency }, () => loop()),
    );
    return { ...summary, seconds: rt.seconds() };
  } finally {
    await rt.close();
  }
}
