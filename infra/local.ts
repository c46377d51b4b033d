/**
 * The `local` provider: workers as processes on this machine, the same
 * `fitsfleet worker …` that runs on a spot instance, from the same launch
 * spec. `runLocalWorkers` starts ingest workers with --empty and watches
 * the ledger until they have drained the queue (the demo, a one-machine
 * rebuild).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

import { withClient } from "../lib/db/connect.js";
import { EXIT, FitsfleetError } from "../lib/errors.js";
import { sleep } from "../lib/exec.js";
import { packageRoot } from "../lib/paths.js";
import { type RebuildStatus, rebuildStatus } from "../lib/rebuild/ledger.js";
import { type WorkerLaunchSpec, workerLaunchSpec } from "./launch-spec.js";
import type {
  FleetLaunch,
  FleetMember,
  FleetProvider,
  FleetSpec,
  Provider,
  TerminateReport,
  WorkerHandle,
} from "./provider.js";

export { WORKER_ENVIRONMENT, YOUNG_GENERATION_FLAG } from "./launch-spec.js";

interface LocalWorker {
  handle: WorkerHandle;
  child: ChildProcess;
  exited: Promise<void>;
}

export interface LocalProviderOptions {
  /**
   * "tail" (default) keeps the last of each worker's stderr for its
   * handle; "inherit" passes its output to ours, where a fleet instance's
   * console and journal keep it.
   */
  workerOutput?: "tail" | "inherit";
}

export class LocalProvider implements Provider {
  readonly kind = "local";
  private readonly workers = new Map<string, LocalWorker>();

  constructor(
    private readonly cli = join(packageRoot(), "dist", "cli", "main.js"),
    private readonly options: LocalProviderOptions = {},
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
  private readonly provider: LocalProvider;
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
    this.provider = new LocalProvider(cli);
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
  const provider = new LocalProvider();
  const specs = Array.from({ length: options.workers }, (_, i) =>
    workerLaunchSpec({
      role: "ingest",
      name: `${options.name ?? "local"}-${i + 1}`,
      queue: options.queue,
      empty: true,
      fastRebuild: options.fastRebuild,
      makePreviews: options.makePreviews,
      databaseUrl: options.databaseUrl,
      redisUrl: options.redisUrl,
      s3Endpoint: options.s3Endpoint,
      logLevel: "warn",
    }),
  );
  const handles = await provider.launch(specs, { run: options.queue });
  const ids = handles.map((h) => h.id);
  let running = true;
  const finished = provider.waitForExit(ids).finally(() => {
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
    const bad = results.filter((r) => r.exitCode !== 0);
    if (bad.length > 0) {
      throw new FitsfleetError(
        "workers-failed",
        EXIT.failed,
        `${bad.length} local worker(s) failed: ${bad.map((b) => `${b.name} (exit ${b.exitCode}): ${(b.stderrTail ?? "").trim().split("\n").slice(-2).join(" ")}`).join("; ")}`,
        {
          suggestion:
            "see the message above; the ledger keeps what was done, and a worker (`fitsfleet worker ingest --empty`) finishes the rest",
        },
      );
    }
    const status = await withClient(options.databaseUrl, (c) =>
      rebuildStatus(c, 1),
    );
    return { status, seconds: (Date.now() - started) / 1000 };
  } finally {
    await provider.terminate(ids);
  }
}
