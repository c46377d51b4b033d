/**
 * `fitsfleet rollcall` (DOMAIN.md §3.3, the reference's `rollcall.py`): is
 * every present diskfile still in storage? The missing ones are marked not
 * present (`canonical` is left alone, as the reference does); with
 * `checkMd5`, the stored bytes are compared with `diskfile.file_md5`.
 *
 * Where the reference differs, on purpose:
 * - A file is looked up by its full place, `path/filename` under the storage
 *   root (the S3 key), never by the file name alone (the reference's S3
 *   check ignores the path).
 * - Rows are walked in id order, a batch at a time, with many checks in
 *   flight. A batch's missing files are marked in one statement, in the same
 *   transaction that moves the run's cursor (`fitsfleet.rollcall_runs`,
 *   migration 0006) past the batch, instead of one commit per file. A run
 *   that is killed resumes after its last committed batch: the same command
 *   (storage, --file-pre, --limit, --checkmd5) finds its cursor.
 * - --checkmd5 works on S3 too: the object's `md5` metadata (which the
 *   reference's upload sets, the md5 of the stored bytes) when it has one,
 *   otherwise the object is read and hashed.
 *
 * Which md5: `file_md5` always, the checksum of the bytes as stored. For a
 * `.bz2` file that is the compressed file's md5 (what the reference's
 * rollcall recomputes, and what its upload stores as metadata), not
 * `data_md5`; after a summit seeding has undone the archive naming, the
 * names have no `.bz2` and `file_md5 = data_md5`.
 */
import { createHash } from "node:crypto";
import { statSync } from "node:fs";

import { connect, type PgClient, withTransaction } from "../db/connect.js";
import { ROLLCALL_LOCK_CLASS } from "../db/locks.js";
import { PreconditionError, UsageError } from "../errors.js";
import { isTransient } from "../errors.js";
import { sleep } from "../exec.js";
import { RateMeter } from "../progress.js";
import type { Storage } from "../storage/index.js";

export const DEFAULT_BATCH_SIZE = 2000;
/** Checks in flight: stat calls on disk (the thread pool queues the rest), HEAD requests on S3. */
export const DEFAULT_CONCURRENCY = { disk: 32, s3: 64 } as const;
/** Findings listed in a report (all are counted, and kept in the database). */
const LISTED_FINDINGS = 200;

export interface RollcallOptions {
  databaseUrl: string;
  storage: Storage;
  /** The storage as the operator named it (a directory or s3://…): part of the run's identity. */
  storageLocation: string;
  /** Only diskfiles whose filename starts with this. */
  filePre?: string;
  /** At most this many diskfiles (over all the run's invocations). */
  limit?: number;
  checkMd5?: boolean;
  /** Check and count, but write nothing (and neither use nor keep a cursor). */
  dryRun?: boolean;
  /** Forget an unfinished run of the same scope and start over. */
  restart?: boolean;
  concurrency?: number;
  batchSize?: number;
  /** Pause after each batch: leaves the disks and the database to others. */
  pauseMs?: number;
  signal?: AbortSignal;
  onProgress?: (progress: RollcallProgress) => void;
}

export interface RollcallProgress {
  checked: number;
  /** Diskfiles this invocation has to check. */
  total: number;
  missing: number;
  mismatched: number;
  errors: number;
  /** Diskfiles per second over the last seconds. */
  rate: number;
  etaSeconds: number | null;
}

export interface RollcallFinding {
  diskfileId: number;
  path: string;
  filename: string;
  kind: "mismatch" | "error";
  expectedMd5?: string | null;
  foundMd5?: string;
  /** Where the found md5 came from: the object's metadata, or reading the bytes. */
  md5From?: "metadata" | "read";
  error?: string;
}

export interface RollcallReport {
  storage: string;
  filePre: string | null;
  limit: number | null;
  checkMd5: boolean;
  dryRun: boolean;
  /** This invocation went on with a run an earlier one left unfinished. */
  resumed: boolean;
  /** Over the whole run (all invocations); a dry run counts only itself. */
  checked: number;
  found: number;
  /** Not in storage: marked not present (a dry run marks nothing). */
  missing: number;
  mismatched: number;
  errors: number;
  /** The first of the findings, in diskfile id order. */
  findings: RollcallFinding[];
  /** This invocation's checks, and its wall time. */
  checkedNow: number;
  seconds: number;
  /** Over all the run's invocations. */
  totalSeconds: number;
}

interface Row {
  id: number;
  path: string | null;
  filename: string | null;
  file_md5: string | null;
}

type Check =
  | { kind: "found" }
  | { kind: "missing" }
  | { kind: "mismatch"; found: string; from: "metadata" | "read" }
  | { kind: "error"; error: string };

/** The md5 of the stored bytes, read through. */
export async function storedMd5(
  storage: Storage,
  path: string,
  name: string,
): Promise<string> {
  const hash = createHash("md5");
  if (storage.readTransient !== undefined) {
    const { bytes } = await storage.readTransient(path, name);
    for await (const chunk of bytes) {
      hash.update(chunk);
    }
  } else {
    for await (const chunk of await storage.read(path, name)) {
      hash.update(chunk as Uint8Array);
    }
  }
  return hash.digest("hex");
}

async function checkRow(
  storage: Storage,
  row: Row,
  checkMd5: boolean,
  knownFound = false,
): Promise<Check> {
  if (row.filename === null || row.filename === "") {
    return { kind: "error", error: "the diskfile has no filename" };
  }
  const path = row.path ?? "";
  try {
    const stat = knownFound
      ? { md5: undefined }
      : await storage.stat(path, row.filename);
    if (stat === undefined) {
      return { kind: "missing" };
    }
    if (!checkMd5) {
      return { kind: "found" };
    }
    let found = stat.md5;
    let from: "metadata" | "read" = "metadata";
    if (found === undefined) {
      found = await storedMd5(storage, path, row.filename);
      from = "read";
    }
    return found === row.file_md5
      ? { kind: "found" }
      : { kind: "mismatch", found, from };
  } catch (error) {
    if (isTransient(error)) {
      throw error;
    }
    if ((error as { code?: string }).code === "storage-not-found") {
      return { kind: "missing" }; // gone between the stat and the read
    }
    return { kind: "error", error: (error as Error).message };
  }
}

/** `prefix%` for LIKE, with the prefix's own wildcards taken literally. */
function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

interface RunRow {
  max_id: number;
  last_id: number;
  checked: string;
  missing: string;
  mismatched: string;
  errors: string;
  seconds: number;
}

function validate(options: RollcallOptions): void {
  const positive = (flag: string, n: number | undefined) => {
    if (n !== undefined && (!Number.isInteger(n) || n <= 0)) {
      throw new UsageError(`${flag} ${n}: must be a positive whole number`);
    }
  };
  positive("--limit", options.limit);
  positive("--concurrency", options.concurrency);
  positive("--batch-size", options.batchSize);
  if (
    options.pauseMs !== undefined &&
    (!Number.isFinite(options.pauseMs) || options.pauseMs < 0)
  ) {
    throw new UsageError(`--pause-ms ${options.pauseMs}: must be 0 or more`);
  }
}

async function rollcallTablesExist(client: PgClient): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(
    "SELECT to_regclass('fitsfleet.rollcall_runs') IS NOT NULL AS ok",
  );
  return rows[0]?.ok === true;
}

/** Opens (or resumes) the scope's run; returns its cursor state and whether it was resumed. */
async function openRun(
  client: PgClient,
  scope: string,
  options: RollcallOptions,
): Promise<{ run: RunRow; resumed: boolean }> {
  return withTransaction(client, async () => {
    const { rows } = await client.query<RunRow & { finished: boolean }>(
      `SELECT max_id, last_id, checked::text, missing::text, mismatched::text,
              errors::text, seconds, finished_at IS NOT NULL AS finished
         FROM fitsfleet.rollcall_runs WHERE scope = $1 FOR UPDATE`,
      [scope],
    );
    const existing = rows[0];
    if (
      existing !== undefined &&
      !existing.finished &&
      options.restart !== true
    ) {
      await client.query(
        `UPDATE fitsfleet.rollcall_runs
            SET invocations = invocations + 1, updated_at = now()
          WHERE scope = $1`,
        [scope],
      );
      return { run: existing, resumed: true };
    }
    await client.query("DELETE FROM fitsfleet.rollcall_runs WHERE scope = $1", [
      scope,
    ]);
    const { rows: created } = await client.query<RunRow>(
      `INSERT INTO fitsfleet.rollcall_runs
              (scope, storage, file_pre, row_limit, checkmd5, max_id)
       SELECT $1, $2, $3, $4, $5, coalesce(max(id), 0) FROM diskfile
       RETURNING max_id, last_id, checked::text, missing::text,
                 mismatched::text, errors::text, seconds`,
      [
        scope,
        options.storageLocation,
        options.filePre ?? null,
        options.limit ?? null,
        options.checkMd5 === true,
      ],
    );
    return { run: created[0]!, resumed: false };
  });
}

export async function rollcall(
  options: RollcallOptions,
): Promise<RollcallReport> {
  validate(options);
  const started = Date.now();
  const storage = options.storage;
  const checkMd5 = options.checkMd5 === true;
  const dryRun = options.dryRun === true;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY[storage.kind];
  const pattern =
    options.filePre === undefined ? null : likePrefix(options.filePre);
  const scope = JSON.stringify([
    options.storageLocation,
    options.filePre ?? null,
    options.limit ?? null,
    checkMd5,
  ]);
  const client = await connect(options.databaseUrl, {
    applicationName: "fitsfleet rollcall",
  });
  try {
    let run: RunRow;
    let resumed = false;
    if (dryRun) {
      const { rows } = await client.query<{ max: number }>(
        "SELECT coalesce(max(id), 0) AS max FROM diskfile",
      );
      run = {
        max_id: rows[0]!.max,
        last_id: 0,
        checked: "0",
        missing: "0",
        mismatched: "0",
        errors: "0",
        seconds: 0,
      };
    } else {
      if (!(await rollcallTablesExist(client))) {
        throw new PreconditionError(
          "the database has no fitsfleet.rollcall_runs table (migration 0006)",
          {
            suggestion: "bring its schema up to date with `fitsfleet db init`",
          },
        );
      }
      // A session lock, held to the end: a second run of the same scope
      // would check the same rows and fight over the cursor.
      const { rows: lock } = await client.query<{ ok: boolean }>(
        "SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok",
        [ROLLCALL_LOCK_CLASS, scope],
      );
      if (lock[0]?.ok !== true) {
        throw new PreconditionError(
          "another rollcall of the same storage and selection is running",
          { suggestion: "wait for it to finish (or stop it), then run again" },
        );
      }
      ({ run, resumed } = await openRun(client, scope, options));
    }
    const totals = {
      checked: Number(run.checked),
      missing: Number(run.missing),
      mismatched: Number(run.mismatched),
      errors: Number(run.errors),
    };
    const dryFindings: RollcallFinding[] = [];
    const remainingLimit = () =>
      options.limit === undefined
        ? Infinity
        : Math.max(0, options.limit - totals.checked);
    const { rows: countRows } = await client.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM diskfile
        WHERE present AND id > $1 AND id <= $2
          AND ($3::text IS NULL OR filename LIKE $3)`,
      [run.last_id, run.max_id, pattern],
    );
    const total = Math.min(Number(countRows[0]!.n), remainingLimit());
    const meter = new RateMeter();
    let checkedNow = 0;
    let lastReport = 0;
    let lastId = run.last_id;
    const report = (force: boolean) => {
      const now = Date.now();
      meter.sample(checkedNow, now);
      if (!force && now - lastReport < 1000) {
        return;
      }
      lastReport = now;
      options.onProgress?.({
        checked: checkedNow,
        total,
        missing: totals.missing,
        mismatched: totals.mismatched,
        errors: totals.errors,
        rate: meter.rate(),
        etaSeconds: meter.eta(total),
      });
    };
    report(true);
    let previousSeconds = run.seconds;
    let mark = Date.now();
    const fetch = async (after: number, take: number): Promise<Row[]> =>
      take === 0
        ? []
        : (
            await client.query<Row>(
              `SELECT id, path, filename, file_md5 FROM diskfile
                WHERE present AND id > $1 AND id <= $2
                  AND ($3::text IS NULL OR filename LIKE $3)
                ORDER BY id LIMIT $4`,
              [after, run.max_id, pattern, take],
            )
          ).rows;
    // A batch's commit runs while the next batch is checked: the storage
    // and the database work at the same time.
    let pending: Promise<void> | undefined;
    const checker = new Checker(storage, checkMd5, concurrency);
    const settle = async () => {
      const p = pending;
      pending = undefined;
      await p;
    };
    try {
      let rows = await fetch(lastId, Math.min(batchSize, remainingLimit()));
      while (rows.length > 0) {
        options.signal?.throwIfAborted();
        const checks = await checker.check(rows);
        await settle();
        const missing: number[] = [];
        const findings: RollcallFinding[] = [];
        rows.forEach((row, i) => {
          const check = checks[i]!;
          if (check.kind === "missing") {
            missing.push(row.id);
          } else if (check.kind === "mismatch" || check.kind === "error") {
            findings.push({
              diskfileId: row.id,
              path: row.path ?? "",
              filename: row.filename ?? "",
              kind: check.kind,
              ...(check.kind === "mismatch"
                ? {
                    expectedMd5: row.file_md5,
                    foundMd5: check.found,
                    md5From: check.from,
                  }
                : { error: check.error }),
            });
          }
        });
        const batchLast = rows[rows.length - 1]!.id;
        const batchSizeNow = rows.length;
        const mismatched = findings.filter((f) => f.kind === "mismatch").length;
        const errors = findings.length - mismatched;
        lastId = batchLast;
        totals.checked += batchSizeNow;
        totals.missing += missing.length;
        totals.mismatched += mismatched;
        totals.errors += errors;
        checkedNow += batchSizeNow;
        // Queued on the connection before the commit; it reads only rows
        // past this batch, which the commit does not touch.
        const next = fetch(lastId, Math.min(batchSize, remainingLimit()));
        if (dryRun) {
          dryFindings.push(
            ...findings.slice(0, LISTED_FINDINGS - dryFindings.length),
          );
        } else {
          const now = Date.now();
          const seconds = previousSeconds + (now - mark) / 1000;
          previousSeconds = seconds;
          mark = now;
          pending = withTransaction(client, async () => {
            // `AND present`: a row an ingest superseded meanwhile stays as it is.
            await client.query(
              "UPDATE diskfile SET present = false WHERE id = ANY($1::int[]) AND present",
              [missing],
            );
            if (findings.length > 0) {
              await recordFindings(client, scope, findings);
            }
            await client.query(
              `UPDATE fitsfleet.rollcall_runs
                  SET last_id = $2, checked = checked + $3, missing = missing + $4,
                      mismatched = mismatched + $5, errors = errors + $6,
                      seconds = $7, updated_at = now()
                WHERE scope = $1`,
              [
                scope,
                batchLast,
                batchSizeNow,
                missing.length,
                mismatched,
                errors,
                seconds,
              ],
            );
          });
          pending.catch(() => undefined); // awaited by settle()
        }
        rows = await next;
        report(false);
        if (options.pauseMs !== undefined && options.pauseMs > 0) {
          await settle();
          await sleep(options.pauseMs, options.signal);
        }
      }
      await settle();
    } finally {
      // A failure while a commit is in flight: let it end before the connection does.
      await pending?.catch(() => undefined);
    }
    report(true);
    let findings = dryFindings;
    let totalSeconds = (Date.now() - started) / 1000;
    if (!dryRun) {
      totalSeconds = previousSeconds + (Date.now() - mark) / 1000;
      await client.query(
        `UPDATE fitsfleet.rollcall_runs
            SET finished_at = now(), updated_at = now(), seconds = $2
          WHERE scope = $1`,
        [scope, totalSeconds],
      );
      findings = await readFindings(client, scope);
    }
    return {
      storage: storage.description,
      filePre: options.filePre ?? null,
      limit: options.limit ?? null,
      checkMd5,
      dryRun,
      resumed,
      checked: totals.checked,
      found: totals.checked - totals.missing,
      missing: totals.missing,
      mismatched: totals.mismatched,
      errors: totals.errors,
      findings,
      checkedNow,
      seconds: (Date.now() - started) / 1000,
      totalSeconds,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Synchronous stats run in slices of this long, then yield to the event loop. */
const SYNC_SLICE_MS = 4;
/** An average stat slower than this is not served from the cache: go asynchronous. */
const SLOW_STAT_MS = 0.1;

/** A file's existence on a local disk, synchronously; undefined: no name to look up. */
function statLocal(storage: Storage, row: Row): Check | "found" | undefined {
  if (row.filename === null || row.filename === "") {
    return undefined;
  }
  let abs = "";
  try {
    abs = storage.localPath!(row.path ?? "", row.filename);
    const stats = statSync(abs, { throwIfNoEntry: false });
    return stats?.isFile() === true ? "found" : { kind: "missing" };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR" || code === "ELOOP") {
      return { kind: "missing" };
    }
    return {
      kind: "error",
      error:
        code === "EACCES" || code === "EPERM"
          ? `cannot stat ${abs}: permission denied`
          : (error as Error).message,
    };
  }
}

/**
 * The checks of batches, in row order. On a local disk the existence checks
 * are synchronous stats, in slices that yield to the event loop (a batch's
 * commit goes on meanwhile): from the page cache that is several times the
 * thread pool's rate. When stats turn slow (a network file system, a cold
 * disk), the rest of the run uses `concurrency` asynchronous checks, as S3
 * always does; so do the md5 reads of --checkmd5.
 */
class Checker {
  private sync: boolean;

  constructor(
    private readonly storage: Storage,
    private readonly checkMd5: boolean,
    private readonly concurrency: number,
  ) {
    this.sync = storage.kind === "disk" && storage.localPath !== undefined;
  }

  async check(rows: Row[]): Promise<Check[]> {
    const known: (Check | "found" | undefined)[] = new Array<
      Check | "found" | undefined
    >(rows.length);
    let i = 0;
    while (this.sync && i < rows.length) {
      const start = performance.now();
      let done = 0;
      while (i < rows.length) {
        known[i] = statLocal(this.storage, rows[i]!);
        i++;
        done++;
        const elapsed = performance.now() - start;
        if (elapsed > SYNC_SLICE_MS) {
          if (elapsed / done > SLOW_STAT_MS) {
            this.sync = false;
          }
          break;
        }
      }
      if (i < rows.length) {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    const results: Check[] = new Array<Check>(rows.length);
    const todo: number[] = [];
    rows.forEach((_, j) => {
      const k = known[j];
      if (k === undefined || (k === "found" && this.checkMd5)) {
        todo.push(j);
      } else {
        results[j] = k === "found" ? { kind: "found" } : k;
      }
    });
    let next = 0;
    const lane = async () => {
      while (next < todo.length) {
        const j = todo[next++]!;
        results[j] = await checkRow(
          this.storage,
          rows[j]!,
          this.checkMd5,
          known[j] === "found",
        );
      }
    };
    // Every lane runs to its end before a failure goes on, so no check is left behind.
    const settled = await Promise.allSettled(
      Array.from({ length: Math.min(this.concurrency, todo.length) }, lane),
    );
    const failed = settled.find((s) => s.status === "rejected");
    if (failed !== undefined) {
      throw (failed as PromiseRejectedResult).reason;
    }
    return results;
  }
}

async function recordFindings(
  client: PgClient,
  scope: string,
  findings: RollcallFinding[],
): Promise<void> {
  await client.query(
    `INSERT INTO fitsfleet.rollcall_findings
            (scope, diskfile_id, kind, path, filename, expected_md5, found_md5, md5_from, error)
     SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::text[])
     ON CONFLICT (scope, diskfile_id) DO UPDATE
        SET kind = EXCLUDED.kind, expected_md5 = EXCLUDED.expected_md5,
            found_md5 = EXCLUDED.found_md5, md5_from = EXCLUDED.md5_from,
            error = EXCLUDED.error`,
    [
      scope,
      findings.map((f) => f.diskfileId),
      findings.map((f) => f.kind),
      findings.map((f) => f.path),
      findings.map((f) => f.filename),
      findings.map((f) => f.expectedMd5 ?? null),
      findings.map((f) => f.foundMd5 ?? null),
      findings.map((f) => f.md5From ?? null),
      findings.map((f) => f.error ?? null),
    ],
  );
}

async function readFindings(
  client: PgClient,
  scope: string,
): Promise<RollcallFinding[]> {
  const { rows } = await client.query<{
    diskfile_id: number;
    kind: "mismatch" | "error";
    path: string | null;
    filename: string | null;
    expected_md5: string | null;
    found_md5: string | null;
    md5_from: "metadata" | "read" | null;
    error: string | null;
  }>(
    `SELECT diskfile_id, kind, path, filename, expected_md5, found_md5, md5_from, error
       FROM fitsfleet.rollcall_findings WHERE scope = $1
      ORDER BY diskfile_id LIMIT $2`,
    [scope, LISTED_FINDINGS],
  );
  return rows.map((r) => ({
    diskfileId: r.diskfile_id,
    path: r.path ?? "",
    filename: r.filename ?? "",
    kind: r.kind,
    ...(r.kind === "mismatch"
      ? {
          expectedMd5: r.expected_md5,
          foundMd5: r.found_md5 ?? "",
          md5From: r.md5_from ?? "read",
        }
      : { error: r.error ?? "" }),
  }));
}
