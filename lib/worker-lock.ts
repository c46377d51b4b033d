/**
 * The workers' --lockfile: one running worker per kind and name on a host,
 * as the reference's lock files meant, but a real lock.
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";

import { PreconditionError, UsageError } from "./errors.js";
import { processAlive } from "./exec.js";

export function defaultLockDir(): string {
  return process.env.XDG_RUNTIME_DIR ?? tmpdir();
}

/**
 * An exclusive lock file per worker name: created with O_EXCL, holding our
 * pid. A lock whose process is gone is stale and taken over; a live one
 * refuses the second worker.
 */
/** The kinds of worker process; one lock per kind and name. */
export type WorkerKind = "ingest" | "preview" | "calcache";

export function takeLock(
  dir: string,
  kind: WorkerKind,
  name: string,
): () => void {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new UsageError(
      `--name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-'`,
    );
  }
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `fitsfleet-worker-${kind}-${name}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, "utf8").trim() === String(process.pid)) {
            rmSync(path, { force: true });
          }
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw error;
      }
      const pid = Number(readFileSync(path, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new PreconditionError(
          `another ${kind} worker named ${name} is running on ${hostname()} (pid ${pid}, lock ${path})`,
          {
            suggestion:
              "give this worker another --name, or stop that one first",
          },
        );
      }
      rmSync(path, { force: true }); // stale: its process is gone
    }
  }
  throw new PreconditionError(`could not take the lock ${path}`);
}
