/**
 * `rebuild enqueue`: every ingestable file in storage (or the named ones)
 * becomes a ledger row in PostgreSQL, then batches of ledger ids become jobs
 * in Redis, newest files first. The ledger write is one transaction; a file
 * already queued or running is left alone, and a file ingested before is
 * queued again only when forced, when it failed, or when its listed size or
 * time differs from what was ingested (lib/rebuild/ledger.ts).
 */
import { createReadStream } from "node:fs";
import { posix } from "node:path";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

import { from as copyFrom } from "pg-copy-streams";

import { connect, withTransaction } from "../db/connect.js";
import { ExternalServiceError, UsageError } from "../errors.js";
import type { Storage, StorageEntry } from "../storage/index.js";
import { insertLedgerRows, reconcile } from "./ledger.js";
import { fileRegex, isIngestable, sortKey } from "./names.js";
import {
  addBatches,
  batchSizeFor,
  describeRedisError,
  ingestQueue,
  openRedis,
} from "./queue.js";

/**
 * Workers a default batch size plans for: a small archive is cut into
 * enough batches that this many workers all get some.
 */
const DEFAULT_WORKERS_HINT = 16;

export interface EnqueueOptions {
  databaseUrl: string;
  redisUrl: string;
  queue: string;
  storage: Storage;
  /** How workers reach the storage (a directory or s3://bucket/prefix); recorded in each ledger row. */
  storageLocation: string;
  /** Directory under the storage root to start from. */
  path?: string;
  recursive?: boolean;
  fileRe?: string;
  filename?: string;
  listfile?: string;
  /** Only files modified in the last N days. */
  newfiles?: number;
  /** Not to be ingested before this time. */
  after?: Date;
  force?: boolean;
  forceMd5?: boolean;
  dryRun?: boolean;
  /** Files per job; default: 200, or fewer for a small archive (batchSizeFor). */
  batchSize?: number;
  /** How long to wait for Redis before giving up (default 30 s). */
  redisTimeoutMs?: number;
  onProgress?: (listed: number, matched: number) => void;
}

export interface EnqueueReport {
  storage: string;
  listed: number;
  /** Ingestable names that passed the filters. */
  matched: number;
  /** New ledger rows. */
  queued: number;
  /** Rows ingested or failed before, queued again. */
  requeued: number;
  /** Already queued or running, or ingested and unchanged: left alone. */
  unchanged: number;
  /** Files an interrupted enqueue left in the ledger without work in the queue, queued now. */
  orphans: number;
  jobs: number;
  dryRun: boolean;
  seconds: number;
}

interface Candidate {
  path: string;
  name: string;
  size?: number;
  lastModified?: Date;
}

function copyText(value: string | number | Date | boolean | undefined): string {
  if (value === undefined) {
    return "\\N";
  }
  const text = value instanceof Date ? value.toISOString() : String(value);
  return text.replace(/[\\\t\n\r]/g, (c) =>
    c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
  );
}

function splitPath(relative: string, base: string): Candidate {
  const joined = posix
    .normalize(posix.join(base, relative))
    .replace(/^\/+|\/+$/g, "");
  if (joined.startsWith("..")) {
    throw new UsageError(`${relative}: outside the storage root`);
  }
  const dir = posix.dirname(joined);
  return { path: dir === "." ? "" : dir, name: posix.basename(joined) };
}

/** Candidates from --filename, --listfile, or a storage listing, in pages. */
async function* candidates(
  options: EnqueueOptions,
  counter: { listed: number },
): AsyncGenerator<Candidate[]> {
  const base = (options.path ?? "").replace(/^\/+|\/+$/g, "");
  if (options.filename !== undefined) {
    counter.listed++;
    yield [splitPath(options.filename, base)];
    return;
  }
  if (options.listfile !== undefined) {
    const lines = createInterface({
      input: createReadStream(options.listfile),
      crlfDelay: Infinity,
    });
    let page: Candidate[] = [];
    for await (const raw of lines) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) {
        continue;
      }
      counter.listed++;
      page.push(splitPath(line, base));
      if (page.length >= 10_000) {
        yield page;
        page = [];
      }
    }
    yield page;
    return;
  }
  for await (const page of options.storage.list({
    path: base,
    recursive: options.recursive ?? true,
  })) {
    counter.listed += page.length;
    yield page.map((e: StorageEntry) => ({
      path: e.path,
      name: e.name,
      size: e.size,
      lastModified: e.lastModified,
    }));
  }
}

export async function enqueue(options: EnqueueOptions): Promise<EnqueueReport> {
  const started = Date.now();
  const pattern =
    options.fileRe === undefined ? undefined : fileRegex(options.fileRe);
  const newerThan =
    options.newfiles === undefined
      ? undefined
      : Date.now() - options.newfiles * 86_400_000;
  // Redis first: an unreachable queue is found before anything is written.
  const redis =
    options.dryRun === true
      ? undefined
      : await openRedis(options.redisUrl, {
          timeoutMs: options.redisTimeoutMs,
        });
  const client = await connect(options.databaseUrl, {
    applicationName: "fitsfleet rebuild enqueue",
  }).catch((error: unknown) => {
    redis?.disconnect();
    throw error;
  });
  const counter = { listed: 0 };
  let matched = 0;
  try {
    // The listing (an hour on a large bucket) streams into a session's
    // temporary table outside any transaction; only the ledger write is one.
    await client.query(
      `CREATE TEMPORARY TABLE enqueue_candidates (
         path text NOT NULL, filename text NOT NULL, sortkey text NOT NULL,
         size bigint, lastmod timestamptz)`,
    );
    for await (const page of candidates(options, counter)) {
      const lines: string[] = [];
      for (const c of page) {
        if (
          !isIngestable(c.name) ||
          (pattern !== undefined && !pattern.test(c.name))
        ) {
          continue;
        }
        let { size, lastModified } = c;
        if (newerThan !== undefined) {
          if (lastModified === undefined) {
            const stat = await options.storage.stat(c.path, c.name);
            if (stat === undefined) {
              continue;
            }
            ({ size, lastModified } = stat);
          }
          if (
            lastModified === undefined ||
            lastModified.getTime() < newerThan
          ) {
            continue;
          }
        }
        matched++;
        lines.push(
          [c.path, c.name, sortKey(c.name), size, lastModified]
            .map(copyText)
            .join("\t"),
        );
      }
      if (lines.length > 0) {
        await pipeline(
          Readable.from([`${lines.join("\n")}\n`]),
          client.query(copyFrom("COPY enqueue_candidates FROM STDIN")),
        );
      }
      options.onProgress?.(counter.listed, matched);
    }
    const insert = () =>
      insertLedgerRows(client, "enqueue_candidates", {
        storage: options.storageLocation,
        force: options.force === true,
        forceMd5: options.forceMd5 === true,
        notBefore: options.after ?? null,
      });
    if (options.dryRun === true) {
      await client.query("BEGIN");
      try {
        const { ids, inserted } = await insert();
        return report(ids.length, inserted, 0, 0);
      } finally {
        await client.query("ROLLBACK");
      }
    }
    const queue = ingestQueue(redis!, options.queue);
    queue.on("error", () => undefined);
    // Redis failing here leaves the ledger as the truth: say so, and how it heals.
    const onRedis = async <T>(step: () => Promise<T>, written: boolean) => {
      try {
        return await step();
      } catch (error) {
        throw new ExternalServiceError(
          "redis",
          `${written ? "the files are in the ledger, but their work could not be queued" : "cannot read the queue"}: ${describeRedisError(error, options.redisUrl).message}`,
          {
            cause: error,
            suggestion:
              "run the same enqueue again when Redis is reachable (or let a worker find them): files in the ledger without work in the queue are queued again",
          },
        );
      }
    };
    try {
      // Files an interrupted enqueue wrote to the ledger but never queued:
      // with nothing in the queue, nothing else would deliver them.
      const counts = await onRedis(
        () => queue.getJobCounts("wait", "delayed", "prioritized", "active"),
        false,
      );
      const orphans = Object.values(counts).every((n) => n === 0)
        ? (await reconcile(client, queue)).files
        : 0;
      const { ids, inserted } = await withTransaction(client, insert);
      const jobs = await onRedis(
        () =>
          addBatches(queue, ids, {
            batchSize:
              options.batchSize ??
              batchSizeFor(ids.length, DEFAULT_WORKERS_HINT),
            delayMs:
              options.after === undefined
                ? undefined
                : options.after.getTime() - Date.now(),
          }),
        true,
      );
      return report(ids.length, inserted, jobs, orphans);
    } finally {
      await queue.close().catch(() => undefined);
    }

    function report(
      rows: number,
      queued: number,
      jobs: number,
      orphans: number,
    ): EnqueueReport {
      return {
        storage: options.storage.description,
        listed: counter.listed,
        matched,
        queued,
        requeued: rows - queued,
        unchanged: matched - rows,
        orphans,
        jobs,
        dryRun: options.dryRun === true,
        seconds: (Date.now() - started) / 1000,
      };
    }
  } finally {
    await client.end().catch(() => undefined);
    redis?.disconnect();
  }
}
