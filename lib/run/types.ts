/**
 * The vocabulary of a rebuild run, shared by the pipeline (`rebuild run`),
 * the coordinator's event log and snapshots, and the dashboard. The pipeline
 * writes these events as it goes; the coordinator folds them into a
 * `RunState`; a standby rebuilds the same state from a snapshot plus the
 * later events.
 */

/** The pipeline's steps, in the order a run takes them. */
export const RUN_STEPS = [
  "init",
  "migrate",
  "enqueue",
  "launch",
  "drain",
  "calcache",
  "terminate",
  "verify",
] as const;

export type RunStep = (typeof RUN_STEPS)[number];

export type StepStatus = "pending" | "running" | "done" | "skipped" | "failed";

/** Figures a step reports when it ends (files listed, rows written, …). */
export type StepFigures = Record<string, number>;

export type RunEvent =
  | { type: "run-started"; runId: string; at: string; provider: string }
  | { type: "step-started"; step: RunStep; at: string }
  | { type: "step-finished"; step: RunStep; at: string; figures: StepFigures }
  | { type: "step-skipped"; step: RunStep; at: string; reason: string }
  | { type: "step-failed"; step: RunStep; at: string; reason: string }
  | {
      type: "progress";
      at: string;
      done: number;
      failed: number;
      queued: number;
      active: number;
    }
  | {
      type: "instance-joined";
      at: string;
      instanceId: string;
      instanceType: string;
      /** Dollars per hour at launch; 0 for local workers. */
      hourlyPrice: number;
    }
  | { type: "instance-left"; at: string; instanceId: string }
  | { type: "spend"; at: string; dollars: number }
  | {
      type: "run-finished";
      at: string;
      outcome: "succeeded" | "failed" | "aborted";
    };

export interface StepState {
  status: StepStatus;
  startedAt?: string;
  endedAt?: string;
  figures?: StepFigures;
  reason?: string;
}

export interface InstanceState {
  instanceType: string;
  hourlyPrice: number;
  joinedAt: string;
  leftAt?: string;
}

/** What the coordinator knows about a run: the fold of its events. */
export interface RunState {
  runId: string;
  /** Sequence number of the last event folded in (0: none). */
  seq: number;
  status: "new" | "running" | "succeeded" | "failed" | "aborted";
  provider?: string;
  startedAt?: string;
  endedAt?: string;
  steps: Record<RunStep, StepState>;
  progress: { done: number; failed: number; queued: number; active: number };
  instances: Record<string, InstanceState>;
  spendDollars: number;
}
