/**
 * Ingesting a batch of ledger rows (DOMAIN.md §2.3, the reference's
 * `Ingester.ingest_file`), with the ledger as the record of what happened.
 *
 * Per file: the existence check; the reference's rules for whether a new
 * diskfile is needed (a present one with the same modification time on disk,
 * or the same md5, means the file is unchanged, unless forced); one pass over
 * the stored bytes for both checksums and the headers; then, in one
 * transaction, the `file` row, the earlier version marked not present and not
 * canonical, the new `diskfile`, `header` and instrument rows, the
 * calibration-cache (and with --make-previews, preview) work items, and the
 * ledger row set to done. A job that runs twice finds its own work and
 * leaves the same rows.
 *
 * A file that cannot be ingested is marked failed with the reason; that is
 * not retried by itself. A database or storage fault is thrown, so the queue
 * retries the batch with backoff; rows already done are not redone.
 *
 * --fast-rebuild: into a freshly initialised database there are no earlier
 * versions to look up, so a whole batch is written in one transaction with
 * multi-row inserts: a handful of round trips per batch instead of per file.
 */
import { tmpdir } from "node:os";

import type { PoolClient } from "pg";

import { orderedMap } from "../concurrency.js";
import type { PgClient } from "../db/connect.js";
import { quoteIdent } from "../db/sql.js";
import { ExternalServiceError, FitsfleetError } from "../errors.js";
import {
  type FitsReadResult,
  isCompressedName,
  readFitsStream,
} from "../fits/read.js";
import {
  type ArchiveRows,
  archiveRows,
  HEADER_COLUMN_NAMES,
  INSTRUMENT_COLUMN_NAMES,
  type InstrumentTableName,
} from "../gemini/rows.js";
import type { RowValue } from "../gemini/sql-types.js";
import type { Logger } from "../logger.js";
import {
  type Previewer,
  previewName,
  type PreviewRequest,
  type PreviewResult,
  recordPreviews,
  StagedCopy,
} from "../preview/store.js";
import type { Storage, StorageEntry } from "../storage/index.js";
import { trimName } from "./names.js";

type Client = PgClient | PoolClient;

/** The archive tables a rebuild writes. */
export const REBUILT_TABLES = [
  "file",
  "diskfile",
  "header",
  "gmos",
  "niri",
  "f2",
  "gnirs",
] as const;

/** The reference's "not failed" marker in the queue tables' fail_dt. */
const NOT_FAILED = "9999-12-31 23:59:59.999999";

export interface IngestContext {
  /** The storage of a ledger row's location (opened once per location). */
  storage: (location: string) => Storage;
  /** The worker's --name, recorded in the ledger. */
  worker: string;
  fastRebuild: boolean;
  makePreviews: boolean;
  logger: Logger;
  /** Files read at once under --fast-rebuild (default READ_AHEAD). */
  readAhead?: number;
  /**
   * --make-previews renders inline with the previewer of a file's storage
   * location; without one, previews are queued for the preview worker.
   */
  previewer?: (storageLocation: string) => Previewer;
  /** Where files from S3 are staged for rendering; default the temporary folder. */
  stagingDir?: string;
}

/**
 * Enough files in flight to hide a small file's waits (storage, the
 * decompressor's start) behind the parsing of others; few enough that
 * full-size files in flight stay a few MB of buffers each.
 */
export const READ_AHEAD = 4;

export interface LedgerEntry {
  id: number;
  storage: string;
  path: string;
  filename: string;
  sortkey: string;
  force: boolean;
  forceMd5: boolean;
}

export type Outcome =
  "new" | "new version" | "unchanged" | "failed" | "skipped";

export interface BatchReport {
  claimed: number;
  outcomes: Record<Outcome, number>;
}

interface Prepared {
  entry: LedgerEntry;
  stat: StorageEntry;
  /**
   * The checksums only: a batch holds its files until it is written, and
   * keeping every card of every header that long made the young-generation
   * collections copy them all (a sixth of a worker's time, BENCHMARKS.md).
   */
  read: Omit<FitsReadResult, "structure">;
  rows: ArchiveRows;
  /** --make-previews: what became of the preview; failed ones are queued. */
  preview?: PreviewResult | { kind: "failed"; error: string };
}

type Decision =
  | { kind: "write"; prepared: Prepared }
  | { kind: "unchanged"; entry: LedgerEntry; diskfileId: number }
  | { kind: "failed"; entry: LedgerEntry; error: string }
  | { kind: "skipped"; entry: LedgerEntry; reason: string };

/** Marks the batch's rows active for this worker; rows done meanwhile (a replay) are not taken. */
export async function claim(
  client: Client,
  ids: number[],
  worker: string,
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
    `UPDATE fitsfleet.ingest_ledger
        SET state = 'active', worker = $2, started_at = now(), attempts = attempts + 1
      WHERE id = ANY($1::bigint[]) AND state IN ('queued', 'active')
      RETURNING id::text, storage, path, filename, sortkey, force, force_md5`,
    [ids, worker],
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

interface PresentDiskfile {
  id: number;
  lastmod: Date | null;
  file_md5: string | null;
}

async function presentDiskfiles(
  client: Client,
  entry: LedgerEntry,
): Promise<PresentDiskfile[]> {
  const { rows } = await client.query<PresentDiskfile>(
    `SELECT d.id, d.lastmod, d.file_md5
       FROM diskfile d JOIN file f ON f.id = d.file_id
      WHERE f.name = $1 AND d.path = $2 AND d.present`,
    [trimName(entry.filename), entry.path],
  );
  return rows;
}

/** A fault of the file itself (damaged, unreadable), as opposed to a service that will come back. */
export function isPermanent(error: unknown): boolean {
  return (
    error instanceof FitsfleetError &&
    !(error instanceof ExternalServiceError) &&
    error.exitCode === 1
  );
}

async function decide(
  client: Client,
  ctx: IngestContext,
  entry: LedgerEntry,
): Promise<Decision> {
  const where =
    entry.path === "" ? entry.filename : `${entry.path}/${entry.filename}`;
  const storage = ctx.storage(entry.storage);
  const missing: Decision = {
    kind: "failed",
    entry,
    error: `cannot access ${where} in ${storage.description}: no such file`,
  };
  // An uncompressed file on disk is hashed and scanned through one reused
  // buffer; under --fast-rebuild, where nothing is decided before reading,
  // opening it is also the existence check and the stat.
  const transient =
    storage.readTransient !== undefined && !isCompressedName(entry.filename);
  let stat: StorageEntry | undefined;
  if (!(transient && ctx.fastRebuild)) {
    stat = await storage.stat(entry.path, entry.filename);
    if (stat === undefined) {
      return missing;
    }
  }
  let present: PresentDiskfile | undefined;
  if (stat !== undefined && !ctx.fastRebuild && !entry.force) {
    const found = await presentDiskfiles(client, entry);
    if (found.length > 1) {
      return {
        kind: "skipped",
        entry,
        reason: `database integrity: ${found.length} present diskfiles for ${where}; left alone`,
      };
    }
    present = found[0];
    if (present !== undefined && !entry.forceMd5) {
      const sameTime =
        storage.kind === "disk" &&
        present.lastmod?.getTime() === stat.lastModified.getTime();
      const sameMd5 =
        storage.kind === "s3" &&
        stat.md5 !== undefined &&
        stat.md5 === present.file_md5;
      if (sameTime || sameMd5) {
        return { kind: "unchanged", entry, diskfileId: present.id };
      }
    }
  }
  // --make-previews: the preview is rendered from the copy this worker reads
  // anyway. An existing preview is kept, unless forced or the file is a new
  // version of one ingested before. A file from S3, and the decompressed data
  // of a .bz2 file, are copied to a staging folder on their way to the
  // checksums, and only when a preview is to be made.
  const previewer = ctx.makePreviews
    ? ctx.previewer?.(entry.storage)
    : undefined;
  let render = false;
  let previewResult: PreviewResult | undefined;
  if (previewer !== undefined) {
    const name = previewName(entry.path, entry.filename);
    render =
      entry.force || present !== undefined || !(await previewer.exists(name));
    if (!render) {
      previewResult = { kind: "kept", name };
    }
  }
  const staged =
    render &&
    (storage.localPath === undefined || isCompressedName(entry.filename))
      ? await StagedCopy.create(
          ctx.stagingDir ?? tmpdir(),
          // The copy holds the data, so a name the renderer reads as is.
          entry.filename.replace(/\.bz2$/i, ""),
        )
      : undefined;
  try {
    let read: FitsReadResult;
    try {
      // A .bz2 file goes on to the decompressor, which may keep a chunk a
      // while, so it gets fresh ones.
      let bytes: AsyncIterable<Uint8Array>;
      if (transient) {
        const opened = await storage.readTransient!(entry.path, entry.filename);
        stat ??= opened.entry;
        bytes = opened.bytes;
      } else {
        bytes = await storage.read(entry.path, entry.filename);
      }
      read = await readFitsStream(entry.filename, bytes, {
        file: where,
        ...(staged && { throughData: (data) => staged.tee(data) }),
      });
    } catch (error) {
      if ((error as FitsfleetError).code === "storage-not-found") {
        return missing;
      }
      if (isPermanent(error)) {
        return { kind: "failed", entry, error: (error as Error).message };
      }
      throw error;
    }
    if (stat === undefined) {
      return missing; // not reached: every way to `read` sets it
    }
    if (present !== undefined && read.fileMd5 === present.file_md5) {
      return { kind: "unchanged", entry, diskfileId: present.id };
    }
    const { structure, ...checksums } = read;
    const prepared: Prepared = {
      entry,
      stat,
      read: checksums,
      rows: archiveRows(structure, trimName(entry.filename)),
      preview: previewResult,
    };
    if (previewer !== undefined && render) {
      prepared.preview = await inlinePreview(
        ctx,
        previewer,
        {
          storage,
          path: entry.path,
          filename: entry.filename,
          force: true,
          scavengeOnly: false,
        },
        staged?.file,
      );
    }
    return { kind: "write", prepared };
  } finally {
    await staged?.remove();
  }
}

/** A preview that fails is queued for the preview worker, which records why; ingest goes on. */
async function inlinePreview(
  ctx: IngestContext,
  previewer: Previewer,
  request: PreviewRequest,
  local: string | undefined,
): Promise<Prepared["preview"]> {
  try {
    return await previewer.make(request, local);
  } catch (error) {
    ctx.logger.warn("preview failed; queued for the preview worker", {
      file: `${request.path}/${request.filename}`,
      error: (error as Error).message,
    });
    return { kind: "failed", error: (error as Error).message };
  }
}

/** Multi-row INSERT of `rows` (each in `columns` order), chunked under the parameter limit. */
async function insertMany<R extends Record<string, unknown>>(
  client: Client,
  table: string,
  columns: readonly string[],
  rows: RowValue[][],
  returning?: string,
): Promise<R[]> {
  const out: R[] = [];
  const perStatement = Math.max(1, Math.floor(60_000 / columns.length));
  const columnList = columns
    .map((c) => quoteIdent(c, "column name"))
    .join(", ");
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const params: RowValue[] = [];
    const tuples = chunk.map((row) => {
      const refs = row.map((value) => {
        params.push(value);
        return `$${params.length}`;
      });
      return `(${refs.join(", ")})`;
    });
    const { rows: result } = await client.query<R>(
      `INSERT INTO ${quoteIdent(table)} (${columnList}) VALUES ${tuples.join(", ")}${returning === undefined ? "" : ` RETURNING ${returning}`}`,
      params,
    );
    out.push(...result);
  }
  return out;
}

const DISKFILE_COLUMNS = [
  "file_id",
  "filename",
  "path",
  "present",
  "canonical",
  "file_md5",
  "file_size",
  "lastmod",
  "entrytime",
  "compressed",
  "data_md5",
  "data_size",
  "isfits",
] as const;

/**
 * Writes the rows of prepared files whose `file` rows exist: diskfile,
 * header, instrument rows and work items, all multi-row. Returns the new
 * diskfile id per ledger id.
 */
async function writeRows(
  client: Client,
  ctx: IngestContext,
  items: { prepared: Prepared; fileId: number }[],
): Promise<Map<number, number>> {
  const now = new Date();
  const disk = await insertMany<{ id: number }>(
    client,
    "diskfile",
    DISKFILE_COLUMNS,
    items.map(({ prepared: { entry, stat, read }, fileId }) => [
      fileId,
      entry.filename,
      entry.path,
      true,
      true,
      read.fileMd5,
      read.fileSize,
      stat.lastModified.toISOString(),
      now.toISOString(),
      read.compressed,
      read.dataMd5,
      read.dataSize,
      true,
    ]),
    "id",
  );
  // RETURNING follows the VALUES order for a plain multi-row INSERT.
  const diskfileIds = disk.map((r) => r.id);
  const headers = await insertMany<{ id: number }>(
    client,
    "header",
    ["diskfile_id", ...HEADER_COLUMN_NAMES],
    items.map(({ prepared }, i) => [
      diskfileIds[i]!,
      ...HEADER_COLUMN_NAMES.map((c) => prepared.rows.header[c] ?? null),
    ]),
    "id",
  );
  const headerIds = headers.map((r) => r.id);
  const byTable = new Map<InstrumentTableName, RowValue[][]>();
  items.forEach(({ prepared }, i) => {
    for (const row of prepared.rows.instrument) {
      const columns = INSTRUMENT_COLUMN_NAMES[row.table];
      const list = byTable.get(row.table) ?? [];
      list.push([headerIds[i]!, ...columns.map((c) => row.values[c] ?? null)]);
      byTable.set(row.table, list);
    }
  });
  for (const [table, rows] of byTable) {
    await insertMany(
      client,
      table,
      ["header_id", ...INSTRUMENT_COLUMN_NAMES[table]],
      rows,
    );
  }
  await insertMany(
    client,
    "calcachequeue",
    ["obs_hid", "inprogress", "fail_dt", "added", "sortkey", "filename"],
    items.map(({ prepared }, i) => [
      headerIds[i]!,
      false,
      NOT_FAILED,
      now.toISOString(),
      prepared.entry.sortkey,
      prepared.entry.filename,
    ]),
  );
  if (ctx.makePreviews) {
    await recordPreviews(
      client,
      items.flatMap(({ prepared }, i) => {
        const result = prepared.preview;
        return result === undefined || result.kind === "failed"
          ? []
          : [{ diskfileId: diskfileIds[i]!, result }];
      }),
    );
    const queued = items
      .map((item, i) => ({ ...item, diskfileId: diskfileIds[i]! }))
      .filter(
        ({ prepared }) =>
          prepared.preview === undefined || prepared.preview.kind === "failed",
      );
    await insertMany(
      client,
      "previewqueue",
      [
        "diskfile_id",
        "filename",
        "inprogress",
        "fail_dt",
        "force",
        "scavengeonly",
        "sortkey",
      ],
      queued.map(({ prepared, diskfileId }) => [
        diskfileId,
        prepared.entry.filename,
        false,
        NOT_FAILED,
        false,
        false,
        prepared.entry.sortkey,
      ]),
    );
  }
  return new Map(
    items.map(({ prepared }, i) => [prepared.entry.id, diskfileIds[i]!]),
  );
}

/** `file` ids for the names, inserting the missing ones. */
async function fileIds(
  client: Client,
  names: string[],
): Promise<Map<string, number>> {
  await client.query(
    "INSERT INTO file (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
    [names],
  );
  const { rows } = await client.query<{ id: number; name: string }>(
    "SELECT id, name FROM file WHERE name = ANY($1::text[])",
    [names],
  );
  return new Map(rows.map((r) => [r.name, r.id]));
}

async function finish(
  client: Client,
  updates: {
    id: number;
    state: string;
    outcome: string;
    error: string | null;
    diskfileId: number | null;
  }[],
): Promise<void> {
  if (updates.length === 0) {
    return;
  }
  await client.query(
    `UPDATE fitsfleet.ingest_ledger AS l
        SET state = u.state, outcome = u.outcome, error = u.error,
            diskfile_id = u.diskfile_id, finished_at = now()
       FROM (SELECT unnest($1::bigint[]) AS id, unnest($2::text[]) AS state,
                    unnest($3::text[]) AS outcome, unnest($4::text[]) AS error,
                    unnest($5::int[]) AS diskfile_id) AS u
      WHERE l.id = u.id`,
    [
      updates.map((u) => u.id),
      updates.map((u) => u.state),
      updates.map((u) => u.outcome),
      updates.map((u) => u.error),
      updates.map((u) => u.diskfileId),
    ],
  );
}

function ledgerUpdate(d: Exclude<Decision, { kind: "write" }>) {
  switch (d.kind) {
    case "unchanged":
      return {
        id: d.entry.id,
        state: "done",
        outcome: "unchanged",
        error: null,
        diskfileId: d.diskfileId,
      };
    case "failed":
      return {
        id: d.entry.id,
        state: "failed",
        outcome: "failed",
        error: d.error,
        diskfileId: null,
      };
    case "skipped":
      return {
        id: d.entry.id,
        state: "skipped",
        outcome: "skipped",
        error: d.reason,
        diskfileId: null,
      };
  }
}

async function inTransaction<T>(
  client: Client,
  fn: () => Promise<T>,
): Promise<T> {
  await client.query("BEGIN");
  try {
    const result = await fn();
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/** Ingests one file's new version in its own transaction, under a lock on its name. */
async function writeOne(
  client: Client,
  ctx: IngestContext,
  prepared: Prepared,
): Promise<Outcome> {
  const { entry } = prepared;
  const name = trimName(entry.filename);
  return inTransaction(client, async () => {
    // Two deliveries of the same file (a replay, a re-queue) take turns here.
    await client.query(
      "SELECT pg_advisory_xact_lock(hashtextextended($1, 7379557503))",
      [name],
    );
    if (!entry.force) {
      const present = await presentDiskfiles(client, entry);
      const same = present.find((p) => p.file_md5 === prepared.read.fileMd5);
      if (present.length === 1 && same !== undefined) {
        await finish(client, [
          ledgerUpdate({ kind: "unchanged", entry, diskfileId: same.id }),
        ]);
        return "unchanged";
      }
    }
    const fileId = (await fileIds(client, [name])).get(name)!;
    const { rowCount } = await client.query(
      `UPDATE diskfile SET present = false, canonical = false
        WHERE file_id = $1 AND path = $2 AND (present OR canonical)`,
      [fileId, entry.path],
    );
    const ids = await writeRows(client, ctx, [{ prepared, fileId }]);
    const outcome: Outcome = (rowCount ?? 0) > 0 ? "new version" : "new";
    await finish(client, [
      {
        id: entry.id,
        state: "done",
        outcome,
        error: null,
        diskfileId: ids.get(entry.id) ?? null,
      },
    ]);
    return outcome;
  });
}

/** Ingests the claimed ledger rows; returns what happened to each. */
export async function ingestBatch(
  client: Client,
  ctx: IngestContext,
  ids: number[],
): Promise<BatchReport> {
  const entries = await claim(client, ids, ctx.worker);
  const outcomes: Record<Outcome, number> = {
    new: 0,
    "new version": 0,
    unchanged: 0,
    failed: 0,
    skipped: 0,
  };
  const settled: Exclude<Decision, { kind: "write" }>[] = [];
  const toWrite: Prepared[] = [];
  // Under --fast-rebuild deciding reads only storage, so files are read ahead
  // while earlier ones are parsed; otherwise it also queries `client`, which
  // must not interleave with a file's transaction.
  const readAhead = ctx.fastRebuild ? (ctx.readAhead ?? READ_AHEAD) : 1;
  for await (const decision of orderedMap(entries, readAhead, (entry) =>
    decide(client, ctx, entry),
  )) {
    const { entry } = decision.kind === "write" ? decision.prepared : decision;
    if (decision.kind === "write") {
      if (ctx.fastRebuild) {
        toWrite.push(decision.prepared);
      } else {
        try {
          outcomes[await writeOne(client, ctx, decision.prepared)]++;
        } catch (error) {
          if (isTransient(error)) {
            throw error;
          }
          // Rows the database refuses are this file's problem, not the batch's.
          settled.push({
            kind: "failed",
            entry,
            error: `cannot store its rows: ${(error as Error).message}`,
          });
        }
      }
    } else {
      settled.push(decision);
    }
    if (decision.kind === "failed") {
      ctx.logger.warn("file failed", {
        file: `${entry.path}/${entry.filename}`,
        error: decision.error,
      });
    }
  }
  try {
    await writeFastBatch(client, ctx, toWrite, settled);
    outcomes.new += toWrite.length;
  } catch (error) {
    if (isTransient(error)) {
      throw error;
    }
    // One file's rows refused: write them one by one, so only that file fails.
    ctx.logger.warn("batch insert refused; writing its files one by one", {
      error: (error as Error).message,
    });
    for (const prepared of toWrite) {
      try {
        outcomes[await writeOne(client, ctx, prepared)]++;
      } catch (inner) {
        if (isTransient(inner)) {
          throw inner;
        }
        settled.push({
          kind: "failed",
          entry: prepared.entry,
          error: `cannot store its rows: ${(inner as Error).message}`,
        });
      }
    }
    await inTransaction(client, () =>
      finish(client, settled.map(ledgerUpdate)),
    );
  }
  for (const d of settled) {
    outcomes[d.kind]++;
  }
  return { claimed: entries.length, outcomes };
}

/** --fast-rebuild's one transaction for a whole batch, plus the ledger rows of the rest. */
async function writeFastBatch(
  client: Client,
  ctx: IngestContext,
  toWrite: Prepared[],
  settled: Exclude<Decision, { kind: "write" }>[],
): Promise<void> {
  await inTransaction(client, async () => {
    if (toWrite.length > 0) {
      const names = [
        ...new Set(toWrite.map((p) => trimName(p.entry.filename))),
      ];
      const files = await fileIds(client, names);
      const ids = await writeRows(
        client,
        ctx,
        toWrite.map((prepared) => ({
          prepared,
          fileId: files.get(trimName(prepared.entry.filename))!,
        })),
      );
      await finish(
        client,
        toWrite.map((p) => ({
          id: p.entry.id,
          state: "done",
          outcome: "new",
          error: null,
          diskfileId: ids.get(p.entry.id) ?? null,
        })),
      );
    }
    await finish(client, settled.map(ledgerUpdate));
  });
}

/** Faults of the database connection or the storage service: retry the batch later. */
export function isTransient(error: unknown): boolean {
  if (error instanceof ExternalServiceError) {
    return true;
  }
  const code = (error as { code?: string }).code ?? "";
  return (
    code.startsWith("08") ||
    code.startsWith("57P") ||
    code === "40001" ||
    code === "40P01" ||
    ["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT"].includes(code) ||
    /Connection terminated|connection.*(closed|lost)/i.test(
      (error as Error).message ?? "",
    )
  );
}
