/**
 * What starts one worker, wherever it runs: the CLI arguments and the
 * environment. The local provider renders and spawns it; on a fleet
 * instance, the boot (`fitsfleet instance boot`, ami/boot.ts) renders one
 * per worker from the fleet configuration in user-data and spawns it the
 * same way, so a worker behaves the same on a laptop and on a spot
 * instance. Secrets are apart, in the child's environment only: on EC2 the
 * boot reads them from SSM, and they never appear in user-data, argv or a
 * file.
 */
export type WorkerRole = "ingest" | "preview";

export interface WorkerLaunchSpec {
  role: WorkerRole;
  /** The worker's --name: unique within a run. */
  name: string;
  /** Arguments after the `fitsfleet` program. */
  argv: string[];
  /** Environment that is not secret (settings, tuning). */
  env: Record<string, string>;
  /** Environment that is secret (database and Redis URLs with passwords). */
  secretEnv: Record<string, string>;
  /** Node's own flags for the worker process. */
  nodeOptions: string[];
}

/** The young generation ingest wants: many short-lived objects per file (BENCHMARKS.md, ingest). */
export const YOUNG_GENERATION_FLAG = "--max-semi-space-size=64";

/**
 * glibc gives every thread that allocates its own malloc arena and hands
 * freed arena memory back to the system, so each JPEG that libvips encodes
 * on a fresh thread faults in a megabyte or two again (about 400 page
 * faults, half the encoder's time). Two arenas keep that memory in use
 * (docs/BENCHMARKS.md, previews).
 */
export const WORKER_ENVIRONMENT: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: "2",
};

export interface WorkerSpecOptions {
  role: WorkerRole;
  name: string;
  queue?: string;
  /** Exit when nothing is left (--empty). */
  empty?: boolean;
  fastRebuild?: boolean;
  makePreviews?: boolean;
  /** Stop before a spot instance goes (--spot-watch): on for the fleet's instances. */
  spotWatch?: boolean;
  concurrency?: number;
  databaseUrl: string;
  redisUrl?: string;
  s3Endpoint?: string;
  storage?: string;
  previews?: string;
  logLevel?: string;
  extraArgs?: string[];
}

export function workerLaunchSpec(options: WorkerSpecOptions): WorkerLaunchSpec {
  const argv = ["worker", options.role, "--name", options.name];
  if (options.empty === true) {
    argv.push("--empty");
  }
  if (options.spotWatch === true) {
    argv.push("--spot-watch");
  }
  if (options.role === "ingest") {
    if (options.queue !== undefined) {
      argv.push("--queue", options.queue);
    }
    if (options.fastRebuild === true) {
      argv.push("--fast-rebuild");
    }
    if (options.makePreviews === true) {
      argv.push("--make-previews");
    }
  }
  if (options.concurrency !== undefined) {
    argv.push("--concurrency", String(options.concurrency));
  }
  argv.push(...(options.extraArgs ?? []));
  const env: Record<string, string> = { ...WORKER_ENVIRONMENT };
  const set = (key: string, value: string | undefined) => {
    if (value !== undefined) {
      env[key] = value;
    }
  };
  set("FITSFLEET_S3_ENDPOINT", options.s3Endpoint);
  set("FITSFLEET_STORAGE", options.storage);
  set("FITSFLEET_PREVIEWS", options.previews);
  set("FITSFLEET_LOG_LEVEL", options.logLevel);
  const secretEnv: Record<string, string> = {
    FITSFLEET_DATABASE_URL: options.databaseUrl,
  };
  if (options.redisUrl !== undefined) {
    secretEnv.FITSFLEET_REDIS_URL = options.redisUrl;
  }
  return {
    role: options.role,
    name: options.name,
    argv,
    env,
    secretEnv,
    nodeOptions: options.role === "ingest" ? [YOUNG_GENERATION_FLAG] : [],
  };
}
