/**
 * Every write to the archive tables a rebuild owns: `file`, `diskfile`,
 * `header`, the instrument tables, `preview`, `previewqueue` and
 * `calcachequeue`. Ingest and the preview worker call these inside their
 * own transactions; nothing else writes these tables.
 */
import { type AnyClient } from "./db/connect.js";
import { FILE_NAME_LOCK_SEED, PREVIEW_ROWS_LOCK_CLASS } from "./db/locks.js";
import { quoteIdent } from "./db/sql.js";
import type { FitsReadResult } from "./fits/read.js";
import {
  type ArchiveRows,
  HEADER_COLUMN_NAMES,
  INSTRUMENT_COLUMN_NAMES,
  type InstrumentTableName,
} from "./gemini/rows.js";
import type { RowValue } from "./gemini/sql-types.js";
import type { PreviewResult } from "./preview/store.js";
import type { StorageEntry } from "./storage/index.js";

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
export const NOT_FAILED = "9999-12-31 23:59:59.999999";

/** Multi-row INSERT of `rows` (each in `columns` order), chunked under the parameter limit. */
async function insertMany<R extends Record<string, unknown>>(
  client: AnyClient,
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

export interface PresentDiskfile {
  id: number;
  lastmod: Date | null;
  file_md5: string | null;
}

/** The present diskfiles of a stored file (normally none or one). */
export async function presentDiskfiles(
  client: AnyClient,
  name: string,
  path: string,
): Promise<PresentDiskfile[]> {
  const { rows } = await client.query<PresentDiskfile>(
    `SELECT d.id, d.lastmod, d.file_md5
       FROM diskfile d JOIN file f ON f.id = d.file_id
      WHERE f.name = $1 AND d.path = $2 AND d.present`,
    [name, path],
  );
  return rows;
}

/** Which of these (name, path) pairs already have a present diskfile. */
export async function withPresentDiskfile(
  client: AnyClient,
  files: { name: string; path: string }[],
): Promise<Set<string>> {
  if (files.length === 0) {
    return new Set();
  }
  const { rows } = await client.query<{ name: string; path: string }>(
    `SELECT f.name, d.path
       FROM diskfile d JOIN file f ON f.id = d.file_id
       JOIN unnest($1::text[], $2::text[]) AS w(name, path)
         ON w.name = f.name AND w.path = d.path
      WHERE d.present`,
    [files.map((f) => f.name), files.map((f) => f.path)],
  );
  return new Set(rows.map((r) => `${r.path}\0${r.name}`));
}

/** Two writers of the same file name take turns (held to the end of the transaction). */
export async function lockFileName(
  client: AnyClient,
  name: string,
): Promise<void> {
  await client.query(
    "SELECT pg_advisory_xact_lock(hashtextextended($1, $2::bigint))",
    [name, FILE_NAME_LOCK_SEED],
  );
}

/** `file` ids for the names, inserting the missing ones. */
export async function fileIds(
  client: AnyClient,
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

/** Marks a file's earlier diskfiles in this path not present and not canonical; true if there were any. */
export async function supersedeDiskfiles(
  client: AnyClient,
  fileId: number,
  path: string,
): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE diskfile SET present = false, canonical = false
      WHERE file_id = $1 AND path = $2 AND (present OR canonical)`,
    [fileId, path],
  );
  return (rowCount ?? 0) > 0;
}

/** One ingested file, ready to be written. */
export interface NewDiskfile {
  fileId: number;
  filename: string;
  path: string;
  sortkey: string;
  stat: StorageEntry;
  read: Omit<FitsReadResult, "structure">;
  rows: ArchiveRows;
  /**
   * With previews: what became of the file's preview (made or kept get a
   * `preview` row; failed, or none made, a `previewqueue` row, with the
   * reason when it failed). Undefined: previews are not this ingest's job.
   */
  preview?:
    PreviewResult | { kind: "failed"; error: string } | { kind: "queued" };
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

const PREVIEWQUEUE_COLUMNS = [
  "diskfile_id",
  "filename",
  "inprogress",
  "fail_dt",
  "force",
  "scavengeonly",
  "sortkey",
  "error",
] as const;

/**
 * Writes the rows of files whose `file` rows exist: diskfile, header,
 * instrument rows, the calibration-cache work item and the preview row or
 * work item, all multi-row. Returns the new diskfile ids in input order.
 */
export async function writeDiskfiles(
  client: AnyClient,
  items: NewDiskfile[],
): Promise<number[]> {
  if (items.length === 0) {
    return [];
  }
  const now = new Date().toISOString();
  const disk = await insertMany<{ id: number }>(
    client,
    "diskfile",
    DISKFILE_COLUMNS,
    items.map((item) => [
      item.fileId,
      item.filename,
      item.path,
      true,
      true,
      item.read.fileMd5,
      item.read.fileSize,
      item.stat.lastModified.toISOString(),
      now,
      item.read.compressed,
      item.read.dataMd5,
      item.read.dataSize,
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
    items.map((item, i) => [
      diskfileIds[i]!,
      ...HEADER_COLUMN_NAMES.map((c) => item.rows.header[c] ?? null),
    ]),
    "id",
  );
  const headerIds = headers.map((r) => r.id);
  const byTable = new Map<InstrumentTableName, RowValue[][]>();
  items.forEach((item, i) => {
    for (const row of item.rows.instrument) {
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
    items.map((item, i) => [
      headerIds[i]!,
      false,
      NOT_FAILED,
      now,
      item.sortkey,
      item.filename,
    ]),
  );
  const previews: { diskfileId: number; result: PreviewResult }[] = [];
  const queued: RowValue[][] = [];
  items.forEach((item, i) => {
    const preview = item.preview;
    if (preview === undefined) {
      return;
    }
    if (preview.kind === "failed" || preview.kind === "queued") {
      queued.push([
        diskfileIds[i]!,
        item.filename,
        false,
        NOT_FAILED,
        false,
        false,
        item.sortkey,
        // The reason stays with the work item, for the operator and the
        // preview worker's log; it is not a failure until that worker fails too.
        preview.kind === "failed" ? preview.error : null,
      ]);
    } else {
      previews.push({ diskfileId: diskfileIds[i]!, result: preview });
    }
  });
  await recordPreviews(client, previews);
  await insertMany(client, "previewqueue", PREVIEWQUEUE_COLUMNS, queued);
  return diskfileIds;
}

/**
 * Sets the `preview` rows of these diskfiles to match the results: one row
 * for a preview made or kept, none otherwise. Call inside a transaction.
 */
export async function recordPreviews(
  client: AnyClient,
  results: { diskfileId: number; result: PreviewResult }[],
): Promise<void> {
  if (results.length === 0) {
    return;
  }
  const ids = results.map((r) => r.diskfileId);
  // In id order, so two workers never wait on each other in a circle.
  await client.query(
    `SELECT pg_advisory_xact_lock($1, id) FROM unnest($2::int[]) AS id ORDER BY id`,
    [PREVIEW_ROWS_LOCK_CLASS, ids],
  );
  await client.query("DELETE FROM preview WHERE diskfile_id = ANY($1::int[])", [
    ids,
  ]);
  const rows = results.filter(
    (r) => r.result.kind === "made" || r.result.kind === "kept",
  );
  if (rows.length > 0) {
    await client.query(
      `INSERT INTO preview (diskfile_id, filename)
       SELECT * FROM unnest($1::int[], $2::text[])`,
      [rows.map((r) => r.diskfileId), rows.map((r) => r.result.name)],
    );
  }
}

/** A `previewqueue` row with its file, as the preview worker takes it. */
export interface PreviewQueueRow {
  id: number;
  diskfileId: number;
  force: boolean;
  scavengeOnly: boolean;
  path: string;
  filename: string;
}

/**
 * Takes up to `limit` work items, newest first, marking them in progress
 * under a claim (`fitsfleet.preview_claims`) and committing at once, so that
 * no transaction stays open while they are rendered. An item whose claim's
 * lease ran out (its worker died) is taken again; an item in progress with
 * no claim of ours belongs to some other tool and is left alone.
 */
export async function takePreviewWork(
  client: AnyClient,
  claim: string,
  limit: number,
  leaseSeconds: number,
): Promise<PreviewQueueRow[]> {
  const { rows } = await client.query<{
    id: number;
    diskfile_id: number;
    force: boolean | null;
    scavengeonly: boolean | null;
    path: string;
    filename: string;
  }>(
    `WITH taken AS (
       SELECT q.id FROM previewqueue q
         LEFT JOIN fitsfleet.preview_claims c ON c.queue_id = q.id
        WHERE q.fail_dt = $1
          AND (NOT coalesce(q.inprogress, false) OR c.lease_until < now())
        ORDER BY q.sortkey DESC NULLS LAST, q.id
        LIMIT $2
        FOR UPDATE OF q SKIP LOCKED),
     marked AS (
       UPDATE previewqueue q SET inprogress = true
         FROM taken WHERE q.id = taken.id
       RETURNING q.id, q.diskfile_id, q.force, q.scavengeonly),
     claimed AS (
       INSERT INTO fitsfleet.preview_claims (queue_id, claim, lease_until)
       SELECT id, $3, now() + make_interval(secs => $4) FROM taken
       ON CONFLICT (queue_id) DO UPDATE
          SET claim = EXCLUDED.claim, lease_until = EXCLUDED.lease_until)
     SELECT m.id, m.diskfile_id, m.force, m.scavengeonly, d.path, d.filename
       FROM marked m JOIN diskfile d ON d.id = m.diskfile_id`,
    [NOT_FAILED, limit, claim, leaseSeconds],
  );
  return rows.map((r) => ({
    id: r.id,
    diskfileId: r.diskfile_id,
    force: r.force === true,
    scavengeOnly: r.scavengeonly === true,
    path: r.path,
    filename: r.filename,
  }));
}

/** Keeps a claim's items from being taken over while they are still being rendered. */
export async function renewPreviewClaim(
  client: AnyClient,
  claim: string,
  leaseSeconds: number,
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.preview_claims SET lease_until = now() + make_interval(secs => $2)
      WHERE claim = $1`,
    [claim, leaseSeconds],
  );
}

/** Gives a claim's items back untouched (a worker stopping before it rendered them). */
export async function returnPreviewWork(
  client: AnyClient,
  claim: string,
): Promise<void> {
  await client.query(
    `WITH mine AS (
       DELETE FROM fitsfleet.preview_claims WHERE claim = $1 RETURNING queue_id)
     UPDATE previewqueue SET inprogress = false
      WHERE id IN (SELECT queue_id FROM mine)`,
    [claim],
  );
}

/**
 * Records a claim's rendered work: preview rows for what was made or kept,
 * the finished items deleted, failed ones kept with their reason. Only
 * items the claim still holds are touched, so work taken over after its
 * worker stalled is recorded once; returns their ids.
 */
export async function finishPreviewWork(
  client: AnyClient,
  claim: string,
  done: { id: number; diskfileId: number; result: PreviewResult }[],
  failed: { id: number; error: string }[],
): Promise<Set<number>> {
  const { rows } = await client.query<{ id: number }>(
    `SELECT q.id FROM previewqueue q
       JOIN fitsfleet.preview_claims c ON c.queue_id = q.id
      WHERE c.claim = $1 AND q.inprogress
      ORDER BY q.id FOR UPDATE OF q`,
    [claim],
  );
  const mine = new Set(rows.map((r) => r.id));
  const doneMine = done.filter((d) => mine.has(d.id));
  const failedMine = failed.filter((f) => mine.has(f.id));
  await recordPreviews(client, doneMine);
  await client.query("DELETE FROM previewqueue WHERE id = ANY($1::int[])", [
    doneMine.map((d) => d.id),
  ]);
  if (failedMine.length > 0) {
    await client.query(
      `UPDATE previewqueue AS q SET fail_dt = now(), inprogress = false, error = f.error
         FROM unnest($1::int[], $2::text[]) AS f(id, error)
        WHERE q.id = f.id`,
      [failedMine.map((f) => f.id), failedMine.map((f) => f.error)],
    );
  }
  await client.query("DELETE FROM fitsfleet.preview_claims WHERE claim = $1", [
    claim,
  ]);
  return mine;
}

/** Empties the rebuilt tables and their work queues (the demo, before it runs again). */
export async function truncateRebuiltTables(client: AnyClient): Promise<void> {
  await client.query(
    `TRUNCATE calcachequeue, previewqueue, preview, ${REBUILT_TABLES.join(", ")} CASCADE`,
  );
}

/** Preview work not yet done and not failed: the preview workers' backlog. */
export async function previewWorkLeft(client: AnyClient): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM previewqueue WHERE fail_dt = $1`,
    [NOT_FAILED],
  );
  return Number(rows[0]?.n ?? 0);
}
