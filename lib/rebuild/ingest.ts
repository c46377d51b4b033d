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
 * Exactly once in effect: a delivery claims the batch's ledger rows under a
 * token and a lease it renews (lib/rebuild/ledger.ts), and writes a file's
 * rows only in a transaction that finds the row still its own (FOR UPDATE).
 * Rows another live delivery holds are waited for, not redone; rows whose
 * lease ran out (a dead worker's) are taken over. A delivery holds a
 * database connection only to claim, look up and write, never while it
 * reads storage or renders.
 *
 * A file that cannot be ingested (a permanent fault: damaged, not FITS, a
 * bad name, rows the database refuses) is marked failed with the reason, at
 * once and alone. A transient fault (a database or storage service that
 * will come back) is thrown: this delivery's unfinished rows are handed
 * back and the queue retries the batch (lib/rebuild/queue.ts).
 *
 * --fast-rebuild: into a freshly initialised database there are no earlier
 * versions to look up, so a whole batch is written in one transaction with
 * multi-row inserts: a handful of round trips per batch instead of per file.
 * A file of the batch that has a present diskfile after all (an earlier
 * delivery's, a second enqueue's) goes the careful way instead.
 */
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";

import {
  fileIds,
  lockFileName,
  type NewDiskfile,
  type PresentDiskfile,
  presentDiskfiles,
  supersedeDiskfiles,
  withPresentDiskfile,
  writeDiskfiles,
} from "../archive-writer.js";
import { orderedMap } from "../concurrency.js";
import type { Db } from "../db/pool.js";
import { EXIT, FitsfleetError, isTransient } from "../errors.js";
import { sleep } from "../exec.js";
import {
  type FitsReadResult,
  isCompressedName,
  readFitsStream,
} from "../fits/read.js";
import { type ArchiveRows, archiveRows } from "../gemini/rows.js";
import type { Logger } from "../logger.js";
import {
  type Previewer,
  previewName,
  type PreviewRequest,
  type PreviewResult,
  StagedCopy,
} from "../preview/store.js";
import type { Storage, StorageEntry } from "../storage/index.js";
import {
  type Claim,
  claimRows,
  finishRows,
  heldElsewhere,
  type LedgerEntry,
  type LedgerFinish,
  lockOwnedRows,
  releaseClaim,
  renewLease,
} from "./ledger.js";
import { trimName } from "./names.js";

export { REBUILT_TABLES } from "../archive-writer.js";
export type { LedgerEntry } from "./ledger.js";

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
  /** How long a claim holds without renewal (default 60 s): a dead worker's rows wait this long. */
  leaseSeconds?: number;
}

/**
 * Enough files in flight to hide a small file's waits (storage, the
 * decompressor's start) behind the parsing of others; few enough that
 * full-size files in flight stay a few MB of buffers each.
 */
export const READ_AHEAD = 4;

export const DEFAULT_LEASE_SECONDS = 60;

export type Outcome =
  "new" | "new version" | "unchanged" | "failed" | "skipped";

export interface BatchReport {
  /** Files this delivery claimed (a file taken over from another counts once). */
  claimed: number;
  outcomes: Record<Outcome, number>;
}

/** A delivery stopped before it finished (a worker's shutdown deadline): its rows went back. */
export class BatchInterruptedError extends FitsfleetError {
  constructor() {
    super(
      "batch-interrupted",
      EXIT.interrupted,
      "the batch was handed back unfinished",
      {
        fault: "transient",
      },
    );
  }
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
  /** --make-previews: what became of the preview; failed ones are queued with the reason. */
  preview?: PreviewResult | { kind: "failed"; error: string };
}

type Decision =
  | { kind: "write"; prepared: Prepared }
  | {
      kind: "unchanged";
      entry: LedgerEntry;
      diskfileId: number;
      stat: StorageEntry;
    }
  | { kind: "failed"; entry: LedgerEntry; error: string }
  | { kind: "skipped"; entry: LedgerEntry; reason: string };

type Settled = Exclude<Decision, { kind: "write" }>;

async function decide(
  db: Db,
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
    const found = await db.withClient((c) =>
      presentDiskfiles(c, trimName(entry.filename), entry.path),
    );
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
        return { kind: "unchanged", entry, diskfileId: present.id, stat };
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
      if (isTransient(error)) {
        throw error;
      }
      return { kind: "failed", entry, error: (error as Error).message };
    }
    if (stat === undefined) {
      return missing; // not reached: every way to `read` sets it
    }
    if (present !== undefined && read.fileMd5 === present.file_md5) {
      return { kind: "unchanged", entry, diskfileId: present.id, stat };
    }
    const { structure, ...checksums } = read;
    const prepared: Prepared = {
      entry,
      stat,
      read: checksums,
      rows: archiveRows(structure, trimName(entry.filename), {
        reasons: false,
      }),
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

/** A preview that fails is queued for the preview worker with its reason; ingest goes on. */
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

function ledgerFinish(d: Settled): LedgerFinish {
  switch (d.kind) {
    case "unchanged":
      return {
        id: d.entry.id,
        state: "done",
        outcome: "unchanged",
        error: null,
        diskfileId: d.diskfileId,
        size: d.stat.size,
        lastmod: d.stat.lastModified,
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

function newDiskfile(prepared: Prepared, fileId: number): NewDiskfile {
  return {
    fileId,
    filename: prepared.entry.filename,
    path: prepared.entry.path,
    sortkey: prepared.entry.sortkey,
    stat: prepared.stat,
    read: prepared.read,
    rows: prepared.rows,
    preview: prepared.preview,
  };
}

function writtenFinish(
  prepared: Prepared,
  outcome: "new" | "new version",
  diskfileId: number,
): LedgerFinish {
  return {
    id: prepared.entry.id,
    state: "done",
    outcome,
    error: null,
    diskfileId,
    size: prepared.read.fileSize,
    lastmod: prepared.stat.lastModified,
  };
}

/**
 * One file's new version in its own transaction, under a lock on its name,
 * if this delivery still owns its ledger row. Undefined: another delivery
 * took the row over, and writes it instead.
 */
async function writeOne(
  db: Db,
  claim: Claim,
  prepared: Prepared,
): Promise<Outcome | undefined> {
  const { entry } = prepared;
  const name = trimName(entry.filename);
  return db.transaction(async (client) => {
    // Two ledger rows of one file (N1.fits and N1.fits.bz2) take turns here.
    await lockFileName(client, name);
    if (!(await lockOwnedRows(client, [entry.id], claim.token)).has(entry.id)) {
      return undefined;
    }
    if (!entry.force) {
      const present = await presentDiskfiles(client, name, entry.path);
      const same = present.find((p) => p.file_md5 === prepared.read.fileMd5);
      if (present.length === 1 && same !== undefined) {
        await finishRows(client, [
          ledgerFinish({
            kind: "unchanged",
            entry,
            diskfileId: same.id,
            stat: prepared.stat,
          }),
        ]);
        return "unchanged";
      }
    }
    const fileId = (await fileIds(client, [name])).get(name)!;
    const superseded = await supersedeDiskfiles(client, fileId, entry.path);
    const [diskfileId] = await writeDiskfiles(client, [
      newDiskfile(prepared, fileId),
    ]);
    const outcome = superseded ? "new version" : "new";
    await finishRows(client, [writtenFinish(prepared, outcome, diskfileId!)]);
    return outcome;
  });
}

/** writeOne, with a permanent fault of the file's rows settled as that file's failure. */
async function writeOneOrFail(
  db: Db,
  claim: Claim,
  prepared: Prepared,
  settled: Settled[],
  outcomes: Record<Outcome, number>,
): Promise<void> {
  try {
    const outcome = await writeOne(db, claim, prepared);
    if (outcome !== undefined) {
      outcomes[outcome]++;
    }
  } catch (error) {
    if (isTransient(error)) {
      throw error;
    }
    settled.push({
      kind: "failed",
      entry: prepared.entry,
      error: `cannot store its rows: ${(error as Error).message}`,
    });
  }
}

/** The ledger rows of settled files, where this delivery still owns them. */
async function writeSettled(
  db: Db,
  claim: Claim,
  settled: Settled[],
  outcomes: Record<Outcome, number>,
): Promise<void> {
  if (settled.length === 0) {
    return;
  }
  await db.transaction(async (client) => {
    const owned = await lockOwnedRows(
      client,
      settled.map((d) => d.entry.id),
      claim.token,
    );
    const mine = settled.filter((d) => owned.has(d.entry.id));
    await finishRows(client, mine.map(ledgerFinish));
    for (const d of mine) {
      outcomes[d.kind]++;
    }
  });
}

/**
 * --fast-rebuild's one transaction for a batch's new files. Files that have a present
 * diskfile after all, or share a name with another file of the batch, are
 * returned to be written one by one under the reference's rules.
 */
async function writeFastBatch(
  db: Db,
  claim: Claim,
  toWrite: Prepared[],
  outcomes: Record<Outcome, number>,
): Promise<Prepared[]> {
  return db.transaction(async (client) => {
    const owned = await lockOwnedRows(
      client,
      toWrite.map((p) => p.entry.id),
      claim.token,
    );
    const mine = toWrite.filter((p) => owned.has(p.entry.id));
    const present = await withPresentDiskfile(
      client,
      mine.map((p) => ({
        name: trimName(p.entry.filename),
        path: p.entry.path,
      })),
    );
    const names = new Map<string, number>();
    for (const p of mine) {
      const name = trimName(p.entry.filename);
      names.set(name, (names.get(name) ?? 0) + 1);
    }
    const careful = (p: Prepared) => {
      const name = trimName(p.entry.filename);
      return present.has(`${p.entry.path}\0${name}`) || names.get(name)! > 1;
    };
    const fast = mine.filter((p) => !careful(p));
    if (fast.length > 0) {
      const files = await fileIds(client, [
        ...new Set(fast.map((p) => trimName(p.entry.filename))),
      ]);
      const ids = await writeDiskfiles(
        client,
        fast.map((p) => newDiskfile(p, files.get(trimName(p.entry.filename))!)),
      );
      await finishRows(
        client,
        fast.map((p, i) => writtenFinish(p, "new", ids[i]!)),
      );
    }
    // Counted here, but only kept if the transaction commits.
    outcomes.new += fast.length;
    return mine.filter(careful);
  });
}

function emptyOutcomes(): Record<Outcome, number> {
  return { new: 0, "new version": 0, unchanged: 0, failed: 0, skipped: 0 };
}

/** Ingests the entries this delivery claimed into `outcomes`. */
async function ingestClaimed(
  db: Db,
  ctx: IngestContext,
  claim: Claim,
  entries: LedgerEntry[],
  outcomes: Record<Outcome, number>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const settled: Settled[] = [];
  const toWrite: Prepared[] = [];
  // Under --fast-rebuild deciding reads only storage, so files are read
  // ahead while earlier ones are parsed.
  const readAhead = ctx.fastRebuild ? (ctx.readAhead ?? READ_AHEAD) : 1;
  for await (const decision of orderedMap(entries, readAhead, (entry) => {
    if (signal?.aborted === true) {
      throw new BatchInterruptedError();
    }
    return decide(db, ctx, entry);
  })) {
    if (decision.kind === "write") {
      if (ctx.fastRebuild) {
        toWrite.push(decision.prepared);
      } else {
        await writeOneOrFail(db, claim, decision.prepared, settled, outcomes);
      }
      continue;
    }
    settled.push(decision);
    if (decision.kind === "failed") {
      ctx.logger.warn("file failed", {
        file: `${decision.entry.path}/${decision.entry.filename}`,
        error: decision.error,
      });
    }
  }
  if (signal?.aborted === true) {
    throw new BatchInterruptedError();
  }
  let oneByOne: Prepared[] = [];
  if (toWrite.length > 0) {
    // Files that failed on their own are recorded first, in their own
    // transaction: a batch write that keeps failing must not take their
    // reasons with it.
    await writeSettled(db, claim, settled, outcomes);
    settled.length = 0;
    const counted = { ...outcomes };
    try {
      oneByOne = await writeFastBatch(db, claim, toWrite, outcomes);
    } catch (error) {
      Object.assign(outcomes, counted);
      if (isTransient(error)) {
        throw error;
      }
      // One file's rows refused: write them one by one, so only that file fails.
      ctx.logger.warn("batch insert refused; writing its files one by one", {
        error: (error as Error).message,
      });
      oneByOne = toWrite;
    }
  }
  for (const prepared of oneByOne) {
    await writeOneOrFail(db, claim, prepared, settled, outcomes);
  }
  await writeSettled(db, claim, settled, outcomes);
}

export interface IngestBatchOptions {
  /** Aborted: stop between files and hand the unfinished rows back (BatchInterruptedError). */
  signal?: AbortSignal;
  /** How often to look again for rows another delivery holds (default 1 s). */
  pollMs?: number;
}

/**
 * Ingests the batch's ledger rows: claims what no live delivery holds,
 * ingests it, and waits for rows another delivery is working on, so the
 * batch ends only when every row is finished. On any throw this delivery's
 * unfinished rows are handed back.
 */
export async function ingestBatch(
  db: Db,
  ctx: IngestContext,
  ids: number[],
  options: IngestBatchOptions = {},
): Promise<BatchReport> {
  const claim: Claim = {
    token: randomUUID(),
    worker: ctx.worker,
    leaseSeconds: ctx.leaseSeconds ?? DEFAULT_LEASE_SECONDS,
  };
  const outcomes = emptyOutcomes();
  let claimed = 0;
  const renewal = setInterval(
    () =>
      void db
        .withClient((c) => renewLease(c, claim, ids))
        .catch((error: unknown) =>
          ctx.logger.debug("lease renewal failed", {
            error: (error as Error).message,
          }),
        ),
    (claim.leaseSeconds * 1000) / 3,
  );
  renewal.unref();
  try {
    for (;;) {
      const entries = await db.withClient((c) => claimRows(c, ids, claim));
      claimed += entries.length;
      if (entries.length > 0) {
        await ingestClaimed(db, ctx, claim, entries, outcomes, options.signal);
      }
      if (
        (await db.withClient((c) => heldElsewhere(c, ids, claim.token))) === 0
      ) {
        return { claimed, outcomes };
      }
      if (options.signal?.aborted === true) {
        throw new BatchInterruptedError();
      }
      await sleep(options.pollMs ?? 1000, options.signal);
    }
  } catch (error) {
    await db
      .withClient((c) => releaseClaim(c, claim.token, ids))
      .catch(
        () => undefined, // its lease runs out instead
      );
    throw error;
  } finally {
    clearInterval(renewal);
  }
}
