/**
 * Scratch folders in the system's temporary folder: pg_restore's list files
 * (`fitsfleet-dump-*`) and downloaded S3 dumps (`fitsfleet-s3-dump-*`, which
 * can be as large as the archive's logs). Each holds a file with the pid of
 * the process that made it.
 *
 * They go when their user is done with them, on any error, and when the
 * process exits for any other reason it can see: cli/main.ts turns Ctrl-C and
 * SIGTERM into process.exit, which runs 'exit' listeners. A process that
 * cannot clean up (SIGKILL, the OOM killer, a power cut) leaves its folder
 * behind; the next start sweeps it once its owner is gone.
 */
import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { processAlive } from "../exec.js";
import type { Logger } from "../logger.js";

export const WORK_DIR_PREFIXES = [
  "fitsfleet-dump-",
  "fitsfleet-s3-dump-",
] as const;

export type WorkDirPrefix = (typeof WORK_DIR_PREFIXES)[number];

/** Dot-named so that it cannot collide with a downloaded dump's own name. */
export const OWNER_FILE = ".fitsfleet-owner";

/**
 * A folder younger than this is kept even when its pid is not alive here: the
 * pid may belong to another pid namespace (a container) sharing /tmp, and a
 * fresh folder may not have its owner file yet.
 */
export const STALE_AFTER_MS = 5 * 60_000;

/** Folders without an owner file (made before there were any) are swept only this old. */
const UNOWNED_STALE_AFTER_MS = 24 * 60 * 60_000;

const mine = new Set<string>();
let exitHook = false;

/** A new scratch folder owned by this process, removed at the latest when it exits. */
export function makeWorkDir(prefix: WorkDirPrefix): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mine.add(dir);
  if (!exitHook) {
    exitHook = true;
    // 'exit' listeners must be synchronous; rmSync is.
    process.on("exit", () => {
      for (const d of mine) {
        rmSync(d, { recursive: true, force: true });
      }
    });
  }
  writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`, { mode: 0o600 });
  return dir;
}

export function removeWorkDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mine.delete(dir);
}

function ownerPid(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, OWNER_FILE), "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes scratch folders left by processes that are gone: the owner's pid is
 * not alive and the folder has not changed for STALE_AFTER_MS. Folders of
 * live processes, of other users, and anything that is not one of ours are
 * left alone. Returns the folders removed.
 */
export function sweepStaleWorkDirs(
  options: { dir?: string; now?: number; logger?: Logger } = {},
): string[] {
  const dir = options.dir ?? tmpdir();
  const now = options.now ?? Date.now();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const swept: string[] = [];
  for (const name of names) {
    if (!WORK_DIR_PREFIXES.some((p) => name.startsWith(p))) {
      continue;
    }
    const path = join(dir, name);
    if (mine.has(path)) {
      continue;
    }
    try {
      // lstat: a symlink with one of our names is never followed.
      const stat = lstatSync(path);
      if (!stat.isDirectory()) {
        continue;
      }
      const age = now - stat.mtimeMs;
      const pid = ownerPid(path);
      const stale =
        pid === undefined
          ? age > UNOWNED_STALE_AFTER_MS
          : age > STALE_AFTER_MS && !processAlive(pid);
      if (!stale) {
        continue;
      }
      rmSync(path, { recursive: true, force: true });
      swept.push(path);
    } catch (error) {
      // Another user's folder, or one that went while we looked: not ours to fix.
      options.logger?.debug("left a scratch folder alone", {
        folder: path,
        reason: (error as Error).message,
      });
    }
  }
  if (swept.length > 0) {
    options.logger?.info(
      `removed ${swept.length} scratch folder(s) left by fitsfleet processes that are gone`,
      { folders: swept },
    );
  }
  return swept;
}
