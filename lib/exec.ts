/**
 * Runs system programs (initdb, pg_ctl, pg_dump, redis-server…) with captured
 * output. A missing program becomes a MissingDependencyError naming the Debian
 * package; a failing one an error with the tail of its stderr.
 */
import { execFile } from "node:child_process";

import { EXIT, FitsfleetError, MissingDependencyError } from "./errors.js";
import { redactText } from "./redact.js";

export interface ExecResult {
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Debian package that provides the program, for the "not installed" message. */
  debianPackage?: string;
  /** Words for the error message, e.g. "initialise the PostgreSQL cluster". */
  purpose?: string;
}

export function run(
  program: string,
  args: readonly string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      program,
      args,
      {
        timeout: options.timeoutMs ?? 120_000,
        env: options.env ?? process.env,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        if ((error as NodeJS.ErrnoException).code === "ENOENT") {
          reject(
            new MissingDependencyError(
              program,
              options.debianPackage ?? program,
            ),
          );
          return;
        }
        const tail = (stderr || stdout).trim().split("\n").slice(-8).join("\n");
        const what = options.purpose ?? `run ${program}`;
        reject(
          new FitsfleetError(
            "command-failed",
            EXIT.failed,
            redactText(
              `could not ${what}: ${program} failed${error.killed ? " (timed out)" : ""}\n${tail}`,
            ),
            {
              cause: error,
            },
          ),
        );
      },
    );
  });
}

/** True if a process with this pid exists (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Waits `ms`, or less when `signal` aborts (a worker told to stop stops waiting). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
