/**
 * `fitsfleet summit seed-historic`: a fresh summit database seeded from an
 * archive backup, the reference's hand recipe (DOMAIN.md §3.3, "Historic
 * data on the summit machines") as one command.
 *
 * 1. Restore: the archive's file, diskfile, header, instrument and report
 *    tables are copied into the summit database by `upgrade migrate-tables`'
 *    loader (a dump, an s3:// copy of one, or a live database), which checks
 *    the target empty, streams with COPY, rebuilds indexes and verifies.
 * 2. Truncate preview and calcache: their archive rows are not copied at all
 *    (the same end state as copying and truncating, without the load), and
 *    neither are the archive's work queues. Any rows the target holds are
 *    emptied only under --force.
 * 3. Undo the archive naming, as the reference's five UPDATE statements do:
 *    names without `.bz2`, `compressed = false`, `file_md5 = data_md5`,
 *    `file_size = data_size` (one pass over diskfile, each change counted),
 *    and `X.fits.bz2_preview.jpg` preview names to `X.fits_preview.jpg`.
 * 4. Mark what is not on the summit volume not present: by the storage's
 *    listing (exact, by path and name), by site and year prefixes (the
 *    reference's `filename LIKE 'N2013%'`), both, or everything.
 * 5. With `queuePreviews`, a preview work item for every diskfile left
 *    present, for the preview worker.
 * 6. Enqueue the ingest of the volume's files (`rebuild enqueue`), for the
 *    usual rebuild workers.
 *
 * Steps 1 to 5 are one transaction on the target: a failure, or --dry-run
 * (which rolls it back once every count is known), leaves it as it was. Step
 * 6 runs after the commit (a dry run only counts).
 *
 * What the workers then do (lib/rebuild/ingest.ts, the reference's
 * need_to_add_diskfile): a file on the volume finds its present diskfile by
 * (file name without .bz2, path); on disk its modification time differs from
 * the archive's lastmod, so it is read and its md5 compared with file_md5,
 * which step 3 made the uncompressed data's md5. The same bytes are
 * "unchanged" and get no new diskfile; changed bytes get a new version and
 * the archive's row is superseded. On S3, the object's md5 metadata is
 * compared without reading when it has one.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

import { from as copyFrom } from "pg-copy-streams";

import { connect, type PgClient } from "../db/connect.js";
import { SUMMIT_SEED_LOCK_KEY } from "../db/locks.js";
import { quoteIdent } from "../db/sql.js";
import {
  EXIT,
  FitsfleetError,
  PreconditionError,
  UsageError,
} from "../errors.js";
import type { Logger } from "../logger.js";
import { enqueue, type EnqueueReport } from "../rebuild/enqueue.js";
import { redactUrl } from "../redact.js";
import type { Storage } from "../storage/index.js";
import { EMPTY_MAPPING } from "../upgrade/mapping.js";
import { migrateTables, type TableProgress } from "../upgrade/migrate.js";
import { openSource } from "../upgrade/open-source.js";

/**
 * The archive tables a summit keeps, parents before children: what ingest
 * writes, with the per-file tables the reference keeps beside them. Only
 * those the backup and the target both have are copied.
 */
export const SEEDED_TABLES = [
  "file",
  "diskfile",
  "diskfilereport",
  "fulltextheader",
  "header",
  "gmos",
  "niri",
  "f2",
  "gnirs",
  "gsaoi",
  "gpi",
  "nici",
  "nifs",
  "michelle",
  "ghost",
  "footprint",
  "provenance",
  "history",
  "miscfile",
  "obslog",
] as const;

/** Emptied (step 2), with the work queues that would refer to archive rows. */
export const CLEARED_TABLES = ["preview", "calcache"] as const;
const QUEUE_TABLES = [
  "previewqueue",
  "calcachequeue",
  "ingestqueue",
  "exportqueue",
  "fileopsqueue",
  "reducequeue",
] as const;

export type MarkMode = "listing" | "prefix" | "all";

export interface SeedOptions {
  /** A dump file or directory, an s3:// copy of one, or a postgres:// URL. */
  from: string;
  manifest?: string;
  targetUrl: string;
  /** The summit volume: listed (--mark listing) and enqueued. */
  storage?: Storage;
  storageLocation?: string;
  site?: "N" | "S";
  years?: number[];
  /** How files not on the volume are found; default `listing` with a storage, else `prefix`. */
  mark?: MarkMode;
  /** Queue the volume's files for ingest after the commit (default true with a storage). */
  enqueue?: boolean;
  redisUrl?: string;
  queue?: string;
  /** Queue a preview for every diskfile left present, for the preview worker. */
  queuePreviews?: boolean;
  dryRun?: boolean;
  /** Replace whatever the target's seeded and cleared tables hold. */
  force?: boolean;
  s3Endpoint?: string;
  logger?: Logger;
  onStep?: (step: SeedStep) => void;
  onTable?: (progress: TableProgress) => void;
  onListing?: (listed: number) => void;
}

export interface SeedStep {
  step: "restore" | "truncate" | "rename" | "mark" | "previews" | "enqueue";
  /** What was done (or, in a dry run, would be), for people. */
  summary: string;
  /** The step's main count. */
  count: number;
  details: Record<string, number>;
}

export interface SeedReport {
  source: string;
  target: string;
  dryRun: boolean;
  steps: SeedStep[];
  enqueue: EnqueueReport | null;
  seconds: number;
}

/** Thrown from inside the transaction to roll a dry run back; never escapes seed(). */
class DryRunRollback extends FitsfleetError {
  constructor() {
    super("dry-run", EXIT.ok, "dry run: rolled back");
  }
}

/** `--years 2019,2021-2023` → [2019, 2021, 2022, 2023]. */
export function parseYears(text: string): number[] {
  const years = new Set<number>();
  for (const part of text.split(",").map((s) => s.trim())) {
    const match = /^(\d{4})(?:-(\d{4}))?$/.exec(part);
    if (match === null) {
      throw new UsageError(
        `--years ${JSON.stringify(text)}: give years or ranges, e.g. 2019,2021-2023`,
      );
    }
    const from = Number(match[1]);
    const to = Number(match[2] ?? match[1]);
    if (to < from || to - from > 200) {
      throw new UsageError(
        `--years ${JSON.stringify(part)}: a range runs from an earlier year to a later one`,
      );
    }
    for (let y = from; y <= to; y++) {
      years.add(y);
    }
  }
  return [...years].sort();
}

/** The filename pattern of the files a summit keeps by --site/--years, or undefined for all. */
export function keptPattern(
  site: "N" | "S" | undefined,
  years: number[] | undefined,
): string | undefined {
  if (site === undefined && (years === undefined || years.length === 0)) {
    return undefined;
  }
  const letter = site ?? "[NS]";
  const year =
    years === undefined || years.length === 0 ? "" : `(${years.join("|")})`;
  return `^${letter}${year}`;
}

function checkOptions(options: SeedOptions): MarkMode {
  const mark =
    options.mark ?? (options.storage !== undefined ? "listing" : "prefix");
  if (mark === "listing" && options.storage === undefined) {
    throw new UsageError(
      "--mark listing needs the summit volume: give --storage DIR or --storage s3://bucket/prefix",
    );
  }
  if (
    mark === "prefix" &&
    keptPattern(options.site, options.years) === undefined
  ) {
    throw new UsageError(
      "--mark prefix needs --site N|S and/or --years to say which files the summit volume holds",
      {
        suggestion:
          "or give --storage to mark by the volume's listing, or --mark all",
      },
    );
  }
  if (options.enqueue === true && options.storage === undefined) {
    throw new UsageError("enqueueing the ingest needs --storage");
  }
  if (
    options.enqueue !== false &&
    options.storage !== undefined &&
    options.redisUrl === undefined
  ) {
    throw new UsageError("enqueueing the ingest needs a Redis URL");
  }
  return mark;
}

async function tablesIn(client: PgClient, names: readonly string[]) {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)`,
    [names],
  );
  const present = new Set(rows.map((r) => r.name));
  return names.filter((n) => present.has(n));
}

async function rowCount(client: PgClient, table: string): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM ${quoteIdent(table)}`,
  );
  return Number(rows[0]!.n);
}

export async function seedHistoric(options: SeedOptions): Promise<SeedReport> {
  const started = Date.now();
  const mark = checkOptions(options);
  const steps: SeedStep[] = [];
  const step = (s: SeedStep) => {
    steps.push(s);
    options.onStep?.(s);
  };
  const opened = await openSource(options.from, {
    manifest: options.manifest,
    s3Endpoint: options.s3Endpoint,
    logger: options.logger,
  });
  try {
    const sourceCatalog = await opened.source.catalog();
    if (!sourceCatalog.tables.has("diskfile")) {
      throw new PreconditionError(
        `${opened.source.origin} has no diskfile table: it is not an archive database`,
        {
          suggestion:
            "give a pg_dump of the archive database (custom or directory format), an s3:// copy of one, or its postgres:// URL",
        },
      );
    }
    const probe = await connect(options.targetUrl, {
      applicationName: "fitsfleet summit seed-historic (check)",
    });
    let tables: string[];
    let cleared: string[];
    try {
      tables = (await tablesIn(probe, SEEDED_TABLES)).filter((t) =>
        sourceCatalog.tables.has(t),
      );
      cleared = await tablesIn(probe, [...CLEARED_TABLES, ...QUEUE_TABLES]);
    } finally {
      await probe.end().catch(() => undefined);
    }
    if (!tables.includes("diskfile") || !tables.includes("file")) {
      throw new PreconditionError(
        "the target database has no file and diskfile tables",
        {
          suggestion:
            "create the summit database's schema first: `fitsfleet db init --database-url TARGET`",
        },
      );
    }
    // What step 2 leaves behind: the backup's preview and calcache rows.
    const leftBehind: Record<string, number> = {};
    for (const table of CLEARED_TABLES) {
      leftBehind[table] = sourceCatalog.tables.has(table)
        ? await opened.source.count(table)
        : 0;
    }
    let restored: Record<string, number> = {};
    try {
      await migrateTables({
        source: opened.source,
        targetUrl: options.targetUrl,
        tables,
        mapping: EMPTY_MAPPING,
        truncateTarget: options.force === true,
        onProgress: options.onTable,
        beforeLoad: async (client) => {
          const { rows: lock } = await client.query<{ ok: boolean }>(
            "SELECT pg_try_advisory_xact_lock($1::bigint) AS ok",
            [SUMMIT_SEED_LOCK_KEY],
          );
          if (lock[0]?.ok !== true) {
            throw new PreconditionError(
              "another `summit seed-historic` is running against this database",
              { suggestion: "wait for it to finish, then run again" },
            );
          }
          await clearTables(client, cleared, options.force === true);
        },
        beforeCommit: async (client) => {
          restored = {};
          for (const t of tables) {
            restored[t] = await rowCount(client, t);
          }
          step({
            step: "restore",
            summary: `restored ${tables.length} tables of ${opened.source.origin}`,
            count: restored.diskfile ?? 0,
            details: restored,
          });
          step({
            step: "truncate",
            summary:
              "preview and calcache emptied (the backup's rows are not copied)",
            count: (leftBehind.preview ?? 0) + (leftBehind.calcache ?? 0),
            details: leftBehind,
          });
          step(await undoArchiveNaming(client, cleared.includes("preview")));
          step(await markNotPresent(client, mark, options));
          if (options.queuePreviews === true) {
            step(await queuePreviews(client));
          }
          if (options.dryRun === true) {
            throw new DryRunRollback();
          }
        },
      });
    } catch (error) {
      if (!(error instanceof DryRunRollback)) {
        throw error;
      }
    }
    let enqueued: EnqueueReport | null = null;
    if (options.storage !== undefined && options.enqueue !== false) {
      enqueued = await enqueue({
        databaseUrl: options.targetUrl,
        redisUrl: options.redisUrl!,
        queue: options.queue ?? "ingest",
        storage: options.storage,
        storageLocation: options.storageLocation ?? options.storage.description,
        dryRun: options.dryRun === true,
      });
      step({
        step: "enqueue",
        summary: `${options.dryRun === true ? "would queue" : "queued"} the ingest of the volume's FITS files`,
        count: enqueued.queued + enqueued.requeued,
        details: {
          listed: enqueued.listed,
          matched: enqueued.matched,
          queued: enqueued.queued,
          requeued: enqueued.requeued,
          jobs: enqueued.jobs,
        },
      });
    }
    return {
      source: opened.source.origin,
      target: redactUrl(options.targetUrl),
      dryRun: options.dryRun === true,
      steps,
      enqueue: enqueued,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await opened.cleanup();
  }
}

/** The target's preview, calcache and queues: refused unless empty, emptied under --force. */
async function clearTables(
  client: PgClient,
  tables: string[],
  force: boolean,
): Promise<void> {
  if (tables.length === 0) {
    return;
  }
  await client.query(
    `LOCK TABLE ${tables.map((t) => quoteIdent(t)).join(", ")} IN ACCESS EXCLUSIVE MODE`,
  );
  if (!force) {
    const full: string[] = [];
    for (const t of tables) {
      const { rows } = await client.query(
        `SELECT 1 FROM ${quoteIdent(t)} LIMIT 1`,
      );
      if (rows.length > 0) {
        full.push(t);
      }
    }
    const { rows: ledger } = await client.query(
      "SELECT 1 FROM fitsfleet.ingest_ledger LIMIT 1",
    );
    if (ledger.length > 0) {
      full.push("fitsfleet.ingest_ledger");
    }
    if (full.length > 0) {
      throw new PreconditionError(
        `the target is not a fresh database: ${full.join(", ")} hold rows; nothing was written`,
        {
          suggestion:
            "seed a fresh database made by `fitsfleet db init`, or give --force to replace what it holds",
        },
      );
    }
    return;
  }
  await client.query(`TRUNCATE ${tables.map((t) => quoteIdent(t)).join(", ")}`);
  // A previous seeding's ledger would make the volume's files look ingested already.
  await client.query(
    "DELETE FROM fitsfleet.ingest_ledger WHERE state IN ('done', 'failed', 'skipped')",
  );
}

/** Step 3: the reference's five UPDATEs, the four on diskfile in one pass. */
async function undoArchiveNaming(
  client: PgClient,
  hasPreview: boolean,
): Promise<SeedStep> {
  const { rows } = await client.query<{
    names: string;
    compressed: string;
    md5: string;
    size: string;
  }>(
    `SELECT count(*) FILTER (WHERE filename LIKE '%.bz2')::text AS names,
            count(*) FILTER (WHERE compressed IS DISTINCT FROM false)::text AS compressed,
            count(*) FILTER (WHERE file_md5 IS DISTINCT FROM data_md5)::text AS md5,
            count(*) FILTER (WHERE file_size IS DISTINCT FROM data_size)::text AS size
       FROM diskfile`,
  );
  const counts = rows[0]!;
  const { rowCount } = await client.query(
    `UPDATE diskfile
        SET filename = CASE WHEN filename LIKE '%.bz2' THEN left(filename, -4) ELSE filename END,
            compressed = false, file_md5 = data_md5, file_size = data_size
      WHERE filename LIKE '%.bz2' OR compressed IS DISTINCT FROM false
         OR file_md5 IS DISTINCT FROM data_md5 OR file_size IS DISTINCT FROM data_size`,
  );
  let previews = 0;
  if (hasPreview) {
    // Empty after step 2, but kept: the recipe renames v2 preview names too.
    const renamed = await client.query(
      `UPDATE preview
          SET filename = regexp_replace(filename, '^(.*)\\.bz2_preview\\.jpg$', '\\1_preview.jpg')
        WHERE filename LIKE '%.bz2\\_preview.jpg'`,
    );
    previews = renamed.rowCount ?? 0;
  }
  return {
    step: "rename",
    summary:
      "undid the archive naming: names without .bz2, compressed false, file_md5 = data_md5, file_size = data_size, preview names",
    count: rowCount ?? 0,
    details: {
      diskfiles: rowCount ?? 0,
      filename: Number(counts.names),
      compressed: Number(counts.compressed),
      fileMd5: Number(counts.md5),
      fileSize: Number(counts.size),
      previewNames: previews,
    },
  };
}

/** Step 4: everything not on the summit volume marked not present. */
async function markNotPresent(
  client: PgClient,
  mark: MarkMode,
  options: SeedOptions,
): Promise<SeedStep> {
  const pattern = keptPattern(options.site, options.years);
  const { rows: before } = await client.query<{ n: string }>(
    "SELECT count(*)::text AS n FROM diskfile WHERE present",
  );
  const wasPresent = Number(before[0]!.n);
  let marked = 0;
  let listed = 0;
  if (mark === "all") {
    marked =
      (await client.query("UPDATE diskfile SET present = false WHERE present"))
        .rowCount ?? 0;
  } else if (mark === "prefix") {
    marked =
      (
        await client.query(
          "UPDATE diskfile SET present = false WHERE present AND (filename IS NULL OR filename !~ $1)",
          [pattern],
        )
      ).rowCount ?? 0;
  } else {
    listed = await loadListing(client, options);
    marked =
      (
        await client.query(
          `UPDATE diskfile d SET present = false
            WHERE d.present
              AND (NOT EXISTS (SELECT 1 FROM summit_listing l
                                WHERE l.path = coalesce(d.path, '') AND l.filename = d.filename)
                   OR ($1::text IS NOT NULL AND (d.filename IS NULL OR d.filename !~ $1)))`,
          [pattern ?? null],
        )
      ).rowCount ?? 0;
    await client.query("DROP TABLE summit_listing");
  }
  const how =
    mark === "all"
      ? "every diskfile"
      : mark === "prefix"
        ? `names not matching ${pattern}`
        : `not in the listing of ${options.storage!.description}${pattern === undefined ? "" : ` or not matching ${pattern}`}`;
  return {
    step: "mark",
    summary: `marked not present: ${how}`,
    count: marked,
    details: {
      wasPresent,
      markedNotPresent: marked,
      leftPresent: wasPresent - marked,
      ...(mark === "listing" ? { listed } : {}),
    },
  };
}

/** The volume's files into a temporary table (dropped at commit), by path and name. */
async function loadListing(
  client: PgClient,
  options: SeedOptions,
): Promise<number> {
  await client.query(
    `CREATE TEMPORARY TABLE summit_listing (path text NOT NULL, filename text NOT NULL)
       ON COMMIT DROP`,
  );
  let listed = 0;
  const escape = (s: string) =>
    s.replace(/[\\\t\n\r]/g, (c) =>
      c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
    );
  for await (const page of options.storage!.list()) {
    if (page.length === 0) {
      continue;
    }
    listed += page.length;
    const text = page
      .map((e) => `${escape(e.path)}\t${escape(e.name)}\n`)
      .join("");
    await pipeline(
      Readable.from([text]),
      client.query(copyFrom("COPY summit_listing FROM STDIN")),
    );
    options.onListing?.(listed);
  }
  await client.query("ANALYZE summit_listing");
  return listed;
}

/** Optional: a preview work item for every present diskfile, the preview worker's to render. */
async function queuePreviews(client: PgClient): Promise<SeedStep> {
  const { rowCount } = await client.query(
    `INSERT INTO previewqueue (diskfile_id, filename, inprogress, fail_dt, force, scavengeonly, sortkey)
     SELECT id, filename, false, '9999-12-31 23:59:59.999999', false, false, filename
       FROM diskfile WHERE present AND canonical`,
  );
  return {
    step: "previews",
    summary: "queued a preview for every present diskfile",
    count: rowCount ?? 0,
    details: { queued: rowCount ?? 0 },
  };
}
