/** What `worker ingest` and `worker preview` share: identity, lock, stopping and retry flags. */
import type { Command } from "commander";

import { UsageError } from "../../../lib/errors.js";
import { defaultLockDir, type WorkerKind } from "../../../lib/worker-lock.js";
import { duration } from "../../parse.js";
import { onInterrupt } from "../../signals.js";

export interface CommonWorkerFlags {
  name: string;
  lockfile?: boolean;
  lockDir?: string;
  empty?: boolean;
  maxRetryTime: string;
  shutdownTimeout: string;
  spotWatch?: boolean;
}

/** Turns --spot-watch on without a flag, for an image's unit or an instance's environment. */
export const SPOT_WATCH_ENV = "FITSFLEET_SPOT_WATCH";
/** How often to look, in ms (default 5000); tests look more often than EC2 needs. */
export const SPOT_POLL_ENV = "FITSFLEET_SPOT_POLL_MS";

export function addCommonWorkerOptions(
  command: Command,
  kind: WorkerKind,
): Command {
  return command
    .option("--name <name>", "this worker's name (logs, ledger, lock)", "1")
    .option(
      "--lockfile",
      `refuse to start if ${kind === "ingest" ? "an ingest" : `a ${kind}`} worker of the same name runs on this host`,
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
    )
    .option(
      "--spot-watch",
      `on an EC2 spot instance: watch the instance metadata (IMDSv2, every 5 s) for an interruption notice or a rebalance recommendation, and on either stop as on SIGTERM, handing back the work in hand at the latest 30 s before the instance goes; exit 0 (also ${SPOT_WATCH_ENV}=1)`,
    );
}

export interface WorkerRunFlags {
  lockDir: string | undefined;
  maxRetryMs: number;
  shutdownMs: number;
  spotWatch: false | { intervalMs?: number };
}

export function commonWorkerSettings(
  flags: CommonWorkerFlags,
  env: NodeJS.ProcessEnv = process.env,
): WorkerRunFlags {
  return {
    lockDir:
      flags.lockfile === true ? (flags.lockDir ?? defaultLockDir()) : undefined,
    maxRetryMs: duration("--max-retry-time", flags.maxRetryTime),
    shutdownMs: duration("--shutdown-timeout", flags.shutdownTimeout, 0),
    spotWatch:
      flags.spotWatch === true || envSwitch(env, SPOT_WATCH_ENV)
        ? { intervalMs: pollInterval(env) }
        : false,
  };
}

function pollInterval(env: NodeJS.ProcessEnv): number | undefined {
  const value = env[SPOT_POLL_ENV]?.trim() ?? "";
  if (value === "") {
    return undefined;
  }
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 50 || ms > 60_000) {
    throw new UsageError(
      `${SPOT_POLL_ENV}=${value}: milliseconds between looks, from 50 to 60000`,
    );
  }
  return ms;
}

/** An on/off variable: unset, empty, 0 or false is off; 1 or true is on; anything else is a mistake worth stopping for. */
function envSwitch(env: NodeJS.ProcessEnv, name: string): boolean {
  const value = env[name]?.trim().toLowerCase() ?? "";
  if (value === "" || value === "0" || value === "false") {
    return false;
  }
  if (value === "1" || value === "true") {
    return true;
  }
  throw new UsageError(`${name}=${env[name]}: give 1 (on) or 0 (off)`);
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
