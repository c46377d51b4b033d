/**
 * What a fleet instance does from boot to power-off (`fitsfleet instance
 * boot`, run by the image's one boot unit, ami/README.md):
 *
 * 0. Checks that the installed fitsfleet is the bundle that was baked
 *    (ami/verify.ts): a mismatch stops the boot before anything starts.
 * 1. Asks its metadata service, IMDSv2 only (lib/imds.ts), for its
 *    instance id and its user-data, the fleet configuration
 *    (infra/fleet-config.ts).
 * 2. Reads the database and Redis URLs from SSM Parameter Store through its
 *    instance role (infra/secrets.ts). They go into the workers'
 *    environment and nowhere else: not argv, not a file, not a log line.
 * 3. Starts the configured ingest and preview workers, the same `fitsfleet
 *    worker …` processes as everywhere (infra/launch-spec.ts), and
 *    supervises them: one that exits 0 is done; one that crashes is
 *    restarted after a growing delay, unless it has crashed `maxCrashes`
 *    times within `crashWindowMs`, when it is given up on.
 * 4. On a stop (SIGTERM/SIGINT) or at the configuration's deadline, sends
 *    every worker SIGTERM: each finishes or hands back its work within its
 *    own shutdown deadline. The deadline is kept here, on the instance, so
 *    that an instance ends even when the operator's machine is gone.
 * 5. Returns once every worker has ended; clean only if each ended 0. The
 *    unit then powers the machine off, and the launch template's
 *    shutdown behaviour (terminate) ends the instance.
 */
import {
  FLEET_TAG,
  type FleetInstanceConfig,
  parseFleetConfig,
  ROLE_TAG,
  RUN_TAG,
} from "../infra/fleet-config.js";
import {
  type WorkerLaunchSpec,
  workerLaunchSpec,
  type WorkerRole,
} from "../infra/launch-spec.js";
import { WorkerProcesses } from "../infra/local.js";
import { type FleetSecrets, readFleetSecrets } from "../infra/secrets.js";
import {
  EXIT,
  ExternalServiceError,
  isTransient,
  PreconditionError,
} from "../lib/errors.js";
import { sleep } from "../lib/exec.js";
import { ImdsClient, imdsEndpoint } from "../lib/imds.js";
import type { Logger } from "../lib/logger.js";
import { packageRoot } from "../lib/paths.js";
import { registerSecret } from "../lib/redact.js";
import { BundleMismatchError, verifyInstalledBundle } from "./verify.js";

/** Tries per metadata request: IMDS may not answer in the first moments of a boot. */
const IMDS_ATTEMPTS = 5;

export const DEFAULT_MAX_CRASHES = 3;
export const DEFAULT_CRASH_WINDOW_MS = 10 * 60_000;
export const DEFAULT_RESTART_DELAY_MS = 1000;
/** The growing restart delay stops growing here. */
export const MAX_RESTART_DELAY_MS = 60_000;
/**
 * From a stop to SIGKILL: longer than a worker's own shutdown deadline
 * (90 s, after which it hands its work back), so that only a hung worker
 * is killed, and the instance still ends.
 */
export const DEFAULT_STOP_GRACE_MS = 120_000;

export const DEFAULT_SECRETS_RETRY_MS = 120_000;

/** setTimeout's longest delay; a deadline further away is re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface BootOptions {
  logger: Logger;
  /** Default: imdsEndpoint(env) (lib/imds.ts). */
  imdsEndpoint?: string;
  /** Reads the secrets; default a client for the configuration's region and the SDK's credential chain (the instance role). */
  readSecrets?: (config: FleetInstanceConfig) => Promise<FleetSecrets>;
  /** The fitsfleet CLI the workers run (default: this package's dist/cli/main.js). */
  cli?: string;
  /** Workers watch IMDS for a spot interruption notice (default true). */
  spotWatch?: boolean;
  maxCrashes?: number;
  crashWindowMs?: number;
  /** The first restart's delay; each further crash in the window doubles it. */
  restartDelayMs?: number;
  stopGraceMs?: number;
  /** How long transient failures to read the secrets are retried. */
  secretsRetryMs?: number;
  /** A stop: the first SIGTERM/SIGINT. */
  stop?: AbortSignal;
  /** Hand back at once: the second. */
  abandon?: AbortSignal;
  env?: Record<string, string | undefined>;
  /** The installed folder checked against its baked bundle (default: this package's root). */
  bundleRoot?: string;
}

/**
 * How a worker ended: done (exit 0 by itself), stopped (exit 0 after our
 * SIGTERM), failed (non-zero after our SIGTERM), crashed (non-zero, a stop
 * came before its restart), gave-up (crashed too often), not-started (the
 * stop came first).
 */
export type WorkerOutcome =
  "done" | "stopped" | "failed" | "crashed" | "gave-up" | "not-started";

const CLEAN: ReadonlySet<WorkerOutcome> = new Set([
  "done",
  "stopped",
  "not-started",
]);

export interface WorkerReport {
  name: string;
  role: WorkerRole;
  starts: number;
  /** The last exit code; null when a signal ended it or it never ran. */
  exitCode: number | null;
  outcome: WorkerOutcome;
}

export interface BootResult {
  instanceId: string;
  fleet: string;
  run: string;
  /** What stopped the workers, if anything did. */
  stoppedBy: "signal" | "deadline" | undefined;
  workers: WorkerReport[];
  /** Every worker ended cleanly. */
  clean: boolean;
}

export async function bootInstance(options: BootOptions): Promise<BootResult> {
  const env = options.env ?? process.env;
  const logger = options.logger;
  await checkBundle(options.bundleRoot ?? packageRoot(), logger);
  const imds = new ImdsClient({
    endpoint: options.imdsEndpoint ?? imdsEndpoint(env),
    attempts: IMDS_ATTEMPTS,
  });
  const instanceId = await imds.get("/latest/meta-data/instance-id");
  if (instanceId === undefined) {
    throw new ExternalServiceError(
      "imds",
      `the instance metadata service at ${imds.endpoint} has no instance id`,
      {
        fault: "permanent",
        suggestion:
          "run `fitsfleet instance boot` only on a fleet instance (from the image's boot unit)",
      },
    );
  }
  const userData = await imds.get("/latest/user-data");
  if (userData === undefined) {
    throw new PreconditionError(
      `instance ${instanceId} was launched without user-data: it holds the fleet configuration, and without it there is nothing to run`,
      {
        suggestion:
          "launch fleet instances with `fitsfleet rebuild launch-fleet`, whose launch template carries it",
      },
    );
  }
  const config = parseFleetConfig(
    userData,
    `the user-data of instance ${instanceId}`,
  );
  const secrets = await readSecretsPatiently(config, options);
  for (const url of [secrets.databaseUrl, secrets.redisUrl]) {
    registerSecret(url);
    registerSecret(decodeURIComponent(new URL(url).password));
  }
  logger.info("booted", {
    instance: instanceId,
    fleet: config.fleet,
    run: config.run,
    workers: { ingest: config.ingestWorkers, preview: config.previewWorkers },
    deadline: config.deadline,
  });
  const specs = workerSpecs(
    instanceId,
    config,
    secrets,
    options.spotWatch ?? true,
  );
  const { workers, stoppedBy } = await supervise(specs, config, options);
  const clean = workers.every((w) => CLEAN.has(w.outcome));
  logger.info("all workers ended", {
    instance: instanceId,
    clean,
    stoppedBy,
    outcomes: Object.fromEntries(workers.map((w) => [w.name, w.outcome])),
  });
  return {
    instanceId,
    fleet: config.fleet,
    run: config.run,
    stoppedBy,
    workers,
    clean,
  };
}

/**
 * Before the metadata service, the secrets or any worker: code that is not
 * what was baked must not be handed the database's password.
 */
async function checkBundle(root: string, logger: Logger): Promise<void> {
  try {
    const check = await verifyInstalledBundle(root);
    if (check.state === "verified") {
      logger.info("bundle verified", {
        sha256: check.sha256,
        files: check.files,
      });
    }
  } catch (error) {
    if (error instanceof BundleMismatchError) {
      // The one line an operator reads in the console output to know why.
      logger.error("bundle sha256 mismatch: no worker starts", {
        expected: error.mismatch.expected,
        actual: error.mismatch.actual,
        file: error.mismatch.file ?? "BUNDLE.tar.gz",
        bundle: error.mismatch.bundle,
        action: error.suggestion,
      });
    }
    throw error;
  }
}

/**
 * SSM may be throttled or out of reach for a moment while a whole fleet
 * boots at once; an instance that gave up at the first try would be paid
 * for and do nothing. A permanent refusal (no such secret, a role that may
 * not) ends the boot at once.
 */
async function readSecretsPatiently(
  config: FleetInstanceConfig,
  options: BootOptions,
): Promise<FleetSecrets> {
  const read = options.readSecrets ?? readWithInstanceRole;
  const giveUpAt =
    Date.now() + (options.secretsRetryMs ?? DEFAULT_SECRETS_RETRY_MS);
  for (let attempt = 1; ; attempt++) {
    try {
      return await read(config);
    } catch (error) {
      const waitMs = Math.min(30_000, 1000 * 2 ** (attempt - 1));
      if (
        !isTransient(error) ||
        Date.now() + waitMs > giveUpAt ||
        options.stop?.aborted === true
      ) {
        throw error;
      }
      options.logger.warn("reading the fleet's secrets failed: trying again", {
        error: error instanceof Error ? error.message : String(error),
        attempt,
        inSeconds: waitMs / 1000,
      });
      await sleep(waitMs, options.stop);
    }
  }
}

async function readWithInstanceRole(
  config: FleetInstanceConfig,
): Promise<FleetSecrets> {
  // Loaded here: the AWS SDK is needed once, at boot.
  const { ssmClient } = await import("../infra/aws.js");
  const ssm = await ssmClient(config.region);
  try {
    return await readFleetSecrets(ssm, config.secretsPrefix);
  } finally {
    ssm.destroy();
  }
}

function workerSpecs(
  instanceId: string,
  config: FleetInstanceConfig,
  secrets: FleetSecrets,
  spotWatch: boolean,
): WorkerLaunchSpec[] {
  const settings = {
    empty: true,
    storage: config.storage,
    previews: config.previews,
    s3Endpoint: config.s3Endpoint,
    logLevel: config.logLevel,
    databaseUrl: secrets.databaseUrl,
    spotWatch,
  };
  return [
    ...Array.from({ length: config.ingestWorkers }, (_, i) =>
      workerLaunchSpec({
        ...settings,
        role: "ingest",
        name: `${instanceId}-ingest-${i + 1}`,
        queue: config.queue,
        fastRebuild: config.fastRebuild,
        makePreviews: config.makePreviews,
        redisUrl: secrets.redisUrl,
      }),
    ),
    // Preview workers take their work from the database, so they are not given Redis.
    ...Array.from({ length: config.previewWorkers }, (_, i) =>
      workerLaunchSpec({
        ...settings,
        role: "preview",
        name: `${instanceId}-preview-${i + 1}`,
      }),
    ),
  ];
}

interface Slot {
  spec: WorkerLaunchSpec;
  starts: number;
  /** Crash times within the window. */
  crashes: number[];
  exitCode: number | null;
  outcome?: WorkerOutcome;
}

async function supervise(
  specs: WorkerLaunchSpec[],
  config: FleetInstanceConfig,
  options: BootOptions,
): Promise<{
  workers: WorkerReport[];
  stoppedBy: BootResult["stoppedBy"];
}> {
  const logger = options.logger;
  const maxCrashes = options.maxCrashes ?? DEFAULT_MAX_CRASHES;
  const windowMs = options.crashWindowMs ?? DEFAULT_CRASH_WINDOW_MS;
  const baseDelayMs = options.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS;
  const provider = new WorkerProcesses(options.cli, {
    workerOutput: "inherit",
  });
  const live = new Set<string>();
  const stopping = new AbortController();
  let stoppedBy: BootResult["stoppedBy"];
  let deadlineTimer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  const stopAll = (reason: "signal" | "deadline") => {
    if (stoppedBy !== undefined) {
      return;
    }
    stoppedBy = reason;
    stopping.abort();
    logger.info(
      reason === "deadline"
        ? "the fleet's deadline has come: stopping every worker"
        : "stopping every worker",
      { deadline: config.deadline, running: live.size },
    );
    void provider.terminate([...live]);
    killTimer = setTimeout(() => {
      if (live.size > 0) {
        logger.error("workers still running after the stop grace: killing", {
          running: live.size,
          graceSeconds: (options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS) / 1000,
        });
        provider.kill([...live]);
      }
    }, options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
  };
  const onStop = () => stopAll("signal");
  const onAbandon = () => {
    stopAll("signal");
    logger.warn("second stop: the workers hand their work back at once", {
      running: live.size,
    });
    // A worker's second SIGTERM means: hand back what is in hand now.
    void provider.terminate([...live]);
  };
  options.stop?.addEventListener("abort", onStop, { once: true });
  options.abandon?.addEventListener("abort", onAbandon, { once: true });

  const deadline = Date.parse(config.deadline);
  const armDeadline = () => {
    const left = deadline - Date.now();
    if (left <= 0) {
      stopAll("deadline");
    } else {
      deadlineTimer = setTimeout(armDeadline, Math.min(left, MAX_TIMER_MS));
    }
  };
  if (deadline <= Date.now()) {
    logger.warn("the fleet's deadline has passed: starting no workers", {
      deadline: config.deadline,
    });
  }
  armDeadline();
  if (options.stop?.aborted === true) {
    onStop();
  }

  const tags = (role: WorkerRole) => ({
    [FLEET_TAG]: config.fleet,
    [RUN_TAG]: config.run,
    [ROLE_TAG]: role,
  });

  const runSlot = async (slot: Slot): Promise<void> => {
    const worker = slot.spec.name;
    for (;;) {
      if (stopping.signal.aborted) {
        slot.outcome ??= "not-started";
        return;
      }
      const handle = (
        await provider.launch([slot.spec], tags(slot.spec.role))
      )[0]!;
      slot.starts += 1;
      live.add(handle.id);
      logger.info(slot.starts === 1 ? "worker started" : "worker restarted", {
        worker,
        role: slot.spec.role,
        pid: handle.id,
        start: slot.starts,
      });
      if (stopping.signal.aborted) {
        // The stop came while it was being started.
        void provider.terminate([handle.id]);
      }
      const ended = (await provider.waitForExit([handle.id]))[0]!;
      live.delete(handle.id);
      const code = ended.exitCode ?? null;
      slot.exitCode = code;
      const ours = ended.state === "terminated";
      const fields = {
        worker,
        exitCode: code,
        signalled: code === null,
        stoppedByUs: ours,
      };
      // A worker stopped before it could set up its own graceful stop
      // exits "interrupted" (cli/main.ts), holding no work yet.
      if (code === 0 || (ours && code === EXIT.interrupted)) {
        logger.info("worker exited", fields);
        slot.outcome = ours ? "stopped" : "done";
        return;
      }
      logger.warn("worker exited", fields);
      if (ours) {
        slot.outcome = "failed";
        return;
      }
      const now = Date.now();
      slot.crashes = [...slot.crashes.filter((t) => now - t < windowMs), now];
      if (slot.crashes.length >= maxCrashes) {
        logger.error("worker crashed too often: given up", {
          worker,
          crashes: slot.crashes.length,
          windowSeconds: windowMs / 1000,
        });
        slot.outcome = "gave-up";
        return;
      }
      const delayMs = Math.min(
        MAX_RESTART_DELAY_MS,
        baseDelayMs * 2 ** (slot.crashes.length - 1),
      );
      logger.warn("worker crashed: restarting it", {
        worker,
        crashes: slot.crashes.length,
        restartInSeconds: delayMs / 1000,
      });
      await sleep(delayMs, stopping.signal);
      if (stopping.signal.aborted) {
        slot.outcome = "crashed";
        return;
      }
    }
  };

  const slots: Slot[] = specs.map((spec) => ({
    spec,
    starts: 0,
    crashes: [],
    exitCode: null,
  }));
  try {
    await Promise.all(slots.map(runSlot));
  } finally {
    clearTimeout(deadlineTimer);
    clearTimeout(killTimer);
    options.stop?.removeEventListener("abort", onStop);
    options.abandon?.removeEventListener("abort", onAbandon);
  }
  return {
    stoppedBy,
    workers: slots.map((s) => ({
      name: s.spec.name,
      role: s.spec.role,
      starts: s.starts,
      exitCode: s.exitCode,
      outcome: s.outcome ?? "not-started",
    })),
  };
}
