/**
 * `rebuild enqueue`: every ingestable file in storage (or the named ones)
 * becomes a ledger row in PostgreSQL, then batches of ledger ids become jobs
 * in Redis, newest files first. The ledger write is one transaction; a file
 * already queued or running is left alone, and a file ingested before is
 * queued again only when forced, when it failed, or when its listed size or
 * time changed.
 */
import { createReadStream } from "node:fs";
import { posix } from "node:path";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

import { from as copyFrom } from "pg-copy-streams";

import { connect } from "../db/connect.js";
import { ExternalServiceError, UsageError } from "../errors.js";
import type { Storage, StorageEntry } from "../storage/index.js";
import { fileRegex, isIngestable, sortKey } from "./names.js";
import { addBatches, ingestQueue, redisConnection } from "./queue.js";

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
  batchSize?: number;
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
  const client = await connect(options.databaseUrl, {
    applicationName: "fitsfleet rebuild enqueue",
  });
  const counter = { listed: 0 };
  let matched = 0;
  try {
    await client.query("BEGIN");
    await client.query(
      `CREATE TEMPORARY TABLE enqueue_candidates (
         path text NOT NULL, filename text NOT NULL, sortkey text NOT NULL,
         size bigint, lastmod timestamptz) ON COMMIT DROP`,
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
    // Duplicates within one listing (a listfile naming a file twice) count once.
    // Inserting in sort-key order gives ledger ids in that order, so a batch of
    // files is mostly one id range.
    const { rows } = await client.query<{
      id: string;
      sortkey: string;
      inserted: boolean;
    }>(
      `INSERT INTO fitsfleet.ingest_ledger AS l
              (storage, path, filename, sortkey, size, lastmod, force, force_md5, not_before)
       SELECT $4, path, filename, sortkey, size, lastmod, $1, $2, $3
         FROM (SELECT DISTINCT ON (path, filename) *
                 FROM enqueue_candidates ORDER BY path, filename) AS c
        ORDER BY sortkey DESC, path, filename
       ON CONFLICT (path, filename) DO UPDATE
          SET state = 'queued', storage = EXCLUDED.storage, force = EXCLUDED.force, force_md5 = EXCLUDED.force_md5,
              not_before = EXCLUDED.not_before, size = coalesce(EXCLUDED.size, l.size),
              lastmod = coalesce(EXCLUDED.lastmod, l.lastmod), error = NULL,
              outcome = NULL, queued_at = now()
        WHERE l.state IN ('done', 'failed', 'skipped')
          AND (EXCLUDED.force OR EXCLUDED.force_md5 OR l.state = 'failed'
               OR (EXCLUDED.size IS NOT NULL AND EXCLUDED.size IS DISTINCT FROM l.size)
               OR (EXCLUDED.lastmod IS NOT NULL AND EXCLUDED.lastmod IS DISTINCT FROM l.lastmod))
       RETURNING l.id::text, l.sortkey, (xmax = 0) AS inserted`,
      [
        options.force === true,
        options.forceMd5 === true,
        options.after ?? null,
        options.storageLocation,
      ],
    );
    const queued = rows.filter((r) => r.inserted).length;
    const requeued = rows.length - queued;
    // Newest first: jobs go to the queue in sort-key order (RETURNING is
    // normally in insertion order already; sort only if it is not).
    const inOrder = rows.every(
      (r, i) => i === 0 || rows[i - 1]!.sortkey >= r.sortkey,
    );
    if (!inOrder) {
      rows.sort((a, b) =>
        a.sortkey < b.sortkey ? 1 : a.sortkey > b.sortkey ? -1 : 0,
      );
    }
    const ordered = rows.map((r) => Number(r.id));
    if (options.dryRun === true) {
      await client.query("ROLLBACK");
      return report(0);
    }
    await client.query("COMMIT");
    let jobs = 0;
    if (ordered.length > 0) {
      const connection = redisConnection(options.redisUrl);
      const queue = ingestQueue(connection, options.queue);
      try {
        jobs = await addBatches(queue, ordered, {
          batchSize: options.batchSize,
          delayMs:
            options.after === undefined
              ? undefined
              : options.after.getTime() - Date.now(),
        });
      } catch (error) {
        throw new ExternalServiceError(
          "redis",
          `the ${ordered.length} files are in the ledger, but their work could not be queued: ${(error as Error).message}`,
          {
            cause: error,
            suggestion:
              "when Redis is reachable again, run `fitsfleet rebuild reconcile` to queue them from the ledger",
          },
        );
      } finally {
        await queue.close().catch(() => undefined);
        connection.disconnect();
      }
    }
    return report(jobs);

    function report(jobCount: number): EnqueueReport {
      return {
        storage: options.storage.description,
        listed: counter.listed,
        matched,
        queued,
        requeued,
        unchanged: matched - queued - requeued,
        jobs: jobCount,
        dryRun: options.dryRun === true,
        seconds: (Date.now() - started) / 1000,
      };
    }
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}
