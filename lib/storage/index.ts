/**
 * One interface over where the archive's files live: a local storage root
 * (`/data/archive`) or an S3 bucket and prefix (`s3://bucket/prefix`). A file
 * is `path/name` under the root, where `path` is `diskfile.path` (the folder
 * relative to the root, "" at the top) and `name` is `diskfile.filename`; on
 * S3 its key is `prefix/path/name`.
 *
 * `rebuild enqueue` lists (millions of files, in pages, in parallel), ingest
 * workers `stat` and `read` one file at a time, previews `write`.
 *
 * Errors are FitsfleetErrors: a missing file on `read` has code
 * `storage-not-found`, a permission problem on disk `storage-denied`, any
 * other file system failure `storage` (all exit 1); S3 that cannot be reached or refuses us is an
 * ExternalServiceError (exit 4); a missing storage root or bucket is a
 * PreconditionError (exit 3); a `path` or `name` that is not a plain relative
 * name (`..`, a leading `/`, a NUL) is a UsageError.
 */
import type { Readable } from "node:stream";

import { DiskStorage } from "./disk.js";
import { S3Storage } from "./s3.js";

export interface StorageEntry {
  /** The folder relative to the root, "" at the top, without leading or trailing "/". */
  path: string;
  /** The file name, e.g. N20200127S0023.fits.bz2. */
  name: string;
  size: number;
  lastModified: Date;
  /** S3: the object's user metadata `md5` (set by the reference's upload_file and by `write`), filled by `stat` only; disk: undefined. */
  md5?: string;
}

export interface ListOptions {
  /**
   * Only this folder (relative to the root) and, when recursive, below it.
   * A missing folder is a PreconditionError on disk; S3 has no folders, so
   * there it lists nothing.
   */
  path?: string;
  /** Default true; false lists one folder level. */
  recursive?: boolean;
  signal?: AbortSignal;
}

export interface WriteOptions {
  /** S3: stored as the object's user metadata `md5`; disk: ignored. */
  md5?: string;
}

/** `readTransient`'s answer: the file's entry as opened, and its bytes. */
export interface TransientRead {
  entry: StorageEntry;
  bytes: AsyncIterable<Uint8Array>;
}

export interface Storage {
  readonly kind: "disk" | "s3";
  /** Where it is, for messages: "/data/archive" or "s3://bucket/prefix". */
  readonly description: string;
  /**
   * Every file under the root (or `options.path`), in pages of up to about
   * 1000 entries, in no particular order. Listings leave `md5` undefined.
   */
  list(options?: ListOptions): AsyncIterable<StorageEntry[]>;
  /** The file's entry, or undefined when it does not exist (or is not a file). */
  stat(path: string, name: string): Promise<StorageEntry | undefined>;
  /** A stream of the stored bytes; a missing file rejects with code `storage-not-found`. */
  read(path: string, name: string): Promise<Readable>;
  /**
   * The file's bytes through one reused buffer: each chunk is valid only
   * until the next is asked for. For consumers that are done with a chunk at
   * once (hashing, scanning), it saves allocating and faulting in fresh
   * memory for every megabyte. Storages without it are read with `read`.
   */
  readTransient?(path: string, name: string): Promise<TransientRead>;
  /** The file's path on this machine, for tools that need a file rather than a stream; disk only. */
  localPath?(path: string, name: string): string;
  /**
   * Stores a file whole or not at all: on disk through a temporary file in
   * the same folder and a rename; on S3 one PUT (or a multipart upload for a
   * large stream), which S3 makes visible only when complete.
   */
  write(
    path: string,
    name: string,
    body: Buffer | Readable,
    options?: WriteOptions,
  ): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStorageOptions {
  /** A non-AWS S3 endpoint (MinIO, s3rver…); path-style addressing is used with it. */
  s3Endpoint?: string;
  /**
   * S3 attempts per request, retries included, with the SDK's backoff
   * (throttling, 5xx, dropped connections). Default 8.
   */
  s3MaxAttempts?: number;
  /**
   * Operations in flight while listing: on disk `stat` calls (default 64), on
   * S3 ListObjectsV2 requests (default 16; 1 lists sequentially).
   */
  listConcurrency?: number;
}

/** A storage for `location`: "s3://bucket[/prefix]" or a local directory. */
export function openStorage(
  location: string,
  options: OpenStorageOptions = {},
): Storage {
  if (/^s3:\/\//i.test(location)) {
    return new S3Storage(location, options);
  }
  return new DiskStorage(location, options);
}

export { DiskStorage } from "./disk.js";
export { S3Storage } from "./s3.js";

/** Storages opened once per location, for a process that reads several; `closeAll` at the end. */
export class StorageSet {
  private readonly opened = new Map<string, Storage>();

  constructor(private readonly options: OpenStorageOptions = {}) {}

  get(location: string): Storage {
    let storage = this.opened.get(location);
    if (storage === undefined) {
      storage = openStorage(location, this.options);
      this.opened.set(location, storage);
    }
    return storage;
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.opened.values()].map((s) => s.close().catch(() => undefined)),
    );
    this.opened.clear();
  }
}
