/**
 * Checksum manifests for dumps. `pg_restore --list` only checks an archive's
 * header and table of contents: a truncated or bit-flipped dump can list
 * fine and restore wrong data (RELIABILITY.md §1.7). A manifest records the
 * size and sha256 of every file of the dump when it is known good; it is
 * checked before the dump is used.
 *
 * The manifest of `backup.dump` is `backup.dump.manifest.json`; of a
 * directory-format dump `backup/`, `backup.manifest.json` beside it.
 */
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, relative } from "node:path";

import { z } from "zod";

import { FitsfleetError, PreconditionError } from "../errors.js";

const FORMAT = "fitsfleet-dump-manifest/1";

const manifestSchema = z.strictObject({
  format: z.literal(FORMAT),
  dump: z.string(),
  createdAt: z.string(),
  files: z.array(
    z.strictObject({
      path: z.string(),
      size: z.number().int().nonnegative(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
    }),
  ),
});

export type DumpManifest = z.infer<typeof manifestSchema>;

export function defaultManifestPath(dumpPath: string): string {
  const clean = dumpPath.replace(/\/+$/, "");
  return `${clean}.manifest.json`;
}

function dumpFiles(dumpPath: string): string[] {
  if (!statSync(dumpPath).isDirectory()) {
    return [dumpPath];
  }
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true })
      .flatMap((e) =>
        e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
      )
      .sort();
  return walk(dumpPath);
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, {
    highWaterMark: 1 << 20,
  })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}

function relativeName(dumpPath: string, file: string): string {
  return statSync(dumpPath).isDirectory()
    ? relative(dumpPath, file)
    : basename(file);
}

/** Hashes every file of the dump and writes the manifest (temp file, then rename). */
export async function writeManifest(
  dumpPath: string,
  manifestPath = defaultManifestPath(dumpPath),
): Promise<DumpManifest> {
  const files = [];
  for (const file of dumpFiles(dumpPath)) {
    files.push({
      path: relativeName(dumpPath, file),
      size: statSync(file).size,
      sha256: await sha256(file),
    });
  }
  const manifest: DumpManifest = {
    format: FORMAT,
    dump: basename(dumpPath.replace(/\/+$/, "")),
    createdAt: new Date().toISOString(),
    files,
  };
  const temporary = join(
    dirname(manifestPath),
    `.${basename(manifestPath)}.${process.pid}.tmp`,
  );
  writeFileSync(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(temporary, manifestPath);
  return manifest;
}

export class ManifestMismatchError extends FitsfleetError {
  constructor(
    readonly problems: string[],
    dumpPath: string,
  ) {
    super(
      "manifest-mismatch",
      1,
      [
        `${dumpPath} does not match its manifest (${problems.length} problem${problems.length === 1 ? "" : "s"}); nothing was written:`,
        ...problems.map((p) => `  - ${p}`),
      ].join("\n"),
      {
        suggestion:
          "the dump was damaged or changed after the manifest was written; copy it again from the backup, or take a new dump",
      },
    );
  }
}

/** Checks size and sha256 of every file; all problems are reported together. */
export async function verifyManifest(
  dumpPath: string,
  manifestPath = defaultManifestPath(dumpPath),
): Promise<DumpManifest> {
  let manifest: DumpManifest;
  try {
    manifest = manifestSchema.parse(
      JSON.parse(readFileSync(manifestPath, "utf8")),
    );
  } catch (error) {
    throw new PreconditionError(
      `${manifestPath}: not a readable fitsfleet dump manifest (${(error as Error).message.split("\n")[0]})`,
      {
        suggestion:
          "give the manifest written by `fitsfleet upgrade manifest`, or none",
      },
    );
  }
  const problems: string[] = [];
  const present = new Set(
    dumpFiles(dumpPath).map((f) => relativeName(dumpPath, f)),
  );
  for (const entry of manifest.files) {
    const file = statSync(dumpPath).isDirectory()
      ? join(dumpPath, entry.path)
      : dumpPath;
    if (!existsSync(file)) {
      problems.push(`${entry.path}: missing`);
      continue;
    }
    present.delete(entry.path);
    const size = statSync(file).size;
    if (size !== entry.size) {
      problems.push(
        `${entry.path}: ${size} bytes, the manifest says ${entry.size}`,
      );
      continue;
    }
    if ((await sha256(file)) !== entry.sha256) {
      problems.push(`${entry.path}: sha256 differs from the manifest`);
    }
  }
  for (const extra of present) {
    problems.push(`${extra}: not in the manifest`);
  }
  if (problems.length > 0) {
    throw new ManifestMismatchError(problems, dumpPath);
  }
  return manifest;
}
