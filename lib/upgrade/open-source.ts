/**
 * Turns the operator's `--from` into an upgrade source: a postgres:// URL is a
 * live database; a path is a dump (custom file or directory); an s3:// URL is
 * a dump that is first downloaded next to its manifest, if it has one. A
 * manifest, when given or present beside the dump, is verified before anything
 * else reads the dump.
 */
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

import type { S3Client } from "@aws-sdk/client-s3";

import { ExternalServiceError, UsageError } from "../errors.js";
import type { Logger } from "../logger.js";
import {
  defaultManifestPath,
  type DumpManifest,
  verifyManifest,
} from "./manifest.js";
import { DatabaseSource, DumpSource, type UpgradeSource } from "./source.js";

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

// The AWS SDK takes a noticeable time to load; only s3:// sources need it.
async function s3Client(endpoint: string | undefined): Promise<S3Client> {
  const { S3Client } = await import("@aws-sdk/client-s3");
  return new S3Client({
    region:
      process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
    ...(endpoint === undefined ? {} : { endpoint, forcePathStyle: true }),
  });
}

function parseS3Url(url: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (match === null) {
    throw new UsageError(
      `--from ${url}: an S3 location is s3://BUCKET/KEY (a dump file, or a directory-format dump's prefix)`,
    );
  }
  return { bucket: match[1]!, key: match[2]!.replace(/\/+$/, "") };
}

async function download(
  client: S3Client,
  bucket: string,
  key: string,
  path: string,
): Promise<void> {
  const { GetObjectCommand } = await import("@aws-sdk/client-s3");
  const object = await client.send(
    new GetObjectCommand({ Bucket: bucket, Key: key }),
  );
  mkdirSync(dirname(path), { recursive: true });
  await pipeline(object.Body as Readable, createWriteStream(path));
}

/** Copies an S3 dump (file, or every object under a directory dump's prefix) and its manifest to `dir`. */
async function fetchS3Dump(
  url: string,
  dir: string,
  endpoint: string | undefined,
): Promise<{ dumpPath: string; manifestPath: string | undefined }> {
  const { bucket, key } = parseS3Url(url);
  const client = await s3Client(endpoint);
  const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
  const name = key.split("/").pop()!;
  try {
    const listed: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: key,
          ContinuationToken: token,
        }),
      );
      listed.push(...(page.Contents ?? []).map((o) => o.Key!));
      token =
        page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    const manifestKey = `${key}.manifest.json`;
    const dumpPath = join(dir, name);
    const directoryObjects = listed.filter((k) => k.startsWith(`${key}/`));
    if (directoryObjects.length > 0) {
      for (const k of directoryObjects) {
        await download(
          client,
          bucket,
          k,
          join(dumpPath, k.slice(key.length + 1)),
        );
      }
    } else if (listed.includes(key)) {
      await download(client, bucket, key, dumpPath);
    } else {
      throw new UsageError(
        `--from ${url}: no such object or prefix in bucket ${bucket}`,
      );
    }
    let manifestPath: string | undefined;
    if (listed.includes(manifestKey)) {
      manifestPath = defaultManifestPath(dumpPath);
      await download(client, bucket, manifestKey, manifestPath);
    }
    return { dumpPath, manifestPath };
  } catch (error) {
    if (error instanceof UsageError) {
      throw error;
    }
    throw new ExternalServiceError(
      "s3",
      `cannot read ${url}: ${(error as Error).message}`,
      {
        cause: error,
        suggestion:
          "check the bucket and key, the AWS credentials, and --s3-endpoint for a non-AWS store",
      },
    );
  } finally {
    client.destroy();
  }
}

export async function openSource(
  from: string,
  options: OpenSourceOptions = {},
): Promise<OpenedSource> {
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
  if (from.startsWith("s3://")) {
    downloaded = mkdtempSync(join(tmpdir(), "fitsfleet-s3-dump-"));
    const fetched = await fetchS3Dump(from, downloaded, options.s3Endpoint);
    dumpPath = fetched.dumpPath;
    manifestPath ??= fetched.manifestPath;
  } else if (!existsSync(from)) {
    throw new UsageError(
      `--from ${from}: no such file or directory; give a pg_dump archive (custom file or directory) or a postgres:// URL`,
    );
  }
  if (manifestPath === undefined && existsSync(defaultManifestPath(dumpPath))) {
    manifestPath = defaultManifestPath(dumpPath);
  }
  let manifest: DumpManifest | undefined;
  try {
    if (manifestPath !== undefined) {
      manifest = await verifyManifest(dumpPath, manifestPath);
    } else {
      options.logger?.warn(
        "the dump has no manifest, so its integrity cannot be checked; `fitsfleet upgrade manifest` writes one",
        { dump: from },
      );
    }
  } catch (error) {
    if (downloaded !== undefined) {
      rmSync(downloaded, { recursive: true, force: true });
    }
    throw error;
  }
  const source = new DumpSource(dumpPath);
  return {
    source,
    manifest,
    manifestPath,
    cleanup: async () => {
      await source.close();
      if (downloaded !== undefined) {
        rmSync(downloaded, { recursive: true, force: true });
      }
    },
  };
}
