/**
 * The boot's check that the fitsfleet it runs is the bundle that was baked.
 *
 * The builder keeps the bundle archive it verified against the sha256 that
 * `ami bake` uploaded (BUNDLE.tar.gz, its sha256 in BUNDLE-SHA256, both in
 * the installed folder; the image's `fitsfleet:bundle-sha256` tag records
 * the same value). At every boot, before any secret is read or any worker
 * starts, `instance boot`:
 *
 * 1. hashes the archive and compares it with the sha256 recorded at bake
 *    time;
 * 2. reads the archive and compares every file, symlink and folder in it
 *    with the installed tree, and the tree with it (a file the archive does
 *    not have is a change too).
 *
 * So what runs is byte for byte what the bake verified; a disk that was
 * edited, corrupted or half-copied stops the boot. It guards against
 * accidents and careless edits, not against someone who can rewrite the
 * image's archive and its recorded sha256 together: the image tag is the
 * record to audit against then.
 */
import { createHash } from "node:crypto";
import {
  createReadStream,
  type Dirent,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
} from "node:fs";
import { join, relative, sep } from "node:path";
import { createGunzip } from "node:zlib";

import { EXIT, FitsfleetError } from "../lib/errors.js";
import { fileSha256 } from "./bundle.js";

/** The archive the builder verified, kept in the installed folder. */
export const BUNDLE_ARCHIVE = "BUNDLE.tar.gz";
/** Its sha256, as `ami bake` uploaded it and the builder checked it. */
export const BUNDLE_SHA256_FILE = "BUNDLE-SHA256";

const OURS = new Set([BUNDLE_ARCHIVE, BUNDLE_SHA256_FILE]);

export type BundleCheck =
  | { state: "verified"; sha256: string; files: number }
  /** Not a baked image (a checkout, or the tests' images): nothing was recorded. */
  | { state: "not-baked" };

/** What differs; `file` is relative to the installed folder, absent for the archive itself. */
export interface BundleMismatch {
  expected: string;
  actual: string;
  file?: string;
  /** The bundle's sha256 as recorded at bake time. */
  bundle: string;
}

export const REBAKE =
  "the image's fitsfleet is not the one it was baked with: bake a new image (`fitsfleet ami bake`), launch the fleet from it (`rebuild launch-fleet --image latest`), and end this fleet";

export class BundleMismatchError extends FitsfleetError {
  readonly mismatch: BundleMismatch;
  constructor(mismatch: BundleMismatch) {
    const what =
      mismatch.file === undefined
        ? `the bundle archive's sha256 is ${mismatch.actual}, and ${mismatch.expected} was recorded at bake time`
        : `${mismatch.file}: sha256 ${mismatch.actual}, and the baked bundle (sha256 ${mismatch.bundle}) has ${mismatch.expected}`;
    super(
      "bundle-mismatch",
      EXIT.precondition,
      `bundle sha256 mismatch: ${what}; no worker was started`,
      { suggestion: REBAKE, context: { ...mismatch } },
    );
    this.mismatch = mismatch;
  }
}

/**
 * Checks the installed folder `root` (the package root) against its
 * archive. Throws BundleMismatchError on the first difference.
 */
export async function verifyInstalledBundle(
  root: string,
): Promise<BundleCheck> {
  const recordedAt = join(root, BUNDLE_SHA256_FILE);
  const archive = join(root, BUNDLE_ARCHIVE);
  if (!existsSync(recordedAt) && !existsSync(archive)) {
    return { state: "not-baked" };
  }
  const expected = existsSync(recordedAt)
    ? readFileSync(recordedAt, "utf8").trim()
    : "missing";
  const actual = existsSync(archive) ? await fileSha256(archive) : "missing";
  if (!/^[0-9a-f]{64}$/.test(expected) || actual !== expected) {
    throw new BundleMismatchError({ expected, actual, bundle: expected });
  }

  const fail = (file: string, want: string, got: string): never => {
    throw new BundleMismatchError({
      expected: want,
      actual: got,
      file,
      bundle: expected,
    });
  };
  const seen = new Set<string>();
  let files = 0;
  for await (const entry of tarEntries(archive)) {
    // The archive has one top folder (bundle.ts), which the builder strips.
    const rel = entry.path.split("/").slice(1).join("/").replace(/\/+$/, "");
    if (rel === "" || rel.split("/").includes("..")) {
      continue;
    }
    seen.add(rel);
    const path = join(root, ...rel.split("/"));
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (entry.type === "dir") {
      if (stat?.isDirectory() !== true) {
        fail(rel, "a folder", stat === undefined ? "missing" : "not a folder");
      }
    } else if (entry.type === "symlink") {
      const got = stat?.isSymbolicLink() === true ? readlinkSync(path) : "";
      if (got !== entry.link) {
        fail(rel, `a link to ${entry.link}`, got === "" ? "missing" : got);
      }
    } else if (entry.type === "file") {
      files += 1;
      const got = stat?.isFile() === true ? sha256Of(path) : "missing";
      if (got !== entry.sha256) {
        fail(rel, entry.sha256, got);
      }
    }
  }
  for (const rel of treeEntries(root)) {
    if (!seen.has(rel) && !OURS.has(rel)) {
      const path = join(root, rel);
      fail(
        rel.split(sep).join("/"),
        "absent",
        lstatSync(path).isFile() ? sha256Of(path) : "present",
      );
    }
  }
  return { state: "verified", sha256: expected, files };
}

/**
 * Whole-file reads: a bundle is thousands of small files (the largest,
 * sharp's libvips, is tens of MB), and a stream per file costs more than
 * the hashing.
 */
function sha256Of(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function* treeEntries(root: string, dir = root): Generator<string> {
  const entries: Dirent[] = readdirSync(dir, { withFileTypes: true });
  for (const entry of entries) {
    const path = join(dir, entry.name);
    // An extra empty folder changes nothing that runs; what is in it is checked.
    if (entry.isDirectory()) {
      yield* treeEntries(root, path);
    } else {
      yield relative(root, path).split(sep).join("/");
    }
  }
}

type TarEntry =
  | { type: "file"; path: string; sha256: string }
  | { type: "dir"; path: string }
  | { type: "symlink"; path: string; link: string }
  | { type: "other"; path: string };

function octal(block: Buffer, start: number, length: number): number {
  const text = block
    .subarray(start, start + length)
    .toString("latin1")
    .replace(/[\0 ]+$/, "")
    .trim();
  return text === "" ? 0 : parseInt(text, 8);
}

function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString("utf8");
}

/**
 * The entries of a gzipped tar (ustar, GNU with long names, or pax), each
 * file's content hashed as it streams past: the archive is read once and
 * never unpacked.
 */
async function* tarEntries(archive: string): AsyncGenerator<TarEntry> {
  let pending = Buffer.alloc(0);
  /** Bytes of the current entry's data (and padding) still to come. */
  let dataLeft = 0;
  let padLeft = 0;
  let current:
    | { kind: "file"; path: string; hash: ReturnType<typeof createHash> }
    | { kind: "meta"; flag: string; chunks: Buffer[] }
    | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let paxPath: string | undefined;
  let paxLink: string | undefined;
  const out: TarEntry[] = [];

  const header = (block: Buffer): boolean => {
    if (block.every((b) => b === 0)) {
      return false;
    }
    const flag = String.fromCharCode(block[156] ?? 48);
    const size = octal(block, 124, 12);
    const prefix = cString(block, 345, 155);
    const name = cString(block, 0, 100);
    const path =
      paxPath ?? longName ?? (prefix === "" ? name : `${prefix}/${name}`);
    const link = paxLink ?? longLink ?? cString(block, 157, 100);
    dataLeft = size;
    padLeft = (512 - (size % 512)) % 512;
    if (flag === "L" || flag === "K" || flag === "x" || flag === "g") {
      current = { kind: "meta", flag, chunks: [] };
      return true;
    }
    longName = longLink = paxPath = paxLink = undefined;
    if (flag === "0" || flag === "\0" || flag === "7") {
      current = { kind: "file", path, hash: createHash("sha256") };
    } else {
      current = undefined;
      out.push(
        flag === "5"
          ? { type: "dir", path }
          : flag === "2"
            ? { type: "symlink", path, link }
            : { type: "other", path },
      );
    }
    return true;
  };

  const endOfData = () => {
    if (current?.kind === "file") {
      out.push({
        type: "file",
        path: current.path,
        sha256: current.hash.digest("hex"),
      });
    } else if (current?.kind === "meta") {
      const text = Buffer.concat(current.chunks).toString("utf8");
      if (current.flag === "L") {
        longName = text.replace(/\0+$/, "");
      } else if (current.flag === "K") {
        longLink = text.replace(/\0+$/, "");
      } else if (current.flag === "x") {
        for (const record of text.split("\n")) {
          const m = /^\d+ (path|linkpath)=(.*)$/s.exec(record);
          if (m?.[1] === "path") {
            paxPath = m[2];
          } else if (m?.[1] === "linkpath") {
            paxLink = m[2];
          }
        }
      }
    }
    current = undefined;
  };

  let ended = false;
  for await (const chunk of createReadStream(archive).pipe(createGunzip())) {
    pending = Buffer.concat([pending, chunk as Buffer]);
    for (;;) {
      if (ended) {
        break;
      }
      if (dataLeft > 0) {
        const take = Math.min(dataLeft, pending.length);
        if (take === 0) {
          break;
        }
        const piece = pending.subarray(0, take);
        if (current?.kind === "file") {
          current.hash.update(piece);
        } else if (current?.kind === "meta") {
          current.chunks.push(Buffer.from(piece));
        }
        pending = pending.subarray(take);
        dataLeft -= take;
        if (dataLeft === 0) {
          endOfData();
        }
        continue;
      }
      if (padLeft > 0) {
        const take = Math.min(padLeft, pending.length);
        if (take === 0) {
          break;
        }
        pending = pending.subarray(take);
        padLeft -= take;
        continue;
      }
      if (pending.length < 512) {
        break;
      }
      const block = pending.subarray(0, 512);
      pending = pending.subarray(512);
      if (!header(block)) {
        ended = true;
        break;
      }
      if (dataLeft === 0) {
        endOfData();
      }
    }
    yield* out.splice(0);
  }
  yield* out.splice(0);
}
