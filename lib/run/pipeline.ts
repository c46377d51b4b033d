/**
 * `rebuild run`: the whole rebuild as one pipeline (lib/run/types.ts
 * RUN_STEPS): init, migrate, enqueue, launch, drain, calcache, terminate,
 * verify. Each step's state lives in `fitsfleet.run_steps`, changed in one
 * transaction with the journal's events (lib/run/journal.ts), so a run
 * killed anywhere continues with `resumePipeline`: a finished step is never
 * run again, and a step cut off resumes from its checkpoint. One run acts
 * on a database at a time (lib/run/lock.ts).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

import { Ec2FleetProvider } from "../../infra/ec2.js";
import { LocalFleetProvider } from "../../infra/local.js";
import type { FleetProvider } from "../../infra/provider.js";
import { REBUILT_TABLES } from "../archive-writer.js";
import { connect, type PgClient } from "../db/connect.js";
import {
  coerceError,
  EXIT,
  FitsfleetError,
  PreconditionError,
} from "../errors.js";
import type { Logger } from "../logger.js";
import { type Failure, listFailures } from "../rebuild/ledger.js";
import { coordinatorJournal, leaseLostError } from "./coordinated.js";
import { Coordinator, type CoordinatorOptions } from "./coordinator.js";
import { StaleEpochError } from "./events.js";
import { holdPoint, killPoint } from "./faults.js";
import type { RunJournal } from "./journal.js";
import { describeLease, type LeaseRecord } from "./lease.js";
import { releaseRunLock, RUN_APPLICATION_PREFIX, takeRunLock } from "./lock.js";
import {
  preflight,
  preflightError,
  type PreflightReport,
} from "./preflight.js";
import type { Recovery } from "./recover.js";
import type { RunSettings } from "./settings.js";
import { calcacheStep } from "./step-calcache.js";
import type {
  RunProgress,
  StepContext,
  StepFn,
  StepResult,
} from "./step-context.js";
import { initStep, migrateStep } from "./step-database.js";
import { enqueueStep } from "./step-enqueue.js";
import {
  drainStep,
  endRunFleet,
  launchStep,
  terminateStep,
} from "./step-fleet.js";
import { verifyStep } from "./step-verify.js";
import {
  getRun,
  hasRunTables,
  insertRun,
  markRunEnded,
  markStepEnded,
  markStepStarted,
  type RunRecord,
  saveCheckpoint,
  setCoordinator,
  transition,
} from "./store.js";
import { RUN_STEPS, type RunEvent, type RunStep } from "./types.js";

const STEPS: Record<Exclude<RunStep, "init">, StepFn> = {
  migrate: migrateStep,
  enqueue: enqueueStep,
  launch: launchStep,
  drain: drainStep,
  calcache: calcacheStep,
  terminate: terminateStep,
  verify: verifyStep,
};

export interface PipelineOptions {
  databaseUrl: string;
  redisUrl: string;
  logger: Logger;
  /**
   * Where events go instead of the coordinator's event log (tests of the
   * journal contract); given, the run holds no coordinator lease.
   */
  journal?: RunJournal;
  /** The coordinator's lease and snapshot settings (lib/run/coordinator.ts). */
  coordinator?: Pick<
    CoordinatorOptions,
    | "holder"
    | "ttlMs"
    | "renewMs"
    | "pollMs"
    | "snapshotEvery"
    | "snapshotMaxAgeMs"
  >;
  onProgress?: (progress: RunProgress) => void;
  /** A step starts or ends. */
  onStep?: (step: RunStep, status: string, detail: string) => void;
  signal?: AbortSignal;
  /** The run's id (default: generated). */
  runId?: string;
  /** The local provider's CLI (tests); default this package's dist/cli/main.js. */
  cli?: string;
}

export interface RunReport {
  run: RunRecord<RunSettings>;
  /** Rows in the rebuilt tables now. */
  rows: Record<string, number>;
  ledger: Record<string, number>;
  failures: Failure[];
  /** USD, the run's fleets from launch to end. */
  spend: number;
  seconds: number;
  /** What the steps this process ran returned in detail (the demo prints them). */
  details: Partial<Record<RunStep, unknown>>;
  /** The run's coordinator lease as it stands, and the events it has logged. */
  coordinator?: { lease: LeaseRecord | undefined; events: number };
}

/**
 * How this process coordinates the run: the journal its state changes go
 * through, the signal its steps obey (aborted when the lease is lost), and
 * why it lost the lease, if it did.
 */
interface Coordination {
  journal: RunJournal;
  signal: AbortSignal | undefined;
  lost(): string | undefined;
  coordinator?: Coordinator;
  close(): Promise<void>;
}

async function coordinate(
  runId: string,
  options: PipelineOptions,
  mode: "start" | "standby",
): Promise<Coordination> {
  if (options.journal !== undefined) {
    return {
      journal: options.journal,
      signal: options.signal,
      lost: () => undefined,
      close: () => Promise.resolve(),
    };
  }
  const controller = new AbortController();
  const settings: CoordinatorOptions = {
    ...options.coordinator,
    logger: options.logger,
    signal: options.signal,
    onLost: (reason) => controller.abort(leaseLostError(runId, reason)),
  };
  const coordinator =
    mode === "start"
      ? await Coordinator.start(options.databaseUrl, runId, settings)
      : await Coordinator.standby(options.databaseUrl, runId, settings);
  return {
    journal: coordinatorJournal(coordinator),
    signal:
      options.signal === undefined
        ? controller.signal
        : AbortSignal.any([options.signal, controller.signal]),
    lost: () => coordinator.lost,
    coordinator,
    // Released, a standby takes over at once (and finds the run ended).
    close: () => coordinator.close({ release: true }),
  };
}

/** r-20261207t0612-a1b2c3: sortable, and a valid fleet name prefix. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").slice(0, 13);
  return `r-${stamp.toLowerCase()}-${randomBytes(3).toString("hex")}`;
}

const RUN_ID = /^r-[0-9a-z-]{4,60}$/;

function coordinatorName(): string {
  return `${hostname()}:${process.pid}`;
}

const now = () => new Date().toISOString();

/** --dry-run: every preflight check, nothing written. */
export function dryRun(
  settings: RunSettings,
  options: Pick<PipelineOptions, "databaseUrl" | "redisUrl" | "logger">,
): Promise<PreflightReport> {
  return preflight(settings, { ...options, thorough: true });
}

/** A new run: preflight, then every step. */
export async function runPipeline(
  settings: RunSettings,
  options: PipelineOptions,
): Promise<RunReport> {
  const runId = options.runId ?? newRunId();
  const client = await openCoordinator(runId, options);
  let coordination: Coordination | undefined;
  try {
    await takeRunLock(client);
    const checks = await preflight(settings, {
      ...options,
      thorough: false,
      runId,
    });
    if (!checks.ok) {
      throw preflightError(checks);
    }
    options.onStep?.("init", "running", "");
    const initStarted = new Date();
    const init = await initStep(options.databaseUrl, options);
    const initEnded = new Date();
    // After init: on a new database, init makes the lease's table. So init
    // is recorded afterwards, with the times it really started and ended,
    // in its events and its run_steps row alike.
    coordination = await coordinate(runId, options, "start");
    const journal = coordination.journal;
    await transition(
      client,
      journal,
      runId,
      [
        { type: "run-started", runId, at: now(), provider: settings.provider },
        { type: "step-started", step: "init", at: initStarted.toISOString() },
        {
          type: "step-finished",
          step: "init",
          at: initEnded.toISOString(),
          figures: init.figures,
        },
      ],
      async (c) => {
        await insertRun(c, {
          id: runId,
          provider: settings.provider,
          storage: settings.storage,
          queue: settings.queue,
          settings,
          coordinator: coordinatorName(),
        });
        await markStepStarted(c, runId, "init", initStarted);
        await markStepEnded(c, runId, "init", {
          status: "done",
          figures: init.figures,
          at: initEnded,
        });
      },
    );
    options.onStep?.("init", "done", describeFigures(init.figures));
    killPoint("after:init");
    return await drive(client, runId, options, coordination, {
      init: init.detail,
    });
  } finally {
    await coordination?.close();
    await closeCoordinator(client);
  }
}

/** Continues a run where it stopped: no finished step again. */
export async function resumePipeline(
  runId: string,
  options: PipelineOptions,
): Promise<RunReport> {
  checkRunId("--resume", runId);
  const client = await openCoordinator(runId, options);
  let coordination: Coordination | undefined;
  try {
    await takeRunLock(client);
    await requireRun(client, runId);
    coordination = await coordinateAfterDeath(runId, options);
    await setCoordinator(client, runId, coordinatorName());
    return await drive(client, runId, options, coordination, {});
  } finally {
    await coordination?.close();
    await closeCoordinator(client);
  }
}

async function requireRun(client: PgClient, runId: string): Promise<void> {
  if (
    !(await hasRunTables(client)) ||
    (await getRun(client, runId)) === undefined
  ) {
    throw new PreconditionError(`no run ${runId} in this database`, {
      suggestion: "see `fitsfleet rebuild runs` for the runs it knows",
    });
  }
}

export interface StandbyOutcome {
  /** How the state was rebuilt on taking over (snapshot, events or ledger). */
  recovery: Recovery;
  /** The run had ended (succeeded, failed, aborted) when the lease came free: nothing was done. */
  endedWhileStandingBy: boolean;
  report: RunReport;
}

/**
 * `rebuild run --standby RUN`: waits for the run's coordinator lease while
 * another process is active; when it dies (its lease connection vanishes or
 * the lease expires) or lets go, recovers the run's state and continues the
 * run as `--resume` does, or returns at once if the run has ended.
 */
export async function standbyPipeline(
  runId: string,
  options: PipelineOptions,
): Promise<StandbyOutcome> {
  checkRunId("--standby", runId);
  const client = await openCoordinator(runId, options);
  let coordination: Coordination | undefined;
  try {
    await requireRun(client, runId);
    coordination = await coordinate(runId, options, "standby");
    const recovery = coordination.coordinator!.recovery;
    options.logger.info("standby took over", {
      run: runId,
      epoch: coordination.coordinator!.epoch,
      recovered: recovery.source,
      why: recovery.reason,
      seq: recovery.state.seq,
      replayed: recovery.replayed,
    });
    const run = (await getRun<RunSettings>(client, runId))!;
    if (run.state !== "running") {
      return {
        recovery,
        endedWhileStandingBy: true,
        report: await report(client, runId, Date.now(), {}),
      };
    }
    await takeRunLockWhenFree(client, options);
    await setCoordinator(client, runId, coordinatorName());
    return {
      recovery,
      endedWhileStandingBy: false,
      report: await drive(client, runId, options, coordination, {}),
    };
  } finally {
    await coordination?.close();
    await closeCoordinator(client);
  }
}

/**
 * The dead coordinator's run lock goes with its connection, which the
 * server may notice a moment after its lease; wait for it a little.
 */
async function takeRunLockWhenFree(
  client: PgClient,
  options: PipelineOptions,
): Promise<void> {
  await whileRefused(
    () => takeRunLock(client),
    2 * (options.coordinator?.ttlMs ?? DEFAULT_TTL_MS) + 5_000,
    options.signal,
  );
}

/**
 * Runs `work` again every 250 ms while it is refused (a PreconditionError:
 * a lock or lease still held), until `forMs` have passed or `signal` aborts.
 */
async function whileRefused<T>(
  work: () => Promise<T>,
  forMs: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  const deadline = Date.now() + forMs;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      if (
        !(error instanceof PreconditionError) ||
        Date.now() > deadline ||
        signal?.aborted === true
      ) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

const DEFAULT_TTL_MS = 5_000;

/**
 * `--resume` holds the run lock, so no live coordinator acts on the run;
 * a lease still held is a killed one's whose connection the server has not
 * yet seen go, and it expires within its time to live: wait that long.
 */
async function coordinateAfterDeath(
  runId: string,
  options: PipelineOptions,
): Promise<Coordination> {
  return whileRefused(
    () => coordinate(runId, options, "start"),
    (options.coordinator?.ttlMs ?? DEFAULT_TTL_MS) + 2_000,
    options.signal,
  );
}

function checkRunId(flag: string, runId: string): void {
  if (!RUN_ID.test(runId)) {
    throw new FitsfleetError(
      "usage",
      EXIT.usage,
      `${flag} ${runId}: not a run id (r-…; see \`fitsfleet rebuild runs\`)`,
    );
  }
}

async function openCoordinator(
  runId: string,
  options: PipelineOptions,
): Promise<PgClient> {
  return connect(options.databaseUrl, {
    applicationName: `${RUN_APPLICATION_PREFIX}${runId}`,
  });
}

async function closeCoordinator(client: PgClient): Promise<void> {
  await releaseRunLock(client).catch(() => undefined);
  await client.end().catch(() => undefined);
}

function describeFigures(figures: Record<string, number>): string {
  return Object.entries(figures)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(2)}`)
    .join(", ");
}

async function drive(
  client: PgClient,
  runId: string,
  options: PipelineOptions,
  coordination: Coordination,
  details: Partial<Record<RunStep, unknown>>,
): Promise<RunReport> {
  const started = Date.now();
  const journal = coordination.journal;
  let run = (await getRun<RunSettings>(client, runId))!;
  const settings = run.settings;
  let provider: FleetProvider | undefined;
  const ctx: StepContext = {
    runId,
    settings,
    databaseUrl: options.databaseUrl,
    redisUrl: options.redisUrl,
    client,
    journal,
    logger: options.logger,
    checkpoint: {},
    resumed: false,
    fleet: run.fleet,
    calcacheFigures: run.steps.find((s) => s.step === "calcache")?.figures,
    provider: async () => {
      provider ??=
        settings.provider === "local"
          ? new LocalFleetProvider(
              {
                databaseUrl: options.databaseUrl,
                redisUrl: options.redisUrl,
                s3Endpoint: settings.s3Endpoint,
              },
              options.cli,
            )
          : new Ec2FleetProvider(
              await (
                await import("../../infra/aws.js")
              ).ec2Client(settings.ec2!.region),
              settings.ec2,
            );
      return provider;
    },
    commit: async (checkpoint, events, work) => {
      const step = current;
      return transition(client, journal, runId, events, async (c) => {
        const result = work === undefined ? undefined : await work(c);
        const keys =
          typeof checkpoint === "function" ? checkpoint(result) : checkpoint;
        if (Object.keys(keys).length > 0) {
          await saveCheckpoint(c, runId, step, keys);
        }
        Object.assign(ctx.checkpoint, keys);
        return result;
      });
    },
    progress: (p) => options.onProgress?.({ step: current, ...p }),
    fault: killPoint,
    signal: coordination.signal,
  };
  const stopIfLost = () => {
    const lost = coordination.lost();
    if (lost !== undefined) {
      throw leaseLostError(runId, lost);
    }
  };
  let current: RunStep = "init";
  /** Records the step's end; if that fails (the journal too), the step fails. */
  const finish = async (step: RunStep, result: StepResult) => {
    if (result.status === "done") {
      const figures = result.figures;
      await transition(
        client,
        journal,
        runId,
        [
          ...(result.events ?? []),
          { type: "step-finished", step, at: now(), figures },
        ],
        (c) => markStepEnded(c, runId, step, { status: "done", figures }),
      );
      if (step === "calcache") {
        ctx.calcacheFigures = figures;
      }
      if (result.detail !== undefined) {
        details[step] = result.detail;
      }
      options.onStep?.(step, "done", describeFigures(figures));
    } else {
      const reason = result.reason;
      await transition(
        client,
        journal,
        runId,
        [{ type: "step-skipped", step, at: now(), reason }],
        (c) => markStepEnded(c, runId, step, { status: "skipped", reason }),
      );
      options.onStep?.(step, "skipped", reason);
    }
  };
  if (run.state === "succeeded") {
    return report(client, runId, started, details);
  }
  for (const step of RUN_STEPS) {
    const record = run.steps.find((s) => s.step === step)!;
    if (record.status === "done" || record.status === "skipped") {
      continue;
    }
    if (step === "init") {
      continue;
    }
    stopIfLost();
    current = step;
    ctx.checkpoint = { ...record.checkpoint };
    ctx.resumed = record.attempts > 0;
    killPoint(`before:${step}`);
    await holdPoint(`before:${step}`, coordination.signal);
    stopIfLost();
    await transition(
      client,
      journal,
      runId,
      [{ type: "step-started", step, at: now() }],
      (c) => markStepStarted(c, runId, step),
    );
    options.onStep?.(step, "running", ctx.resumed ? "resumed" : "");
    try {
      const result = await STEPS[step as Exclude<RunStep, "init">](ctx);
      await finish(step, result);
    } catch (error) {
      // A coordinator that lost its lease records nothing more and ends no
      // fleet: the one that took over owns the run now.
      stopIfLost();
      if (error instanceof StaleEpochError) {
        throw leaseLostError(runId, error.message);
      }
      await fail(ctx, step, error, options);
      throw error;
    }
    killPoint(`after:${step}`);
  }
  stopIfLost();
  await transition(
    client,
    journal,
    runId,
    [{ type: "run-finished", at: now(), outcome: "succeeded" }],
    (c) => markRunEnded(c, runId, "succeeded", null),
  );
  run = (await getRun<RunSettings>(client, runId))!;
  return report(client, runId, started, details);
}

/**
 * A step failed: recorded with its reason, and a fleet that was launched
 * and not yet ended is ended, so a failed run costs nothing while it waits
 * for an operator (`--resume` launches anew if work is left).
 */
async function fail(
  ctx: StepContext,
  step: RunStep,
  error: unknown,
  options: PipelineOptions,
): Promise<void> {
  const e = coerceError(error);
  const reason = e.message;
  const interrupted = e.exitCode === EXIT.interrupted;
  const events: RunEvent[] = [
    { type: "step-failed", step, at: now(), reason },
    {
      type: "run-finished",
      at: now(),
      outcome: interrupted ? "aborted" : "failed",
    },
  ];
  await transition(ctx.client, ctx.journal, ctx.runId, events, async (c) => {
    await markStepEnded(c, ctx.runId, step, { status: "failed", reason });
    await markRunEnded(
      c,
      ctx.runId,
      interrupted ? "aborted" : "failed",
      `${step}: ${reason}`,
    );
  }).catch((error: unknown) =>
    options.logger.warn("could not record the failed step", {
      run: ctx.runId,
      step,
      error: coerceError(error).message,
    }),
  );
  options.onStep?.(step, "failed", reason);
  const launchedBefore = RUN_STEPS.indexOf(step) > RUN_STEPS.indexOf("launch");
  const endsBefore = RUN_STEPS.indexOf(step) <= RUN_STEPS.indexOf("terminate");
  if (
    ctx.fleet !== null &&
    (step === "launch" || (launchedBefore && endsBefore))
  ) {
    await endRunFleet(ctx, `the run failed at ${step}: ${reason}`).catch(
      (error: unknown) =>
        options.logger.warn("could not end the run's fleet", {
          run: ctx.runId,
          fleet: ctx.fleet,
          error: coerceError(error).message,
        }),
    );
  }
}

/** The run as `rebuild runs show` gives it: steps, figures, rows, failures, spend. */
export async function runReport(
  client: PgClient,
  runId: string,
): Promise<RunReport> {
  return report(client, runId, Date.now(), {});
}

async function report(
  client: PgClient,
  runId: string,
  started: number,
  details: Partial<Record<RunStep, unknown>>,
): Promise<RunReport> {
  const run = await getRun<RunSettings>(client, runId);
  if (run === undefined) {
    throw new PreconditionError(`no run ${runId} in this database`, {
      suggestion: "see `fitsfleet rebuild runs` for the runs it knows",
    });
  }
  const rows: Record<string, number> = {};
  for (const table of REBUILT_TABLES) {
    const { rows: n } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${table}`,
    );
    rows[table] = Number(n[0]!.n);
  }
  const { rows: states } = await client.query<{ state: string; n: string }>(
    "SELECT state, count(*) AS n FROM fitsfleet.ingest_ledger WHERE storage = $1 GROUP BY state",
    [run.storage],
  );
  const { rows: spend } = await client.query<{ usd: string | null }>(
    "SELECT sum(spend)::text AS usd FROM fitsfleet.fleets WHERE run = $1",
    [runId],
  );
  const { rows: logged } = await client.query<{ n: string }>(
    "SELECT count(*) AS n FROM fitsfleet.run_events WHERE run_id = $1",
    [runId],
  );
  return {
    run,
    rows,
    ledger: Object.fromEntries(states.map((s) => [s.state, Number(s.n)])),
    failures: (await listFailures(client, 20)).failures,
    spend: Number(spend[0]?.usd ?? 0),
    seconds: (Date.now() - started) / 1000,
    details,
    coordinator: {
      lease: await describeLease(client, runId),
      events: Number(logged[0]!.n),
    },
  };
}
