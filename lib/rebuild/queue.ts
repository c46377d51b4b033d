/**
 * The ingest work queue on Redis (BullMQ). It is transport only: each job
 * names a batch of ledger rows as id ranges (ids are assigned in sort-key
 * order, so a batch is usually one range and a job costs a few bytes per
 * file). Everything about a file, its storage included, is in the ledger.
 */
import { Queue } from "bullmq";
import { Redis } from "ioredis";

export const DEFAULT_INGEST_QUEUE = "fitsfleet-ingest";

/** Files per job: large enough that Redis holds little per file, small enough that a lost batch is cheap to redo. */
export const DEFAULT_BATCH_SIZE = 200;

export interface IngestJobData {
  /** Inclusive ranges of ledger ids. */
  ranges: [number, number][];
}

/** Compresses sorted ids into inclusive ranges. */
export function idRanges(ids: readonly number[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const id of ids) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && id === last[1] + 1) {
      last[1] = id;
    } else {
      ranges.push([id, id]);
    }
  }
  return ranges;
}

export function rangeIds(ranges: readonly [number, number][]): number[] {
  const ids: number[] = [];
  for (const [first, last] of ranges) {
    for (let id = first; id <= last; id++) {
      ids.push(id);
    }
  }
  return ids;
}

/** BullMQ needs `maxRetriesPerRequest: null` on the connections its workers block on. */
export function redisConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
}

export function ingestQueue(
  connection: Redis,
  name: string,
): Queue<IngestJobData> {
  return new Queue<IngestJobData>(name, {
    connection,
    defaultJobOptions: {
      // Transient faults (a database or storage hiccup) retry with backoff;
      // files that cannot be ingested are failures in the ledger, not job failures.
      attempts: 25,
      backoff: { type: "exponential", delay: 1000 },
      removeOnComplete: true,
      removeOnFail: 1000,
    },
  });
}

/** Adds one job per batch of ids (already in priority order), in bulk. */
export async function addBatches(
  queue: Queue<IngestJobData>,
  ids: readonly number[],
  options: { batchSize?: number; delayMs?: number } = {},
): Promise<number> {
  const size = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const jobs = [];
  for (let i = 0; i < ids.length; i += size) {
    jobs.push({
      name: "ingest",
      data: { ranges: idRanges(ids.slice(i, i + size)) },
      ...(options.delayMs !== undefined && options.delayMs > 0
        ? { opts: { delay: options.delayMs } }
        : {}),
    });
  }
  for (let i = 0; i < jobs.length; i += 1000) {
    await queue.addBulk(jobs.slice(i, i + 1000));
  }
  return jobs.length;
}
