/**
 * `fitsfleet.runs` and `fitsfleet.run_steps` (migration 0007): every
 * statement on them lives here. A step's state changes in one transaction
 * with the journal's events for it (lib/run/journal.ts) and, where the step
 * writes to this database, with that work too.
 */
import { type AnyClient, withTransaction } from "../db/connect.js";
import type { RunJournal } from "./journal.js";
import {
  RUN_STEPS,
  type RunEvent,
  type RunStep,
  type StepFigures,
  type StepStatus,
} from "./types.js";

export type RunOutcome = "running" | "succeeded" | "failed" | "aborted";

export interface StepRecord {
  step: RunStep;
  status: StepStatus;
  attempts: number;
  startedAt: string | null;
  endedAt: string | null;
  seconds: number | null;
  figures: StepFigures;
  checkpoint: Record<string, unknown>;
  reason: string | null;
}

export interface RunRecord<S = Record<string, unknown>> {
  id: string;
  state: RunOutcome;
  provider: "local" | "ec2";
  storage: string;
  queue: string;
  settings: S;
  fleet: string | null;
  coordinator: string | null;
  createdAt: string;
  updatedAt: string;
  endedAt: string | null;
  reason: string | null;
  steps: StepRecord[];
}

interface RunRow {
  id: string;
  state: RunOutcome;
  provider: "local" | "ec2";
  storage: string;
  queue: string;
  options: Record<string, unknown>;
  fleet: string | null;
  coordinator: string | null;
  created_at: Date;
  updated_at: Date;
  ended_at: Date | null;
  reason: string | null;
}

interface StepRow {
  run_id: string;
  step: RunStep;
  status: StepStatus;
  attempts: number;
  started_at: Date | null;
  ended_at: Date | null;
  figures: StepFigures;
  checkpoint: Record<string, unknown>;
  reason: string | null;
}

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

function stepRecord(r: StepRow): StepRecord {
  return {
    step: r.step,
    status: r.status,
    attempts: r.attempts,
    startedAt: iso(r.started_at),
    endedAt: iso(r.ended_at),
    seconds:
      r.started_at !== null && r.ended_at !== null
        ? (r.ended_at.getTime() - r.started_at.getTime()) / 1000
        : null,
    figures: r.figures,
    checkpoint: r.checkpoint,
    reason: r.reason,
  };
}

function runRecord<S>(r: RunRow, steps: StepRow[]): RunRecord<S> {
  return {
    id: r.id,
    state: r.state,
    provider: r.provider,
    storage: r.storage,
    queue: r.queue,
    settings: r.options as S,
    fleet: r.fleet,
    coordinator: r.coordinator,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    endedAt: iso(r.ended_at),
    reason: r.reason,
    steps: steps
      .filter((s) => s.run_id === r.id)
      .sort((a, b) => RUN_STEPS.indexOf(a.step) - RUN_STEPS.indexOf(b.step))
      .map(stepRecord),
  };
}

export interface NewRun {
  id: string;
  provider: "local" | "ec2";
  storage: string;
  queue: string;
  settings: object;
  coordinator: string;
}

/** The run and its steps, all pending; call inside the transaction that records the first step. */
export async function insertRun(client: AnyClient, run: NewRun): Promise<void> {
  await client.query(
    `INSERT INTO fitsfleet.runs (id, provider, storage, queue, options, coordinator)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      run.id,
      run.provider,
      run.storage,
      run.queue,
      JSON.stringify(run.settings),
      run.coordinator,
    ],
  );
  await client.query(
    `INSERT INTO fitsfleet.run_steps (run_id, step, position)
     SELECT $1, step, position FROM unnest($2::text[]) WITH ORDINALITY AS s(step, position)`,
    [run.id, [...RUN_STEPS]],
  );
}

export async function getRun<S = Record<string, unknown>>(
  client: AnyClient,
  id: string,
): Promise<RunRecord<S> | undefined> {
  const { rows } = await client.query<RunRow>(
    "SELECT * FROM fitsfleet.runs WHERE id = $1",
    [id],
  );
  if (rows[0] === undefined) {
    return undefined;
  }
  const { rows: steps } = await client.query<StepRow>(
    "SELECT * FROM fitsfleet.run_steps WHERE run_id = $1",
    [id],
  );
  return runRecord<S>(rows[0], steps);
}

/** The newest runs first. */
export async function listRuns<S = Record<string, unknown>>(
  client: AnyClient,
  limit = 50,
): Promise<RunRecord<S>[]> {
  const { rows } = await client.query<RunRow>(
    "SELECT * FROM fitsfleet.runs ORDER BY created_at DESC, id LIMIT $1",
    [limit],
  );
  const { rows: steps } = await client.query<StepRow>(
    "SELECT * FROM fitsfleet.run_steps WHERE run_id = ANY($1::text[])",
    [rows.map((r) => r.id)],
  );
  return rows.map((r) => runRecord<S>(r, steps));
}

/** Whether this database has the run tables yet (before `db init`, it has not). */
export async function hasRunTables(client: AnyClient): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(
    "SELECT to_regclass('fitsfleet.run_steps') IS NOT NULL AS ok",
  );
  return rows[0]?.ok === true;
}

/**
 * A state change and its events in one transaction, with `work` (the step's
 * own writes to this database) inside it too.
 */
export async function transition<T>(
  client: AnyClient,
  journal: RunJournal,
  runId: string,
  events: RunEvent[],
  work: (client: AnyClient) => Promise<T>,
): Promise<T> {
  const result = await withTransaction(client, async (c) => {
    const result = await work(c);
    await c.query(
      "UPDATE fitsfleet.runs SET updated_at = now() WHERE id = $1",
      [runId],
    );
    await journal.record(c, runId, events);
    return result;
  });
  await journal.committed?.();
  return result;
}

export async function markStepStarted(
  client: AnyClient,
  runId: string,
  step: RunStep,
  at?: Date,
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.run_steps
        SET status = 'running', attempts = attempts + 1,
            started_at = coalesce(started_at, $3, now()), ended_at = NULL, reason = NULL
      WHERE run_id = $1 AND step = $2`,
    [runId, step, at ?? null],
  );
}

export async function markStepEnded(
  client: AnyClient,
  runId: string,
  step: RunStep,
  end: {
    status: "done" | "skipped" | "failed";
    figures?: StepFigures;
    reason?: string;
    /** When it ended, if not now (init, recorded after the fact). */
    at?: Date;
  },
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.run_steps
        SET status = $3, ended_at = coalesce($6, now()),
            started_at = coalesce(started_at, $6, now()),
            figures = figures || $4::jsonb, reason = $5
      WHERE run_id = $1 AND step = $2`,
    [
      runId,
      step,
      end.status,
      JSON.stringify(end.figures ?? {}),
      end.reason ?? null,
      end.at ?? null,
    ],
  );
}

/** Merges into the step's checkpoint (what it has finished inside itself). */
export async function saveCheckpoint(
  client: AnyClient,
  runId: string,
  step: RunStep,
  checkpoint: Record<string, unknown>,
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.run_steps SET checkpoint = checkpoint || $3::jsonb
      WHERE run_id = $1 AND step = $2`,
    [runId, step, JSON.stringify(checkpoint)],
  );
}

export async function setRunFleet(
  client: AnyClient,
  runId: string,
  fleet: string,
): Promise<void> {
  await client.query("UPDATE fitsfleet.runs SET fleet = $2 WHERE id = $1", [
    runId,
    fleet,
  ]);
}

export async function setCoordinator(
  client: AnyClient,
  runId: string,
  coordinator: string,
): Promise<void> {
  await client.query(
    "UPDATE fitsfleet.runs SET coordinator = $2, state = 'running', ended_at = NULL, reason = NULL, updated_at = now() WHERE id = $1",
    [runId, coordinator],
  );
}

export async function markRunEnded(
  client: AnyClient,
  runId: string,
  state: Exclude<RunOutcome, "running">,
  reason: string | null,
): Promise<void> {
  await client.query(
    "UPDATE fitsfleet.runs SET state = $2, reason = $3, ended_at = now(), updated_at = now() WHERE id = $1",
    [runId, state, reason],
  );
}
