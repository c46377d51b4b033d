/**
 * Snapshots of a run's folded state (migration 0005), after Akka's snapshot
 * store: saved at a sequence number (saving again at the same number
 * overwrites), loaded as the youngest one matching the criteria, deleted one
 * by one or by criteria, and pruned to the youngest N.
 *
 * A snapshot is stored as the exact bytes that were hashed. One whose bytes
 * no longer match their SHA-256, that does not parse, or that is not the
 * state of this run at this number is skipped for the next older one, and
 * the caller is told which and why: a damaged row never stops a recovery.
 */
import { createHash } from "node:crypto";

import type { AnyClient } from "../db/connect.js";
import { RUN_STEPS, type RunState } from "./types.js";

export interface SnapshotCriteria {
  /** Only snapshots at or below this sequence number. */
  maxSeq?: number;
  /** Only snapshots at or above this sequence number. */
  minSeq?: number;
  /** Only snapshots taken at or before this time. */
  maxTimestamp?: Date;
  /** Only snapshots taken at or after this time. */
  minTimestamp?: Date;
  /** Only snapshots taken at most this long ago (by the database's clock). */
  maxAgeMs?: number;
}

export interface SnapshotMeta {
  runId: string;
  seq: number;
  /** Kept to the millisecond, so that a JavaScript Date names it exactly in criteria. */
  takenAt: Date;
}

export interface LoadedSnapshot extends SnapshotMeta {
  state: RunState;
}

export interface SkippedSnapshot extends SnapshotMeta {
  reason: string;
}

export interface SnapshotLoad {
  /** The youngest usable snapshot matching the criteria, if any. */
  snapshot: LoadedSnapshot | undefined;
  /** Younger matching snapshots that could not be used, youngest first. */
  skipped: SkippedSnapshot[];
}

function sha256(bytes: Buffer): Buffer {
  return createHash("sha256").update(bytes).digest();
}

/** Saves `state` as the run's snapshot at `seq`, replacing one already there. */
export async function saveSnapshot(
  client: AnyClient,
  runId: string,
  seq: number,
  state: RunState,
): Promise<SnapshotMeta> {
  const bytes = Buffer.from(JSON.stringify(state), "utf8");
  const { rows } = await client.query<{ taken_at: Date }>(
    `INSERT INTO fitsfleet.run_snapshots (run_id, seq, taken_at, state, sha256)
     VALUES ($1, $2, date_trunc('milliseconds', now()), $3, $4)
     ON CONFLICT (run_id, seq) DO UPDATE
       SET taken_at = EXCLUDED.taken_at, state = EXCLUDED.state, sha256 = EXCLUDED.sha256
     RETURNING taken_at`,
    [runId, seq, bytes, sha256(bytes)],
  );
  return { runId, seq, takenAt: rows[0]!.taken_at };
}

/** `WHERE` conditions for the criteria, parameters from `$2` on (`$1` is the run). */
function criteriaSql(criteria: SnapshotCriteria): {
  where: string;
  values: unknown[];
} {
  const conditions = ["run_id = $1"];
  const values: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    values.push(value);
    conditions.push(sql.replace("?", `$${values.length + 1}`));
  };
  if (criteria.maxSeq !== undefined) {
    add("seq <= ?", criteria.maxSeq);
  }
  if (criteria.minSeq !== undefined) {
    add("seq >= ?", criteria.minSeq);
  }
  if (criteria.maxTimestamp !== undefined) {
    add("taken_at <= ?", criteria.maxTimestamp);
  }
  if (criteria.minTimestamp !== undefined) {
    add("taken_at >= ?", criteria.minTimestamp);
  }
  if (criteria.maxAgeMs !== undefined) {
    add(
      "taken_at >= now() - make_interval(secs => ?::float8 / 1000)",
      criteria.maxAgeMs,
    );
  }
  return { where: conditions.join(" AND "), values };
}

/** The state the stored bytes hold, or why they are not this run's state at `seq`. */
function problem(
  runId: string,
  seq: number,
  bytes: Buffer,
  stored: Buffer,
): string | RunState {
  if (!sha256(bytes).equals(stored)) {
    return "checksum mismatch: the stored state was altered or damaged";
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    return `unparsable: ${(error as Error).message}`;
  }
  const s = parsed as Partial<RunState> | null;
  if (
    typeof s !== "object" ||
    s === null ||
    s.runId !== runId ||
    s.seq !== seq ||
    typeof s.steps !== "object" ||
    s.steps === null ||
    !RUN_STEPS.every((step) => typeof s.steps?.[step]?.status === "string") ||
    typeof s.progress !== "object" ||
    typeof s.instances !== "object" ||
    typeof s.spendDollars !== "number"
  ) {
    return `not the state of run ${runId} at ${seq}`;
  }
  return s as RunState;
}

/**
 * The youngest (highest sequence number) usable snapshot matching
 * `criteria`, skipping damaged ones; `snapshot` is undefined when none is.
 */
export async function loadSnapshot(
  client: AnyClient,
  runId: string,
  criteria: SnapshotCriteria = {},
): Promise<SnapshotLoad> {
  const { where, values } = criteriaSql(criteria);
  const skipped: SkippedSnapshot[] = [];
  // A few at a time: usually the first is good, and states can be large.
  const batch = 4;
  for (let offset = 0; ; offset += batch) {
    const { rows } = await client.query<{
      seq: string;
      taken_at: Date;
      state: Buffer;
      sha256: Buffer;
    }>(
      `SELECT seq, taken_at, state, sha256 FROM fitsfleet.run_snapshots
        WHERE ${where}
        ORDER BY seq DESC
        LIMIT ${batch} OFFSET ${offset}`,
      [runId, ...values],
    );
    for (const r of rows) {
      const seq = Number(r.seq);
      const meta = { runId, seq, takenAt: r.taken_at };
      const result = problem(runId, seq, r.state, r.sha256);
      if (typeof result === "string") {
        skipped.push({ ...meta, reason: result });
      } else {
        return { snapshot: { ...meta, state: result }, skipped };
      }
    }
    if (rows.length < batch) {
      return { snapshot: undefined, skipped };
    }
  }
}

/** The run's snapshots, youngest first, without their contents. */
export async function listSnapshots(
  client: AnyClient,
  runId: string,
): Promise<SnapshotMeta[]> {
  const { rows } = await client.query<{ seq: string; taken_at: Date }>(
    "SELECT seq, taken_at FROM fitsfleet.run_snapshots WHERE run_id = $1 ORDER BY seq DESC",
    [runId],
  );
  return rows.map((r) => ({ runId, seq: Number(r.seq), takenAt: r.taken_at }));
}

/** Deletes the run's snapshot at `seq`; true when there was one. */
export async function deleteSnapshot(
  client: AnyClient,
  runId: string,
  seq: number,
): Promise<boolean> {
  const { rowCount } = await client.query(
    "DELETE FROM fitsfleet.run_snapshots WHERE run_id = $1 AND seq = $2",
    [runId, seq],
  );
  return (rowCount ?? 0) > 0;
}

/** Deletes every snapshot of the run matching `criteria`; returns how many. */
export async function deleteSnapshots(
  client: AnyClient,
  runId: string,
  criteria: SnapshotCriteria,
): Promise<number> {
  const { where, values } = criteriaSql(criteria);
  const { rowCount } = await client.query(
    `DELETE FROM fitsfleet.run_snapshots WHERE ${where}`,
    [runId, ...values],
  );
  return rowCount ?? 0;
}

/** Keeps the run's `keep` youngest snapshots and deletes the rest; returns how many went. */
export async function pruneSnapshots(
  client: AnyClient,
  runId: string,
  keep: number,
): Promise<number> {
  const { rowCount } = await client.query(
    `DELETE FROM fitsfleet.run_snapshots
      WHERE run_id = $1 AND seq NOT IN (
        SELECT seq FROM fitsfleet.run_snapshots WHERE run_id = $1 ORDER BY seq DESC LIMIT $2)`,
    [runId, Math.max(0, keep)],
  );
  return rowCount ?? 0;
}
