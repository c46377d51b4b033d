/**
 * The `local` provider: workers as processes on this machine, the same
 * `fitsfleet worker …` that runs on a spot instance, from the same launch
 * spec. `runLocalWorkers` runs a local fleet until it has drained the
 * queue (the demo, a one-machine rebuild).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";

import { EXIT, FitsfleetError } from "../lib/errors.js";
import { packageRoot } from "../lib/paths.js";
import type { RebuildStatus } from "../lib/rebuild/ledger.js";
import { guardFleet, launchFleet } from "./fleet.js";
import type { WorkerRole } from "./launch-spec.js";
import { type WorkerLaunchSpec, workerLaunchSpec } from "./launch-spec.js";
import type {
  FleetLaunch,
  FleetMember,
  FleetProvider,
  FleetSpec,
  TerminateReport,
} from "./provider.js";

export type WorkerState = "running" | "exited" | "terminated";

export interface WorkerHandle {
  /** The process id. */
  id: string;
  name: string;
  role: WorkerRole;
  state: WorkerState;
  /** Set once the worker has ended. */
  exitCode?: number | null;
  tags: Record<string, string>;
  /** The last lines it wrote to stderr, for a failure's message. */
  stderrTail?: string;
}

export { WORKER_ENVIRONMENT, YOUNG_GENERATION_FLAG } from "./launch-spec.js";

interface LocalWorker {
  handle: WorkerHandle;
  child: ChildProcess;
  exited: Promise<void>;
}

export interface WorkerProcessesOptions {
  /**
   * "tail" (default) keeps the last of each worker's stderr for its
   * handle; "inherit" passes its output to ours, where a fleet instance's
   * console and journal keep it.
   */
  workerOutput?: "tail" | "inherit";
}

/**
 * Worker processes on this machine, each started from a launch spec (the
 * secrets in its environment, never its command line): what a local fleet
 * runs, and what a fleet instance's boot runs.
 */
export class WorkerProcesses {
  private readonly workers = new Map<string, LocalWorker>();

  constructor(
    private readonly cli = join(packageRoot(), "dist", "cli", "main.js"),
    private readonly options: WorkerProcessesOptions = {},
  ) {}

  launch(
    specs: WorkerLaunchSpec[],
    tags: Record<string, string>,
  ): Promise<WorkerHandle[]> {
    return Promise.resolve(
      specs.map((spec) => {
        const child = spawn(
          process.execPath,
          [...spec.nodeOptions, this.cli, ...spec.argv],
          {
            // Secrets in the environment: a command line is visible to every user.
            env: { ...process.env, ...spec.env, ...spec.secretEnv },
            stdio:
              this.options.workerOutput === "inherit"
                ? ["ignore", "inherit", "inherit"]
                : ["ignore", "ignore", "pipe"],
          },
        );
        const handle: WorkerHandle = {
          id: String(child.pid ?? `failed-${spec.name}`),
          name: spec.name,
          role: spec.role,
          state: "running",
          tags: { ...tags },
          stderrTail: "",
        };
        child.stderr?.on("data", (d: Buffer) => {
          handle.stderrTail = (handle.stderrTail + d.toString()).slice(-4000);
        });
        const exited = new Promise<void>((resolve) => {
          child.once("exit", (code) => {
            handle.exitCode = code;
            if (handle.state === "running") {
              handle.state = "exited";
            }
            resolve();
          });
          child.once("error", (error) => {
            handle.exitCode = null;
            handle.state = "exited";
            handle.stderrTail += error.message;
            resolve();
          });
        });
        this.workers.set(handle.id, { handle, child, exited });
        return handle;
      }),
    );
  }

  describe(tags: Record<string, string> = {}): Promise<WorkerHandle[]> {
    return Promise.resolve(
      [...this.workers.values()]
        .map((w) => w.handle)
        .filter((h) => Object.entries(tags).every(([k, v]) => h.tags[k] === v)),
    );
  }

  terminate(ids: string[]): Promise<void> {
    for (const id of ids) {
      const worker = this.workers.get(id);
      if (worker !== undefined && running(worker.child)) {
        worker.handle.state = "terminated";
        worker.child.kill("SIGTERM");
      }
    }
    return Promise.resolve();
  }

  /** SIGKILL, for a worker that outlived its own shutdown deadline. */
  kill(ids: string[]): void {
    for (const id of ids) {
      const worker = this.workers.get(id);
      if (worker !== undefined && running(worker.child)) {
        worker.handle.state = "terminated";
        worker.child.kill("SIGKILL");
      }
    }
  }

  tag(ids: string[], tags: Record<string, string>): Promise<void> {
    for (const id of ids) {
      Object.assign(this.workers.get(id)?.handle.tags ?? {}, tags);
    }
    return Promise.resolve();
  }

  async waitForExit(ids: string[]): Promise<WorkerHandle[]> {
    const workers = ids.flatMap((id) => {
      const w = this.workers.get(id);
      return w === undefined ? [] : [w];
    });
    await Promise.all(workers.map((w) => w.exited));
    return workers.map((w) => w.handle);
  }
}

/**
 * The local provider as a fleet: each "instance" is a group of worker
 * processes on this machine, named like an instance's workers, costing
 * nothing. The guard, status and terminate work on it as on EC2.
 */
export class LocalFleetProvider implements FleetProvider {
  readonly kind = "local";
  private readonly provider: WorkerProcesses;
  private readonly groups = new Map<
    string,
    { fleet: string; member: FleetMember; ids: string[] }
  >();

  constructor(
    private readonly connection: {
      databaseUrl: string;
      redisUrl: string;
      s3Endpoint?: string;
    },
    cli?: string,
  ) {
    this.provider = new WorkerProcesses(cli);
  }

  async launch(spec: FleetSpec): Promise<FleetLaunch> {
    const members: FleetMember[] = [];
    for (let k = 1; k <= spec.instances; k++) {
      const id = `${spec.name}-${k}`;
      const worker = (role: "ingest" | "preview", n: number) =>
        workerLaunchSpec({
          role,
          name: `${id}-${role}-${n}`,
          queue: spec.queue,
          empty: true,
          fastRebuild: spec.fastRebuild,
          makePreviews: spec.makePreviews,
          databaseUrl: this.connection.databaseUrl,
          redisUrl: this.connection.redisUrl,
          s3Endpoint: this.connection.s3Endpoint,
          storage: spec.storage,
          previews: spec.previews,
          logLevel: spec.logLevel ?? "warn",
        });
      const specs = [
        ...Array.from({ length: spec.ingestWorkers ?? 1 }, (_, n) =>
          worker("ingest", n + 1),
        ),
        ...Array.from({ length: spec.previewWorkers }, (_, n) =>
          worker("preview", n + 1),
        ),
      ];
      const handles = await this.provider.launch(specs, { fleet: spec.name });
      const member: FleetMember = {
        id,
        state: "running",
        launchedAt: new Date(),
        hourlyPrice: 0,
      };
      this.groups.set(id, {
        fleet: spec.name,
        member,
        ids: handles.map((h) => h.id),
      });
      members.push({ ...member });
    }
    return { members, ec2FleetIds: [], errors: [] };
  }

  async members(fleet: string): Promise<FleetMember[]> {
    const out: FleetMember[] = [];
    for (const group of this.groups.values()) {
      if (group.fleet !== fleet) {
        continue;
      }
      const handles = await this.provider.describe();
      const mine = handles.filter((h) => group.ids.includes(h.id));
      const running = mine.some((h) => h.state === "running");
      group.member.state = running ? group.member.state : "ended";
      out.push({ ...group.member });
    }
    return out;
  }

  /** The workers' stderr, last lines, of the members that ended badly. */
  async failures(fleet: string): Promise<string[]> {
    const handles = await this.provider.describe({ fleet });
    return handles
      .filter((h) => h.state === "exited" && h.exitCode !== 0)
      .map(
        (h) =>
          `${h.name} (exit ${h.exitCode}): ${(h.stderrTail ?? "").trim().split("\n").slice(-2).join(" ")}`,
      );
  }

  async terminate(fleet: string): Promise<TerminateReport> {
    const groups = [...this.groups.values()].filter((g) => g.fleet === fleet);
    const ids = groups.flatMap((g) => g.ids);
    for (const g of groups) {
      if (g.member.state !== "ended") {
        g.member.state = "ending";
      }
    }
    await this.provider.terminate(ids);
    await this.provider.waitForExit(ids);
    for (const g of groups) {
      g.member.state = "ended";
    }
    return {
      instances: groups.map((g) => g.member.id),
      fleets: [],
      templates: [],
    };
  }
}

/** Not yet ended: a child killed by a signal has no exit code either. */
function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

export interface LocalWorkersOptions {
  databaseUrl: string;
  redisUrl: string;
  queue: string;
  workers: number;
  /** The fleet's name prefix (default "local"); its workers are NAME-…-K-ingest-1. */
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
  fleet: string;
}

/**
 * A one-machine rebuild (the demo's): a local fleet of `workers` groups of
 * one ingest worker each, launched, recorded and guarded like any fleet,
 * until the queue drains. Workers that end before it does are an error
 * that carries what they last said.
 */
export async function runLocalWorkers(
  options: LocalWorkersOptions,
): Promise<LocalWorkersResult> {
  const started = Date.now();
  const provider = new LocalFleetProvider({
    databaseUrl: options.databaseUrl,
    redisUrl: options.redisUrl,
    s3Endpoint: options.s3Endpoint,
  });
  const spec: FleetSpec = {
    name: `${options.name ?? "local"}-${randomBytes(3).toString("hex")}`,
    run: options.queue,
    instances: options.workers,
    ingestWorkers: 1,
    previewWorkers: 0,
    queue: options.queue,
    fastRebuild: options.fastRebuild === true,
    makePreviews: options.makePreviews === true,
    logLevel: "warn",
    deadline: new Date(Date.now() + 7 * 24 * 3_600_000),
  };
  await launchFleet(provider, spec, { databaseUrl: options.databaseUrl });
  try {
    const outcome = await guardFleet(provider, spec.name, {
      databaseUrl: options.databaseUrl,
      intervalMs: 1000,
      onTick: (tick) => options.onStatus?.(tick.status),
    });
    if (outcome?.reason !== "drained") {
      const bad = await provider.failures(spec.name);
      throw new FitsfleetError(
        "workers-failed",
        EXIT.failed,
        `the local workers stopped before the queue drained (${outcome?.message ?? "interrupted"})${bad.length > 0 ? `: ${bad.join("; ")}` : ""}`,
        {
          suggestion:
            "see the message above; the ledger keeps what was done, and a worker (`fitsfleet worker ingest --empty`) finishes the rest",
        },
      );
    }
    return {
      status: outcome.status,
      seconds: (Date.now() - started) / 1000,
      fleet: spec.name,
    };
  } finally {
    // Ending an ended fleet is a no-op; this ends it if the guard could not.
    await provider.terminate(spec.name);
  }
}
