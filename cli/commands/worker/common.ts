/** What `worker ingest` and `worker preview` share: identity, lock, stopping and retry flags. */
import type { Command } from "commander";

import { defaultLockDir } from "../../../lib/worker-lock.js";
import { duration } from "../../parse.js";
import { onInterrupt } from "../../signals.js";

export interface CommonWorkerFlags {
  name: string;
  lockfile?: boolean;
  lockDir?: string;
  empty?: boolean;
  maxRetryTime: string;
  shutdownTimeout: string;
}

export function addCommonWorkerOptions(
  command: Command,
  kind: "ingest" | "preview",
): Command {
  return command
    .option("--name <name>", "this worker's name (logs, ledger, lock)", "1")
    .option(
      "--lockfile",
      `refuse to start if ${kind === "ingest" ? "an ingest" : "a preview"} worker of the same name runs on this host`,
    )
    .option(
      "--lock-dir <dir>",
      "where --lockfile keeps its lock (default: $XDG_RUNTIME_DIR or the temp folder)",
    )
    .option("--empty", "exit 0 once nothing is left that can still succeed")
    .option(
      "--max-retry-time <duration>",
      "how long transient faults (a database or Redis restart, S3 throttling) are retried before the work fails: 90s, 15m, 2h",
      "15m",
    )
    .option(
      "--shutdown-timeout <duration>",
      "after SIGINT/SIGTERM, how long the work in hand may take before it is handed back to the queue (a second signal hands it back at once)",
      "90s",
    );
}

export interface WorkerRunFlags {
  lockDir: string | undefined;
  maxRetryMs: number;
  shutdownMs: number;
}

export function commonWorkerSettings(flags: CommonWorkerFlags): WorkerRunFlags {
  return {
    lockDir:
      flags.lockfile === true ? (flags.lockDir ?? defaultLockDir()) : undefined,
    maxRetryMs: duration("--max-retry-time", flags.maxRetryTime),
    shutdownMs: duration("--shutdown-timeout", flags.shutdownTimeout, 0),
  };
}

/**
 * The first SIGINT/SIGTERM stops the worker (no new work, finish what is in
 * hand); a second hands the work in hand back at once; a third ends the
 * process.
 */
export async function withWorkerSignals<T>(
  run: (stop: AbortSignal, abandon: AbortSignal) => Promise<T>,
): Promise<T> {
  const stop = new AbortController();
  const abandon = new AbortController();
  let second: (() => void) | undefined;
  const first = onInterrupt(() => {
    stop.abort();
    second = onInterrupt(() => abandon.abort());
  });
  try {
    return await run(stop.signal, abandon.signal);
  } finally {
    first();
    second?.();
  }
}
