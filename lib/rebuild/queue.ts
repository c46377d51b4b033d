/**
 * The ingest work queue on Redis (BullMQ). It is transport only: each job
 * names a batch of ledger rows as id ranges (ids are assigned in sort-key
 * order, so a batch is usually one range and a job costs a few bytes per
 * file). Everything about a file, its storage included, is in the ledger.
 *
 * The retry policy: a batch that meets a transient fault is retried with
 * backoff doubling from 1 s and capped at 30 s, until `maxRetryMs` has
 * passed since its first failure; then its unfinished files fail with the
 * last error (lib/rebuild/ingest.ts). Time, not a count, bounds it, so a
 * poison batch ends in minutes, never months.
 */
import { Queue } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";

import { ExternalServiceError, InterruptedError } from "../errors.js";
import { redactText, redactUrl } from "../redact.js";
import { DEFAULT_BATCH_SIZE } from "./defaults.js";

export {
  DEFAULT_BATCH_SIZE,
  DEFAULT_INGEST_QUEUE,
  DEFAULT_MAX_RETRY_MS,
} from "./defaults.js";

/** How long a command waits for Redis before it gives up (exit 4). */
export const REDIS_CONNECT_TIMEOUT_MS = 30_000;

const FIRST_RETRY_MS = 1000;
const LONGEST_RETRY_MS = 30_000;

export interface IngestJobData {
  /** Inclusive ranges of ledger ids. */
  ranges: [number, number][];
  /** When a delivery of this batch first failed transiently (ms since the epoch). */
  firstFailedAt?: number;
}

/** The backoff's name in job options; workers map it to `retryDelayMs`. */
export const BACKOFF_TYPE = "fitsfleet-capped";

/**
 * Delay before retry `attempt` (1 for the first): doubling from 1 s,
 * capped, with a fifth of jitter so that a fleet does not retry in step.
 */
export function retryDelayMs(attempt: number, random = Math.random): number {
  const base = Math.min(
    LONGEST_RETRY_MS,
    FIRST_RETRY_MS * 2 ** Math.max(0, attempt - 1),
  );
  return Math.round(base * (0.9 + 0.2 * random()));
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

/** What to tell the operator about a Redis failure, without its secrets. */
export function describeRedisError(
  error: unknown,
  url: string,
): ExternalServiceError {
  const message = (error as Error | undefined)?.message ?? String(error);
  const where = redactUrl(url);
  const denied = /WRONGPASS|NOAUTH|invalid password|invalid username/i.test(
    message,
  );
  const reason = denied
    ? "the password (or user) was refused"
    : /ECONNREFUSED/.test(message)
      ? "connection refused"
      : /ENOTFOUND|EAI_AGAIN/.test(message)
        ? "host not found"
        : /timed out|ETIMEDOUT/i.test(message)
          ? "no answer in time"
          : redactText(message);
  return new ExternalServiceError(
    "redis",
    `cannot use Redis at ${where}: ${reason}`,
    {
      suggestion: denied
        ? "check the password in --redis-url / REDIS_URL"
        : "check that Redis is running and --redis-url / REDIS_URL is right; `fitsfleet stack up` starts a local one",
    },
  );
}

/**
 * A connection to Redis, verified with PING within `timeoutMs`: a wrong
 * password or an unreachable server is an ExternalServiceError (exit 4)
 * that names the redacted URL, never a retry loop or a driver's stack
 * trace with the AUTH command in it. Afterwards ioredis reconnects by
 * itself; errors go to `onError`, so none is printed raw.
 * `maxRetriesPerRequest: null` is what BullMQ needs on connections it
 * blocks on.
 */
export async function openRedis(
  url: string,
  options: {
    timeoutMs?: number;
    onError?: (error: ExternalServiceError) => void;
    /** Gives up waiting (a worker told to stop before it started). */
    signal?: AbortSignal;
  } = {},
): Promise<Redis> {
  const timeoutMs = options.timeoutMs ?? REDIS_CONNECT_TIMEOUT_MS;
  const settings: RedisOptions = {
    maxRetriesPerRequest: null,
    connectTimeout: Math.min(timeoutMs, 10_000),
    retryStrategy: (times) => Math.min(times * 200, 2000),
  };
  const redis = new Redis(url, settings);
  let last: unknown;
  let refused: ((error: unknown) => void) | undefined;
  redis.on("error", (error: Error) => {
    last = error;
    // A refused password is final: ioredis would otherwise go on retrying.
    if (/WRONGPASS|NOAUTH/.test(error.message)) {
      refused?.(error);
    }
    options.onError?.(describeRedisError(error, url));
  });
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      refused = reject;
      redis.once("ready", () => resolve());
      timer = setTimeout(
        () =>
          reject(
            last ??
              new Error(
                `no answer in time (${Math.round(timeoutMs / 1000)} s)`,
              ),
          ),
        timeoutMs,
      );
      onAbort = () => reject(new InterruptedError("a stop"));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.signal?.aborted === true) {
        onAbort();
      }
    });
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    if (error instanceof InterruptedError) {
      throw error;
    }
    throw describeRedisError(error, url);
  } finally {
    refused = undefined;
    clearTimeout(timer);
    if (onAbort !== undefined) {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }
  return redis;
}

export function ingestQueue(
  connection: Redis,
  name: string,
): Queue<IngestJobData> {
  return new Queue<IngestJobData>(name, {
    connection,
    defaultJobOptions: {
      // Time bounds the retries (IngestJobData.firstFailedAt), not this count.
      attempts: 100_000,
      backoff: { type: BACKOFF_TYPE },
      removeOnComplete: true,
      removeOnFail: 1000,
    },
  });
}

/** Opens the queue for `fn` and closes it afterwards. */
export async function withIngestQueue<T>(
  redisUrl: string,
  name: string,
  fn: (queue: Queue<IngestJobData>) => Promise<T>,
  options: { timeoutMs?: number } = {},
): Promise<T> {
  const connection = await openRedis(redisUrl, options);
  const queue = ingestQueue(connection, name);
  queue.on("error", () => undefined);
  try {
    return await fn(queue);
  } finally {
    await queue.close().catch(() => undefined);
    connection.disconnect();
  }
}

/**
 * Files per batch for `files` files and `workers` workers: the default, or
 * smaller so that every worker gets a few batches of a small archive.
 */
export function batchSizeFor(files: number, workers: number): number {
  const perWorker = Math.ceil(files / Math.max(1, workers) / 4);
  return Math.max(1, Math.min(DEFAULT_BATCH_SIZE, perWorker));
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
