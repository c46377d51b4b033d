/**
 * Turns the operator's `--from` into an upgrade source: a postgres:// URL is a
 * live database; a path is a dump (custom file or directory); an s3:// URL is
 * a dump that is first downloaded next to its manifest, if it has one. A
 * manifest, when given or present beside the dump, is verified before anything
 * else reads the dump. Scratch folders that killed runs left are swept first
 * (workdir.ts).
 */
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";

import { UsageError } from "../errors.js";
import type { Logger } from "../logger.js";
import { openStorage, type Storage } from "../storage/index.js";
import {
  defaultManifestPath,
  type DumpManifest,
  verifyManifest,
} from "./manifest.js";
import { DatabaseSource, DumpSource, type UpgradeSource } from "./source.js";
import { makeWorkDir, removeWorkDir, sweepStaleWorkDirs } from "./workdir.js";

export interface OpenSourceOptions {
  /** An explicit manifest; otherwise `<dump>.manifest.json` is used when it exists. */
  manifest?: string;
  s3Endpoint?: string;
  logger?: Logger;
}

export interface OpenedSource {
  source: UpgradeSource;
  /** The manifest that was verified, if any. */
  manifest: DumpManifest | undefined;
  manifestPath: string | undefined;
  /** Removes downloaded copies. */
  cleanup(): Promise<void>;
}

function parseS3Url(url: string): { location: string; name: string } {
  const match = /^(s3:\/\/[^/]+(?:\/.*)?)\/([^/]+)\/*$/.exec(url);
  if (match === null) {
    throw new UsageError(
      `--from ${url}: an S3 location is s3://BUCKET/KEY (a dump file, or a directory-format dump's prefix)`,
    );
  }
  return { location: match[1]!, name: match[2]! };
}

async function download(
  storage: Storage,
  path: string,
  name: string,
  to: string,
): Promise<void> {
  mkdirSync(dirname(to), { recursive: true });
  await pipeline(await storage.read(path, name), createWriteStream(to));
}

/** Copies an S3 dump (a file, or every object under a directory dump's prefix) and its manifest to `dir`. */
async function fetchS3Dump(
  url: string,
  dir: string,
  endpoint: string | undefined,
): Promise<{ dumpPath: string; manifestPath: string | undefined }> {
  const { location, name } = parseS3Url(url);
  const storage = openStorage(location, { s3Endpoint: endpoint });
  try {
    const dumpPath = join(dir, name);
    if ((await storage.stat("", name)) !== undefined) {
      await download(storage, "", name, dumpPath);
    } else {
      let files = 0;
      for await (const page of storage.list({ path: name })) {
        for (const entry of page) {
          files++;
          await download(
            storage,
            entry.path,
            entry.name,
            join(dumpPath, entry.path.slice(name.length + 1), entry.name),
          );
        }
      }
      if (files === 0) {
        throw new UsageError(
          `--from ${url}: no such object or prefix in ${location}`,
        );
      }
    }
    const manifestName = `${name}.manifest.json`;
    let manifestPath: string | undefined;
    if ((await storage.stat("", manifestName)) !== undefined) {
      manifestPath = defaultManifestPath(dumpPath);
      await download(storage, "", manifestName, manifestPath);
    }
    return { dumpPath, manifestPath };
  } finally {
    await storage.close();
  }
}

export async function openSource(
  from: string,
  options: OpenSourceOptions = {},
): Promise<OpenedSource> {
  sweepStaleWorkDirs({ logger: options.logger });
  if (/^postgres(ql)?:\/\//.test(from)) {
    if (options.manifest !== undefined) {
      throw new UsageError("--manifest applies to a dump, not a live database");
    }
    const source = await DatabaseSource.open(from);
    return {
      source,
      manifest: undefined,
      manifestPath: undefined,
      cleanup: () => source.close(),
    };
  }
  let dumpPath = from;
  let manifestPath = options.manifest;
  let downloaded: string | undefined;
  try {
    if (from.startsWith("s3://")) {
      downloaded = makeWorkDir("fitsfleet-s3-dump-");
      const fetched = await fetchS3Dump(from, downloaded, options.s3Endpoint);
      dumpPath = fetched.dumpPath;
      manifestPath ??= fetched.manifestPath;
    } else if (!existsSync(from)) {
      throw new UsageError(
        `--from ${from}: no such file or directory; give a pg_dump archive (custom file or directory) or a postgres:// URL`,
      );
    }
    if (
      manifestPath === undefined &&
      existsSync(defaultManifestPath(dumpPath))
    ) {
      manifestPath = defaultManifestPath(dumpPath);
    }
    let manifest: DumpManifest | undefined;
    if (manifestPath !== undefined) {
      manifest = await verifyManifest(dumpPath, manifestPath);
    } else {
      options.logger?.warn(
        "the dump has no manifest, so its integrity cannot be checked; `fitsfleet upgrade manifest` writes one",
        { dump: from },
      );
    }
    const source = new DumpSource(dumpPath);
    const copy = downloaded;
    return {
      source,
      manifest,
      manifestPath,
      cleanup: async () => {
        await source.close();
        if (copy !== undefined) {
          removeWorkDir(copy);
        }
      },
    };
  } catch (error) {
    // A failed or partial download is of no use to anyone: it goes now.
    if (downloaded !== undefined) {
      removeWorkDir(downloaded);
    }
    throw error;
  }
}
