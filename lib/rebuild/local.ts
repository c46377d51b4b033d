/**
 * Ingest workers as local processes: the same `fitsfleet worker ingest` that
 * runs on a spot instance, started on this machine with --empty, watched
 * through the ledger until they have drained the queue.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

import { withClient } from "../db/connect.js";
import { FitsfleetError } from "../errors.js";
import { sleep } from "../exec.js";
import { packageRoot } from "../paths.js";
import { type RebuildStatus, rebuildStatus } from "./ledger.js";

/** What `worker ingest` processes should run with (also for fleet nodes: NODE_OPTIONS). */
export const YOUNG_GENERATION_FLAG = "--max-semi-space-size=64";

/**
 * And in their environment: glibc gives every thread that allocates its own
 * malloc arena and hands freed arena memory back to the system, so each
 * JPEG that libvips encodes on a fresh thread faults in a megabyte or two
 * again (about 400 page faults, half the encoder's time). Two arenas keep
 * that memory in use (docs/BENCHMARKS.md, previews).
 */
export const WORKER_ENVIRONMENT: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: "2",
};

export interface LocalWorkersOptions {
  databaseUrl: string;
  redisUrl: string;
  queue: string;
  workers: number;
  /** Name prefix: workers are PREFIX-1, PREFIX-2, … */
  name?: string;
  fastRebuild?: boolean;
  makePreviews?: boolean;
  s3Endpoint?: string;
  /** Called about once a second with the ledger's view. */
  onStatus?: (status: RebuildStatus) => void;
}

export interface LocalWorkersResult {
  status: RebuildStatus;
  seconds: number;
}

export async function runLocalWorkers(
  options: LocalWorkersOptions,
): Promise<LocalWorkersResult> {
  const started = Date.now();
  const cli = join(packageRoot(), "dist", "cli", "main.js");
  const children: ChildProcess[] = [];
  const exits: Promise<{
    name: string;
    code: number | null;
    stderr: string;
  }>[] = [];
  for (let i = 1; i <= options.workers; i++) {
    const name = `${options.name ?? "local"}-${i}`;
    const child = spawn(
      process.execPath,
      [
        // A larger young generation: ingest makes many short-lived objects
        // per file, and collections were a sixth of a worker's time.
        YOUNG_GENERATION_FLAG,
        cli,
        "worker",
        "ingest",
        "--empty",
        "--name",
        name,
        "--queue",
        options.queue,
        ...(options.fastRebuild === true ? ["--fast-rebuild"] : []),
        ...(options.makePreviews === true ? ["--make-previews"] : []),
      ],
      {
        // URLs in the environment: a command line is visible to every user.
        env: {
          ...process.env,
          ...WORKER_ENVIRONMENT,
          FITSFLEET_DATABASE_URL: options.databaseUrl,
          FITSFLEET_REDIS_URL: options.redisUrl,
          FITSFLEET_LOG_LEVEL: "warn",
          ...(options.s3Endpoint === undefined
            ? {}
            : { FITSFLEET_S3_ENDPOINT: options.s3Endpoint }),
        },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    children.push(child);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    exits.push(
      new Promise((resolve) =>
        child.once("exit", (code) => resolve({ name, code, stderr })),
      ),
    );
  }
  let running = true;
  const finished = Promise.all(exits).finally(() => {
    running = false;
  });
  try {
    await withClient(options.databaseUrl, async (client) => {
      while (running) {
        options.onStatus?.(await rebuildStatus(client, 1));
        await Promise.race([finished, sleep(1000)]);
      }
    });
    const results = await finished;
    const bad = results.filter((r) => r.code !== 0);
    if (bad.length > 0) {
      throw new FitsfleetError(
        "workers-failed",
        1,
        `${bad.length} local worker(s) failed: ${bad.map((b) => `${b.name} (exit ${b.code}): ${b.stderr.trim().split("\n").slice(-2).join(" ")}`).join("; ")}`,
        {
          suggestion:
            "see the message above; the ledger keeps what was done, and `fitsfleet rebuild reconcile` plus a worker finishes the rest",
        },
      );
    }
    const status = await withClient(options.databaseUrl, (c) =>
      rebuildStatus(c, 1),
    );
    return { status, seconds: (Date.now() - started) / 1000 };
  } finally {
    for (const child of children) {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
      }
    }
  }
}
