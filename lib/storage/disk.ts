/**
 * A storage root on a local (or mounted) file system.
 *
 * Listing walks the tree with `readdir(withFileTypes)` and stats every file
 * (size and mtime are needed, so one stat per file is unavoidable). While
 * stats come from the kernel's cache (a few microseconds each) they run
 * synchronously, in slices of SYNC_SLICE_MS between turns of the event loop:
 * a stat through libuv's thread pool costs several times the stat itself
 * (a thread handoff and a callback), so this is about twice as fast on a
 * warm tree. As soon as a slice shows stats going to the disk or the network
 * (over SLOW_STAT_MS on average), the walk switches for good to `concurrency`
 * stats in flight through the callback API (half the CPU of
 * `fs.promises.stat`), which overlaps the round trips of a cold disk or NFS.
 * bench/storage-list.ts measures both against `find`.
 *
 * Symbolic links are followed, to files and to folders (a storage root often
 * links folders on other disks in), as `find -L` does; a link to one of its
 * own ancestor folders is not followed, so a loop ends instead of repeating.
 * A dangling link, or a file that disappears while we list, is left out. A
 * folder we may not read is an error naming it, never a silent gap. Our own
 * temporary files (see `write`) are left out of listings.
 */
import { randomBytes } from "node:crypto";
import { readdir, stat, type Stats, statSync } from "node:fs";
import {
  type FileHandle,
  mkdir,
  open,
  rename,
  stat as statPromise,
  unlink,
} from "node:fs/promises";
import { resolve } from "node:path";
import type { Readable } from "node:stream";

import { EXIT, FitsfleetError, PreconditionError } from "../errors.js";
import type {
  ListOptions,
  OpenStorageOptions,
  Storage,
  StorageEntry,
  TransientRead,
  WriteOptions,
} from "./index.js";
import { checkName, normaliseStoragePath } from "./paths.js";

const PAGE_SIZE = 1000;
const DEFAULT_CONCURRENCY = 64;
/** Folders read at once; a folder yields many stats, so a few are enough. */
const READDIR_CONCURRENCY = 4;
/** Finished pages held for a slow consumer before the walk pauses. */
const MAX_READY_PAGES = 4;
/** Synchronous stats run in slices of this long, then yield to the event loop. */
const SYNC_SLICE_MS = 4;
/** An average stat slower than this is not served from cache: go asynchronous. */
const SLOW_STAT_MS = 0.1;
/** `write` stages here first; listings skip these names. */
export const TEMP_PREFIX = ".fitsfleet-tmp-";
/** The largest read of a file (see `read`). */
const READ_CHUNK = 1024 * 1024;

export interface DiskStorageOptions extends OpenStorageOptions {
  /** "adaptive" (default) as described above; "async" always uses the thread pool (for benchmarks). */
  statMode?: "adaptive" | "async";
}

interface Folder {
  /** Relative to the root, "" at the top. */
  rel: string;
  abs: string;
  /** `dev:ino` of this folder and those above it in this walk, for loop detection. */
  ancestors: readonly string[];
}

interface Candidate {
  folder: Folder;
  name: string;
  abs: string;
}

function joinRel(path: string, name: string): string {
  return path === "" ? name : `${path}/${name}`;
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

function deniedError(
  what: string,
  abs: string,
  cause: unknown,
): FitsfleetError {
  return new FitsfleetError(
    "storage-denied",
    EXIT.failed,
    `cannot ${what} ${abs}: permission denied`,
    {
      cause,
      suggestion:
        "give the user running fitsfleet read (and, for folders, execute) permission on it, or list another --path",
      context: { path: abs },
    },
  );
}

function fileSystemError(
  what: string,
  abs: string,
  cause: unknown,
): FitsfleetError {
  const code = errnoCode(cause);
  if (code === "EACCES" || code === "EPERM") {
    return deniedError(what, abs, cause);
  }
  return new FitsfleetError(
    "storage",
    EXIT.failed,
    `cannot ${what} ${abs}: ${(cause as Error).message}`,
    { cause, context: { path: abs } },
  );
}

/**
 * The walk: folders are read a few at a time, and every candidate (a file, a
 * link, a sub-folder) is stat'ed, synchronously in slices or with at most
 * `concurrency` stats in flight (see the top of this file).
 * Entries collect into pages that the async generator hands out; when the
 * consumer falls behind by MAX_READY_PAGES pages, no new work starts.
 */
class Walk {
  private readonly folders: Folder[] = [];
  private readonly candidates: Candidate[] = [];
  private readonly ready: StorageEntry[][] = [];
  private page: StorageEntry[] = [];
  private stats = 0;
  private readdirs = 0;
  private syncSliceScheduled = false;
  private finished = false;
  private stopped = false;
  private failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly recursive: boolean,
    private readonly concurrency: number,
    private readonly signal: AbortSignal | undefined,
    private syncStats: boolean,
  ) {}

  async *pages(start: Folder): AsyncGenerator<StorageEntry[]> {
    const onAbort = () => this.notify();
    this.signal?.addEventListener("abort", onAbort);
    this.folders.push(start);
    try {
      this.pump();
      for (;;) {
        this.signal?.throwIfAborted();
        if (this.failure !== undefined) {
          throw this.failure.error;
        }
        const page = this.ready.shift();
        if (page !== undefined) {
          this.pump();
          yield page;
          continue;
        }
        if (this.finished) {
          return;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      this.stopped = true;
      this.signal?.removeEventListener("abort", onAbort);
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private fail(error: unknown): void {
    this.failure ??= { error };
    this.notify();
  }

  private pump(): void {
    if (this.stopped || this.failure !== undefined || this.signal?.aborted) {
      return;
    }
    if (this.syncStats) {
      if (
        !this.syncSliceScheduled &&
        this.ready.length < MAX_READY_PAGES &&
        this.candidates.length > 0
      ) {
        this.syncSliceScheduled = true;
        setImmediate(this.syncSlice);
      }
    } else {
      while (
        this.ready.length < MAX_READY_PAGES &&
        this.stats < this.concurrency &&
        this.candidates.length > 0
      ) {
        this.statCandidate(this.candidates.pop()!);
      }
    }
    while (
      this.ready.length < MAX_READY_PAGES &&
      this.readdirs < READDIR_CONCURRENCY &&
      this.candidates.length < Math.max(this.concurrency * 2, PAGE_SIZE) &&
      this.folders.length > 0
    ) {
      this.readFolder(this.folders.pop()!);
    }
    if (
      !this.syncSliceScheduled &&
      this.stats === 0 &&
      this.readdirs === 0 &&
      this.candidates.length === 0 &&
      this.folders.length === 0 &&
      !this.finished
    ) {
      if (this.page.length > 0) {
        this.ready.push(this.page);
        this.page = [];
      }
      this.finished = true;
      this.notify();
    }
  }

  private readFolder(folder: Folder): void {
    this.readdirs++;
    readdir(folder.abs, { withFileTypes: true }, (error, entries) => {
      this.readdirs--;
      if (error !== null) {
        const code = errnoCode(error);
        // Removed or replaced while we listed: nothing left to list there.
        if (code !== "ENOENT" && code !== "ENOTDIR") {
          this.fail(fileSystemError("read the folder", folder.abs, error));
          return;
        }
      } else {
        for (const entry of entries) {
          if (
            entry.isFile() ||
            entry.isSymbolicLink() ||
            (this.recursive && entry.isDirectory())
          ) {
            if (!entry.name.startsWith(TEMP_PREFIX)) {
              this.candidates.push({
                folder,
                name: entry.name,
                abs: `${folder.abs}/${entry.name}`,
              });
            }
          }
        }
      }
      this.pump();
    });
  }

  /** Stats from the cache, synchronously, for one slice of time. */
  private readonly syncSlice = (): void => {
    this.syncSliceScheduled = false;
    const start = performance.now();
    let done = 0;
    while (
      !this.stopped &&
      this.failure === undefined &&
      this.ready.length < MAX_READY_PAGES &&
      this.candidates.length > 0
    ) {
      const candidate = this.candidates.pop()!;
      let stats: Stats | undefined;
      try {
        stats = statSync(candidate.abs, { throwIfNoEntry: false });
      } catch (error) {
        if (!this.statFailed(candidate, error)) {
          return;
        }
      }
      if (stats !== undefined) {
        this.found(candidate, stats);
      }
      done++;
      const elapsed = performance.now() - start;
      if (elapsed > SYNC_SLICE_MS) {
        if (elapsed / done > SLOW_STAT_MS) {
          this.syncStats = false;
        }
        break;
      }
    }
    this.pump();
  };

  /** False (and the walk failed) unless the error only means "not a file". */
  private statFailed(candidate: Candidate, error: unknown): boolean {
    const code = errnoCode(error);
    // Gone since readdir, a dangling link, or a link loop: not a file.
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") {
      return true;
    }
    this.fail(fileSystemError("stat", candidate.abs, error));
    return false;
  }

  private statCandidate(candidate: Candidate): void {
    this.stats++;
    stat(candidate.abs, (error, stats) => {
      this.stats--;
      if (error !== null) {
        if (!this.statFailed(candidate, error)) {
          return;
        }
      } else {
        this.found(candidate, stats);
      }
      this.pump();
    });
  }

  private found(candidate: Candidate, stats: Stats): void {
    const { folder, name } = candidate;
    if (stats.isFile()) {
      this.page.push({
        path: folder.rel,
        name,
        size: stats.size,
        lastModified: stats.mtime,
      });
      if (this.page.length >= PAGE_SIZE) {
        this.ready.push(this.page);
        this.page = [];
        this.notify();
      }
    } else if (this.recursive && stats.isDirectory()) {
      const id = `${stats.dev}:${stats.ino}`;
      if (!folder.ancestors.includes(id)) {
        this.folders.push({
          rel: joinRel(folder.rel, name),
          abs: candidate.abs,
          ancestors: [...folder.ancestors, id],
        });
      }
    }
  }
}

export class DiskStorage implements Storage {
  readonly kind = "disk";
  readonly description: string;
  /** The absolute storage root. */
  readonly root: string;
  private readonly concurrency: number;
  private readonly statMode: "adaptive" | "async";
  /** readTransient's buffers, back for the next file when a read ends. */
  private readonly buffers: Buffer[] = [];

  constructor(location: string, options: DiskStorageOptions = {}) {
    this.root = resolve(location);
    this.description = this.root;
    this.concurrency = Math.max(
      1,
      options.listConcurrency ?? DEFAULT_CONCURRENCY,
    );
    this.statMode = options.statMode ?? "adaptive";
  }

  private absolute(path: string, name?: string): string {
    const rel = normaliseStoragePath(path);
    const dir = rel === "" ? this.root : `${this.root}/${rel}`;
    return name === undefined ? dir : `${dir}/${checkName(name)}`;
  }

  list(options: ListOptions = {}): AsyncIterable<StorageEntry[]> {
    return this.walk(
      normaliseStoragePath(options.path ?? ""),
      options.recursive ?? true,
      options.signal,
    );
  }

  private async *walk(
    path: string,
    recursive: boolean,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<StorageEntry[]> {
    const abs = this.absolute(path);
    let stats: Stats;
    try {
      stats = await statPromise(abs);
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") {
        throw new PreconditionError(
          path === ""
            ? `the storage root ${this.root} does not exist`
            : `there is no folder ${path} under the storage root ${this.root}`,
          {
            suggestion:
              "check the storage location (and --path); a network file system may need mounting",
          },
        );
      }
      throw fileSystemError("read the folder", abs, error);
    }
    if (!stats.isDirectory()) {
      throw new PreconditionError(`${abs} is not a folder`, {
        suggestion: "give the folder that holds the archive's files",
      });
    }
    const walk = new Walk(
      recursive,
      this.concurrency,
      signal,
      this.statMode === "adaptive",
    );
    yield* walk.pages({
      rel: path,
      abs,
      ancestors: [`${stats.dev}:${stats.ino}`],
    });
  }

  async stat(path: string, name: string): Promise<StorageEntry | undefined> {
    const abs = this.absolute(path, name);
    let stats: Stats;
    try {
      stats = await statPromise(abs);
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") {
        return undefined;
      }
      throw fileSystemError("stat", abs, error);
    }
    if (!stats.isFile()) {
      return undefined;
    }
    return {
      path: normaliseStoragePath(path),
      name,
      size: stats.size,
      lastModified: stats.mtime,
    };
  }

  async read(path: string, name: string): Promise<Readable> {
    const { handle, stats } = await this.openFile(path, name);
    // Reads of up to 1 MiB, bounded by the size: a small file is one read and
    // one buffer of its own size, where 64 KiB reads cost a round trip each.
    return handle.createReadStream({
      highWaterMark: READ_CHUNK,
      ...(stats.size > 0 ? { end: stats.size - 1 } : {}),
    });
  }

  localPath(path: string, name: string): string {
    return this.absolute(path, name);
  }

  async readTransient(path: string, name: string): Promise<TransientRead> {
    const { handle, abs, stats } = await this.openFile(path, name);
    const buffers = this.buffers;
    // Up to the size the open file had, as `read` does: one read for a small file.
    const size = stats.size;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      const buffer = buffers.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK);
      try {
        let position = 0;
        while (position < size) {
          let bytesRead: number;
          try {
            ({ bytesRead } = await handle.read(
              buffer,
              0,
              Math.min(READ_CHUNK, size - position),
              position,
            ));
          } catch (error) {
            throw fileSystemError("read", abs, error);
          }
          if (bytesRead === 0) {
            return;
          }
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
        }
      } finally {
        buffers.push(buffer);
        await handle.close();
      }
    }
    return {
      entry: {
        path: normaliseStoragePath(path),
        name,
        size,
        lastModified: stats.mtime,
      },
      bytes: chunks(),
    };
  }

  /** Opens a regular file for reading; a missing one is a StorageNotFoundError. */
  private async openFile(
    path: string,
    name: string,
  ): Promise<{ handle: FileHandle; stats: Stats; abs: string }> {
    const abs = this.absolute(path, name);
    let handle;
    try {
      handle = await open(abs, "r");
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") {
        throw notFound(abs, error);
      }
      throw fileSystemError("read", abs, error);
    }
    const stats = await handle.stat();
    if (!stats.isFile()) {
      await handle.close();
      throw notFound(abs, undefined);
    }
    return { handle, stats, abs };
  }

  async write(
    path: string,
    name: string,
    body: Buffer | Readable,
    _options: WriteOptions = {},
  ): Promise<void> {
    const dir = this.absolute(path);
    const target = this.absolute(path, name);
    const temp = `${dir}/${TEMP_PREFIX}${randomBytes(8).toString("hex")}`;
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw fileSystemError("create the folder", dir, error);
    }
    let handle;
    try {
      handle = await open(temp, "wx");
    } catch (error) {
      throw fileSystemError("write in", dir, error);
    }
    let closed = false;
    try {
      if (Buffer.isBuffer(body)) {
        await handle.writeFile(body);
      } else {
        // writeFile on a handle appends at the current position, whole.
        for await (const chunk of body) {
          await handle.writeFile(
            typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer),
          );
        }
      }
      // Durable before visible: a crash never leaves a renamed empty file.
      await handle.sync();
      closed = true;
      await handle.close();
      await rename(temp, target);
    } catch (error) {
      if (!closed) {
        await handle.close().catch(() => undefined);
      }
      await unlink(temp).catch(() => undefined);
      if (error instanceof FitsfleetError) {
        throw error;
      }
      throw fileSystemError("write", target, error);
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}

function notFound(abs: string, cause: unknown): FitsfleetError {
  return new FitsfleetError(
    "storage-not-found",
    EXIT.failed,
    `no such file: ${abs}`,
    { cause, context: { path: abs } },
  );
}
