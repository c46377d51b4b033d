/**
 * Recovering a run's state, as a standby does when it takes over, after
 * Akka's recovery: the youngest usable snapshot not older than the allowed
 * age, then the events after it up to the safe high-water mark. Without a
 * usable snapshot, all events; and when events were deleted that no usable
 * snapshot covers (or there never were any), what the ledger and the fleet
 * tables still say. The result names the path taken and why.
 */
import type { AnyClient } from "../db/connect.js";
import { rebuildStatus } from "../rebuild/ledger.js";
import { deletedThrough, eventPages, highestSeq } from "./events.js";
import { fold, initialState } from "./fold.js";
import { loadSnapshot, type SkippedSnapshot } from "./snapshots.js";
import type {
  InstanceState,
  RunState,
  RunStep,
  StepFigures,
  StepState,
  StepStatus,
} from "./types.js";

export type RecoverySource = "snapshot" | "events" | "ledger";

export interface RecoverOptions {
  /** Ignore snapshots taken longer ago than this; default any age. */
  snapshotMaxAgeMs?: number;
  /** Events read per query; default 10,000. */
  pageSize?: number;
}

export interface Recovery {
  state: RunState;
  source: RecoverySource;
  /** Why this path, in words for a log line. */
  reason: string;
  /** The snapshot started from (source "snapshot"). */
  snapshotSeq?: number;
  /** Events folded in after the snapshot or from the start. */
  replayed: number;
  /** Snapshots passed over as damaged, youngest first. */
  skippedSnapshots: SkippedSnapshot[];
  /** Transactions still running that held later events back (normally none after a takeover). */
  waitingOn: string[];
}

/** Rebuilds the run's state; see the module comment for the order of sources. */
export async function recover(
  client: AnyClient,
  runId: string,
  options: RecoverOptions = {},
): Promise<Recovery> {
  const deleted = await deletedThrough(client, runId);
  // A snapshot below the deleted events would need them to catch up.
  const { snapshot, skipped } = await loadSnapshot(client, runId, {
    minSeq: deleted,
    maxAgeMs: options.snapshotMaxAgeMs,
  });
  const highest = await highestSeq(client, runId);
  let start: RunState;
  let source: RecoverySource;
  let reason: string;
  if (snapshot !== undefined) {
    start = snapshot.state;
    source = "snapshot";
    reason = `snapshot at ${snapshot.seq} taken ${snapshot.takenAt.toISOString()}`;
  } else if (highest > 0 && deleted === 0) {
    start = initialState(runId);
    source = "events";
    reason =
      skipped.length > 0
        ? `${skipped.length} snapshot(s) unusable (${skipped[0]!.reason}); replaying all events`
        : "no snapshot young enough; replaying all events";
  } else {
    const state = await ledgerState(client, runId);
    // Events up to here are accounted for by the ledger's view; later ones
    // (a coordinator that continues) fold on top.
    state.seq = highest;
    return {
      state,
      source: "ledger",
      reason:
        highest === 0
          ? "the run has no events; state rebuilt from the ledger and fleet tables"
          : `events up to ${deleted} are deleted and no usable snapshot covers them; state rebuilt from the ledger and fleet tables`,
      replayed: 0,
      skippedSnapshots: skipped,
      waitingOn: [],
    };
  }
  let state = start;
  let replayed = 0;
  let waitingOn: string[] = [];
  for await (const page of eventPages(client, runId, {
    from: start.seq + 1,
    pageSize: options.pageSize,
  })) {
    state = fold(state, page.events);
    replayed += page.events.length;
    waitingOn = page.waitingOn;
  }
  return {
    state,
    source,
    reason,
    ...(snapshot === undefined ? {} : { snapshotSeq: snapshot.seq }),
    replayed,
    skippedSnapshots: skipped,
    waitingOn,
  };
}

/**
 * What can be known of a run without its events: progress from the ingest
 * ledger's states (one rebuild acts on a database at a time, so the ledger
 * is this run's), the instances and spend of the fleets launched for it,
 * and the steps as `rebuild run` committed them in fitsfleet.run_steps.
 * Without those rows, steps are inferred only where the tables prove them:
 * a filled ledger means init and enqueue finished, instances mean launch did.
 */
export async function ledgerState(
  client: AnyClient,
  runId: string,
): Promise<RunState> {
  const state = initialState(runId);
  const { counts, total } = await rebuildStatus(client);
  state.progress = {
    done: counts.done + counts.skipped,
    failed: counts.failed,
    queued: counts.queued,
    active: counts.active,
  };
  const { rows: members } = await client.query<{
    instance_id: string;
    instance_type: string | null;
    hourly_price: string;
    launched_at: Date;
    ended_at: Date | null;
    provider: string;
  }>(
    `SELECT i.instance_id, i.instance_type, i.hourly_price, i.launched_at, i.ended_at, f.provider
       FROM fitsfleet.fleet_instances i
       JOIN fitsfleet.fleets f ON f.name = i.fleet
      WHERE f.run = $1
      ORDER BY i.launched_at, i.instance_id`,
    [runId],
  );
  const instances: Record<string, InstanceState> = {};
  for (const m of members) {
    instances[m.instance_id] = {
      instanceType: m.instance_type ?? "unknown",
      hourlyPrice: Number(m.hourly_price),
      joinedAt: m.launched_at.toISOString(),
      ...(m.ended_at === null ? {} : { leftAt: m.ended_at.toISOString() }),
    };
  }
  state.instances = instances;
  // Spend as fleet-store computes it: price × hours from launch to end (or now).
  const { rows: spend } = await client.query<{ dollars: string }>(
    `SELECT coalesce(sum(i.hourly_price * extract(epoch FROM coalesce(i.ended_at, now()) - i.launched_at) / 3600), 0) AS dollars
       FROM fitsfleet.fleet_instances i
       JOIN fitsfleet.fleets f ON f.name = i.fleet
      WHERE f.run = $1`,
    [runId],
  );
  state.spendDollars = Number(spend[0]?.dollars ?? 0);
  if (members[0] !== undefined) {
    state.provider = members[0].provider;
    state.steps.launch = {
      status: "done",
      reason: "inferred from the fleet tables",
    };
  }
  if (total > 0) {
    const inferred = {
      status: "done" as const,
      reason: "inferred from the ledger",
    };
    state.steps.init = inferred;
    state.steps.enqueue = inferred;
  }
  if (total > 0 || members.length > 0) {
    state.status = "running";
  }
  await stepsFromRunTables(client, state);
  return state;
}

/**
 * The pipeline's own tables (migration 0007), where `rebuild run` commits
 * each step's state with its events: what they say of a step replaces what
 * was inferred above, as they are the record, not a guess.
 */
async function stepsFromRunTables(
  client: AnyClient,
  state: RunState,
): Promise<void> {
  const { rows: present } = await client.query<{ ok: boolean }>(
    "SELECT to_regclass('fitsfleet.run_steps') IS NOT NULL AS ok",
  );
  if (present[0]?.ok !== true) {
    return;
  }
  const { rows: runs } = await client.query<{
    state: "running" | "succeeded" | "failed" | "aborted";
    provider: string;
    created_at: Date;
    ended_at: Date | null;
  }>(
    "SELECT state, provider, created_at, ended_at FROM fitsfleet.runs WHERE id = $1",
    [state.runId],
  );
  const run = runs[0];
  if (run === undefined) {
    return;
  }
  state.status = run.state;
  state.provider = run.provider;
  state.startedAt = run.created_at.toISOString();
  if (run.ended_at !== null) {
    state.endedAt = run.ended_at.toISOString();
  }
  const { rows: steps } = await client.query<{
    step: RunStep;
    status: StepStatus;
    started_at: Date | null;
    ended_at: Date | null;
    figures: StepFigures;
    reason: string | null;
  }>(
    "SELECT step, status, started_at, ended_at, figures, reason FROM fitsfleet.run_steps WHERE run_id = $1",
    [state.runId],
  );
  for (const r of steps) {
    if (!(r.step in state.steps)) {
      continue;
    }
    const step: StepState = { status: r.status };
    if (r.started_at !== null && r.status !== "pending") {
      step.startedAt = r.started_at.toISOString();
    }
    if (r.ended_at !== null && r.status !== "running") {
      step.endedAt = r.ended_at.toISOString();
    }
    if (r.status === "done") {
      step.figures = r.figures;
    }
    if (r.reason !== null) {
      step.reason = r.reason;
    }
    state.steps[r.step] = step;
  }
}
