/**
 * Where workers run, behind one interface: `local` (processes on this
 * machine, the embedded default and the demo's) and, with the spot fleet,
 * `ec2`. The rest of the toolkit launches, watches, tags and ends workers
 * through this and never knows which provider it has.
 */
import type { WorkerLaunchSpec, WorkerRole } from "./launch-spec.js";

export type WorkerState = "running" | "exited" | "terminated";

export interface WorkerHandle {
  /** The provider's id (a process id, an instance id). */
  id: string;
  name: string;
  role: WorkerRole;
  state: WorkerState;
  /** Set once the worker has ended. */
  exitCode?: number | null;
  tags: Record<string, string>;
  /** The last lines it wrote to stderr, for a failure's message (local only). */
  stderrTail?: string;
}

export interface Provider {
  readonly kind: "local" | "ec2";
  /** Starts one worker per spec, each tagged with `tags`. */
  launch(
    specs: WorkerLaunchSpec[],
    tags: Record<string, string>,
  ): Promise<WorkerHandle[]>;
  /** The workers this provider knows, optionally those carrying all of `tags`. */
  describe(tags?: Record<string, string>): Promise<WorkerHandle[]>;
  /** Asks the workers to stop (they finish or hand back their work); idempotent. */
  terminate(ids: string[]): Promise<void>;
  tag(ids: string[], tags: Record<string, string>): Promise<void>;
  /** Resolves when every named worker has ended. */
  waitForExit(ids: string[]): Promise<WorkerHandle[]>;
}
