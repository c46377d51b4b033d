/**
 * Previews in the archive (DOMAIN.md §4): where a file's preview goes, the
 * reference's keep-unless-forced and scavenge rules, and the `preview` rows.
 *
 * - Name (v3): the file's key `path/filename` without `.bz2`, then without
 *   `.fits`, plus `.jpg`: 2021/N20210101S0001.fits.bz2 → 2021/N20210101S0001.jpg.
 * - Location: a directory or s3://bucket/prefix (`--previews`), by default
 *   `previews/` under the archive's storage, the reference's v2 default.
 * - Unless forced, an existing preview is kept and only its row is made
 *   sure of: a rebuild into a fresh database then re-renders nothing that is
 *   already there. Scavenging never renders: it records what exists.
 * - A file whose data cannot make a picture has no preview and no row.
 *   (The rows themselves are written by lib/archive-writer.ts.)
 *
 * The JPEG is written before the row is committed, whole or not at all
 * (Storage.write), so a worker that dies in between leaves a preview that the
 * next attempt keeps: effects are the same however often a file is done.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { finished, pipeline } from "node:stream/promises";

import type { Storage, StorageSet } from "../storage/index.js";
import type { PreviewOutcome } from "./preview.js";
import type { PreviewPool, PreviewPoolOptions } from "./render-thread.js";

/** The reference's v3 preview name for a stored file. */
export function previewName(path: string, filename: string): string {
  const key = path === "" ? filename : `${path}/${filename}`;
  return `${key.replace(/\.bz2$/i, "").replace(/\.fits$/i, "")}.jpg`;
}

/** `--previews`, or `previews/` under the archive's storage. */
export function previewLocation(
  storage: string,
  previews: string | undefined,
): string {
  if (previews !== undefined) {
    return previews;
  }
  return `${storage.replace(/\/+$/, "")}/previews`;
}

export type PreviewResult =
  /** Rendered and stored. */
  | { kind: "made"; name: string; bytes: number }
  /** Already there and not forced: only the row is made sure of. */
  | { kind: "kept"; name: string }
  /** Scavenging found nothing: no row. */
  | { kind: "missing"; name: string }
  /** The data cannot make a picture (tables, spectra, empty data). */
  | { kind: "none"; name: string; reason: string };

export interface PreviewRequest {
  /** The archive storage holding the file, and where in it. */
  storage: Storage;
  path: string;
  filename: string;
  force: boolean;
  scavengeOnly: boolean;
}

export class Previewer {
  constructor(
    /** Where previews are stored. */
    readonly previews: Storage,
    private readonly pool: PreviewPool,
    /** Where files from S3 are staged for rendering. */
    private readonly stagingDir: string = tmpdir(),
  ) {}

  async exists(name: string): Promise<boolean> {
    const { dir, base } = split(name);
    return (await this.previews.stat(dir, base)) !== undefined;
  }

  /**
   * The preview of one stored file, by the rules at the top of this file.
   * `local` is a copy already on this machine (the ingest worker's), if any.
   * A damaged file rejects with its FitsFormatError.
   */
  async make(request: PreviewRequest, local?: string): Promise<PreviewResult> {
    const name = previewName(request.path, request.filename);
    if (!request.force && (await this.exists(name))) {
      return { kind: "kept", name };
    }
    if (request.scavengeOnly) {
      return { kind: "missing", name };
    }
    const outcome = await this.render(request, local);
    if (outcome.kind === "no-preview") {
      return { kind: "none", name, reason: outcome.reason };
    }
    await this.store(name, outcome.jpeg);
    return { kind: "made", name, bytes: outcome.jpeg.length };
  }

  /** Renders from the local copy, the storage's own file, or a staged download. */
  render(request: PreviewRequest, local?: string): Promise<PreviewOutcome> {
    const path =
      local ?? request.storage.localPath?.(request.path, request.filename);
    if (path !== undefined) {
      return this.pool.make(path);
    }
    return withStagedCopy(
      request.storage,
      request.path,
      request.filename,
      this.stagingDir,
      (staged) => this.pool.make(staged),
    );
  }

  async store(name: string, jpeg: Buffer): Promise<void> {
    const { dir, base } = split(name);
    // S3 keeps the md5 as metadata, as the reference's upload does.
    await this.previews.write(dir, base, jpeg, {
      md5: createHash("md5").update(jpeg).digest("hex"),
    });
  }
}

/**
 * The rendering pool, loaded when first wanted: it brings sharp and its
 * native libraries, which a worker without previews need not load (a CLI
 * start is a few hundred milliseconds of module loading already).
 */
export async function newPreviewPool(
  options: PreviewPoolOptions = {},
): Promise<PreviewPool> {
  const { PreviewPool } = await import("./render-thread.js");
  return new PreviewPool(options);
}

/** A Previewer per archive storage location, sharing one rendering pool. */
export function previewers(
  storages: StorageSet,
  pool: PreviewPool,
  options: { previews?: string; stagingDir?: string } = {},
): (location: string) => Previewer {
  const made = new Map<string, Previewer>();
  return (location) => {
    let previewer = made.get(location);
    if (previewer === undefined) {
      previewer = new Previewer(
        storages.get(previewLocation(location, options.previews)),
        pool,
        options.stagingDir,
      );
      made.set(location, previewer);
    }
    return previewer;
  };
}

function split(name: string): { dir: string; base: string } {
  const slash = name.lastIndexOf("/");
  return slash < 0
    ? { dir: "", base: name }
    : { dir: name.slice(0, slash), base: name.slice(slash + 1) };
}

/**
 * A private temporary copy of a stored file under its own name (so `.bz2` is
 * recognised), for rendering, which reads pixels by offset.
 */
export class StagedCopy {
  private constructor(
    private readonly dir: string,
    readonly file: string,
  ) {}

  static async create(
    stagingDir: string,
    filename: string,
  ): Promise<StagedCopy> {
    const dir = await mkdtemp(join(stagingDir, "fitsfleet-stage-"));
    return new StagedCopy(dir, join(dir, filename));
  }

  /** Passes `bytes` on unchanged while writing them to the copy. */
  async *tee(bytes: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const out = createWriteStream(this.file);
    try {
      for await (const chunk of bytes) {
        if (!out.write(chunk)) {
          await once(out, "drain");
        }
        yield chunk;
      }
      out.end();
      await finished(out);
    } finally {
      out.destroy();
    }
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/** Downloads a stored file into a StagedCopy for `use`, removed afterwards. */
export async function withStagedCopy<T>(
  storage: Storage,
  path: string,
  filename: string,
  stagingDir: string,
  use: (file: string) => Promise<T>,
): Promise<T> {
  const staged = await StagedCopy.create(stagingDir, filename);
  try {
    await pipeline(
      await storage.read(path, filename),
      createWriteStream(staged.file),
    );
    return await use(staged.file);
  } finally {
    await staged.remove();
  }
}
