/**
 * What every step of `rebuild run` gets: the run, its settings, the
 * coordinator's connection (which holds the run lock), the journal, and
 * the ways to report.
 */
import type { FleetProvider } from "../../infra/provider.js";
import type { PgClient } from "../db/connect.js";
import type { Logger } from "../logger.js";
import type { RunJournal } from "./journal.js";
import type { RunSettings } from "./settings.js";
import type { RunEvent, RunStep, StepFigures } from "./types.js";

/** A progress line from a long step (drain, calcache, enqueue). */
export interface RunProgress {
  step: RunStep;
  message: string;
  fields: Record<string, unknown>;
}

export interface StepContext {
  runId: string;
  settings: RunSettings;
  databaseUrl: string;
  redisUrl: string;
  /** The coordinator's connection: every state change goes through it. */
  client: PgClient;
  journal: RunJournal;
  logger: Logger;
  /** What the step recorded as finished inside itself in an earlier attempt. */
  checkpoint: Record<string, unknown>;
  /** The step was started before, by a process that did not finish it. */
  resumed: boolean;
  /** The calcache step's figures, once it has run (verify reads them). */
  calcacheFigures?: StepFigures;
  /** The fleet the launch step made (its name), once it has. */
  fleet: string | null;
  /** This process's fleet provider (one per process: a local fleet's workers are its children). */
  provider(): Promise<FleetProvider>;
  /**
   * Records checkpoint keys (and events) in one transaction with `work`
   * (the step's own writes); the checkpoint may depend on what `work` returned.
   */
  commit<T>(
    checkpoint:
      | Record<string, unknown>
      | ((result: NoInfer<T> | undefined) => Record<string, unknown>),
    events: RunEvent[],
    work?: (client: PgClient) => Promise<T>,
  ): Promise<T | undefined>;
  progress(progress: Omit<RunProgress, "step">): void;
  /** A test's kill point (see lib/run/faults.ts). */
  fault(point: string): void;
  signal?: AbortSignal;
}

export type StepFn = (ctx: StepContext) => Promise<StepResult>;

export type StepResult =
  | {
      status: "done";
      figures: StepFigures;
      events?: RunEvent[];
      /** What this process learned in detail (not stored): the demo prints it. */
      detail?: unknown;
    }
  | { status: "skipped"; reason: string };
