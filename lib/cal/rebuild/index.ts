/**
 * The set-based rebuild of `calcache`: every covered science frame's ranked
 * calibrations, the rows the per-frame evaluator would write into an empty
 * cache, computed with a few large statements per search shape instead of
 * one query per frame and type (docs/CALIBRATION.md, "The set-based
 * rebuild").
 *
 * Steps:
 * 0. Close the calcache writers' gate (`closeWritersGate`): wait for the
 *    `worker calcache` batches in flight, and keep workers out until the end.
 * 1. Fix the covered frames (`calcache_frames`), as the reference's
 *    `add_to_calcache_queue.py --all` picks them: canonical diskfiles,
 *    metadata not known bad, not engineering unless asked, and the
 *    `--instrument` / `--since` filters.
 * 2. Join each instrument's candidates once (`buildCandidateTable`), while
 *    the first batch is planned.
 * 3. In batches of frames, one after another: read the frames' header and
 *    first instrument rows in bulk, plan each frame with the evaluator's own
 *    planning and compiler (through the planner's memo, plan.ts), group the
 *    searches by SQL shape and run one statement per shape, the shapes
 *    spread over `jobs` connections (the next batch is planned meanwhile).
 * 4. Weave, de-duplicate and rank in one statement into `calcache_new`.
 * 5. Replace the covered frames' rows in one transaction (tables.ts).
 */
import { availableParallelism } from "node:os";

import type { AnyClient } from "../../db/connect.js";
import {
  CALCACHE_REBUILD_LOCK_KEY,
  CALCACHE_WRITERS_GATE_KEY,
} from "../../db/locks.js";
import { PreconditionError, UsageError } from "../../errors.js";
import { RateMeter } from "../../progress.js";
import { startModuleThread } from "../../threads.js";
import { baseFrom } from "../core/query.js";
import {
  FRAME_HEADER_COLUMNS,
  type FrameEvaluation,
  type FrameHeaderRow,
} from "../evaluate.js";
import { INSTRUMENT_RULES, rulesForInstrument } from "../rules/index.js";
import type { FramePlanner } from "./plan.js";
import {
  errorData,
  type SearchThreadCommand,
  type SearchThreadData,
  type SearchThreadMessage,
  type ThreadErrorData,
} from "./search-protocol.js";
import { type Shape, ShapeGroups } from "./shapes.js";
import { eachOn } from "./spread.js";
import {
  buildCandidateTable,
  buildNewTable,
  candidateTable,
  createWorkTables,
  dropWorkTables,
  FRAMES_TABLE,
  indexNewTable,
  NEW_TABLE,
  PENDING_ENTRY,
  rebuildConnection,
  type ReplaceHook,
  replaceInPlace,
  type ReplaceResult,
  swapIn,
  WORK_TABLE,
} from "./tables.js";

export type RebuildStrategy = "swap" | "in-place";

export interface RebuildCalcacheOptions {
  databaseUrl: string;
  /** Search threads (each with its own connections); the default is this machine's cores. */
  jobs?: number;
  /** header.instrument values (any case); GMOS also covers GMOS-N and GMOS-S. */
  instruments?: string[];
  /** Only frames observed at or after this time (header.ut_datetime, UTC). */
  since?: Date;
  /** Engineering frames too, as the reference's `--include-eng`. */
  includeEngineering?: boolean;
  dryRun?: boolean;
  /** Frames per batch (one batch is planned and searched on one connection). */
  batchSize?: number;
  /** The default: swap for a rebuild of everything, in place for a filtered one. */
  strategy?: RebuildStrategy;
  onProgress?: (progress: RebuildProgress) => void;
  /** Called inside the replacing transaction (tests hold it there). */
  duringReplace?: ReplaceHook;
}

export interface RebuildProgress {
  /** wait: for the calcache workers' batches in flight to commit. */
  phase: "wait" | "search" | "rank" | "index" | "replace";
  framesDone: number;
  framesTotal: number;
  framesPerSecond: number;
  etaSeconds: number | null;
}

export interface FrameCount {
  instrument: string | null;
  frames: number;
}

export interface AssociationCount {
  instrument: string | null;
  caltype: string;
  rows: number;
}

export interface RebuildCalcacheReport {
  dryRun: boolean;
  strategy: RebuildStrategy;
  jobs: number;
  frames: FrameCount[];
  framesTotal: number;
  /** Frames by the evaluator's outcome (not in a dry run). */
  outcomes: Record<FrameEvaluation["outcome"], number>;
  /** The first failures (the reference raised), with reasons. */
  failures: { headerId: number; reason: string }[];
  associations: AssociationCount[];
  rowsWritten: number;
  /** Rows of covered frames the cache held before (in a dry run: would replace). */
  rowsReplaced: number;
  /** Rows of frames the rebuild does not cover, carried into the new table (swap). */
  rowsKept: number;
  /** Pending calcachequeue entries of covered frames (in a dry run: would clear). */
  queueCleared: number;
  shapes: number;
  statements: number;
  searches: number;
  seconds: number;
}

const MAX_FAILURES_LISTED = 20;

const RANK_WORK_MEM = "512MB";

/** Frames planned between two turns of the event loop. */
const PLAN_SLICE = 500;

function selection(options: RebuildCalcacheOptions): {
  where: string;
  values: unknown[];
} {
  const values: unknown[] = [];
  // fitsfleet's ingest leaves mdready NULL (it does not run the metadata
  // check), so only frames known bad are left out, where the reference
  // needs mdready true.
  const where = ["d.canonical = true", "d.mdready IS NOT FALSE"];
  if (options.includeEngineering !== true) {
    where.push("h.engineering = false");
  }
  if (options.instruments !== undefined && options.instruments.length > 0) {
    values.push(options.instruments.map((i) => i.toUpperCase()));
    where.push(
      `(upper(h.instrument) = ANY($${values.length}::text[])
        OR (upper(h.instrument) IN ('GMOS-N', 'GMOS-S') AND 'GMOS' = ANY($${values.length}::text[])))`,
    );
  }
  if (options.since !== undefined) {
    values.push(options.since.toISOString().replace("Z", ""));
    where.push(`h.ut_datetime >= $${values.length}::timestamp`);
  }
  return { where: where.join(" AND "), values };
}

function validate(options: RebuildCalcacheOptions): number {
  const jobs = options.jobs ?? availableParallelism();
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new UsageError(
      `--jobs ${jobs}: must be a whole number of at least 1`,
    );
  }
  if (options.since !== undefined && Number.isNaN(options.since.getTime())) {
    throw new UsageError("--since: not a date");
  }
  const batch = options.batchSize ?? 150_000;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new UsageError(`batch size ${batch}: must be at least 1`);
  }
  return jobs;
}

async function frameCounts(
  client: AnyClient,
  source: string,
  values: unknown[],
): Promise<FrameCount[]> {
  const { rows } = await client.query<{ instrument: string | null; n: string }>(
    `SELECT instrument, count(*) AS n FROM (${source}) f GROUP BY instrument ORDER BY instrument NULLS LAST`,
    values,
  );
  return rows.map((r) => ({ instrument: r.instrument, frames: Number(r.n) }));
}

export async function rebuildCalcache(
  options: RebuildCalcacheOptions,
): Promise<RebuildCalcacheReport> {
  const jobs = validate(options);
  const started = Date.now();
  const filtered =
    (options.instruments?.length ?? 0) > 0 || options.since !== undefined;
  const strategy: RebuildStrategy =
    options.strategy ?? (filtered ? "in-place" : "swap");
  const { where, values } = selection(options);
  const source = `SELECT h.id AS hid, h.instrument FROM header h JOIN diskfile d ON d.id = h.diskfile_id WHERE ${where}`;
  const report: RebuildCalcacheReport = {
    dryRun: options.dryRun === true,
    strategy,
    jobs,
    frames: [],
    framesTotal: 0,
    outcomes: { skipped: 0, unsupported: 0, failed: 0, associated: 0 },
    failures: [],
    associations: [],
    rowsWritten: 0,
    rowsReplaced: 0,
    rowsKept: 0,
    queueCleared: 0,
    shapes: 0,
    statements: 0,
    searches: 0,
    seconds: 0,
  };

  const main = await rebuildConnection(options.databaseUrl);
  try {
    const { rows: lock } = await main.query<{ ok: boolean }>(
      "SELECT pg_try_advisory_lock($1::bigint) AS ok",
      [CALCACHE_REBUILD_LOCK_KEY],
    );
    if (lock[0]?.ok !== true) {
      throw new PreconditionError(
        "another `rebuild calcache` is running against this database",
        { suggestion: "wait for it to finish, then run this again" },
      );
    }
    if (report.dryRun) {
      report.frames = await frameCounts(main, source, values);
      report.framesTotal = report.frames.reduce((s, f) => s + f.frames, 0);
      const { rows } = await main.query<{ rows: string; queue: string }>(
        `WITH f AS (${source})
         SELECT (SELECT count(*) FROM calcache c WHERE c.obs_hid IN (SELECT hid FROM f)) AS rows,
                (SELECT count(*) FROM calcachequeue q
                  WHERE ${PENDING_ENTRY} AND q.obs_hid IN (SELECT hid FROM f)) AS queue`,
        values,
      );
      report.rowsReplaced = Number(rows[0]!.rows);
      report.queueCleared = Number(rows[0]!.queue);
      report.seconds = (Date.now() - started) / 1000;
      return report;
    }

    await closeWritersGate(main, options.onProgress);
    const { rows: high } = await main.query<{ id: number }>(
      "SELECT coalesce(max(id), 0) AS id FROM calcachequeue",
    );
    const queueHighWater = high[0]!.id;
    await createWorkTables(main);
    await main.query(
      `INSERT INTO ${FRAMES_TABLE} (hid, instrument) ${source} ORDER BY 1`,
      values,
    );
    await main.query(`ANALYZE ${FRAMES_TABLE}`);
    report.frames = await frameCounts(
      main,
      `SELECT hid, instrument FROM ${FRAMES_TABLE}`,
      [],
    );
    report.framesTotal = report.frames.reduce((s, f) => s + f.frames, 0);
    const { rows: hidRows } = await main.query<{ hid: number }>(
      `SELECT hid FROM ${FRAMES_TABLE} ORDER BY hid`,
    );
    const hids = hidRows.map((r) => r.hid);

    await searchAll(options, jobs, hids, report);

    options.onProgress?.(progressOf("rank", report.framesTotal, report));
    await main.query(`ANALYZE ${WORK_TABLE}`);
    const helpers: AnyClient[] = [];
    try {
      for (let j = 1; j < jobs; j++) {
        helpers.push(await rebuildConnection(options.databaseUrl));
      }
      const all = [main, ...helpers];
      for (const client of all) {
        // The ranking sorts every work row; the indexes sort every new row.
        await client.query(`SET work_mem = '${RANK_WORK_MEM}'`);
        await client.query(`SET maintenance_work_mem = '${RANK_WORK_MEM}'`);
      }
      report.rowsWritten = await buildNewTable(all);
      const { rows: counts } = await main.query<{
        instrument: string | null;
        caltype: string;
        n: string;
      }>(
        `SELECT f.instrument, n.caltype::text AS caltype, count(*) AS n
           FROM ${NEW_TABLE} n JOIN ${FRAMES_TABLE} f ON f.hid = n.obs_hid
          GROUP BY 1, n.caltype ORDER BY 1 NULLS LAST, n.caltype`,
      );
      report.associations = counts.map((r) => ({
        instrument: r.instrument,
        caltype: r.caltype,
        rows: Number(r.n),
      }));
      if (strategy === "swap") {
        options.onProgress?.(progressOf("index", report.framesTotal, report));
        await indexNewTable(all);
      }
    } finally {
      await Promise.all(helpers.map((c) => c.end().catch(() => undefined)));
    }
    options.onProgress?.(progressOf("replace", report.framesTotal, report));
    let replaced: ReplaceResult;
    await main.query("BEGIN");
    try {
      replaced =
        strategy === "swap"
          ? await swapIn(main, queueHighWater, options.duringReplace)
          : await replaceInPlace(main, queueHighWater, options.duringReplace);
      await main.query("COMMIT");
    } catch (error) {
      await main.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
    report.rowsReplaced = replaced.deleted;
    report.rowsKept = replaced.kept;
    report.queueCleared = replaced.queueCleared;
    await dropWorkTables(main);
    if (strategy === "swap") {
      // A fresh table has no statistics until autovacuum comes round.
      await main.query("ANALYZE public.calcache");
    }
    report.seconds = (Date.now() - started) / 1000;
    return report;
  } catch (error) {
    await dropWorkTables(main).catch(() => undefined);
    throw error;
  } finally {
    await main.end().catch(() => undefined);
  }
}

/**
 * Holds the calcache writers' gate exclusively until `main` ends (a session
 * lock, so a failed rebuild releases it with its connection): `worker
 * calcache` batches that began before commit first (this waits for them),
 * later ones take nothing until the rebuild is over. Taken before the
 * queue's high-water mark is read, so what the workers queue from here on
 * stays queued. While this waits, workers cannot enter either (PostgreSQL
 * queues a new shared request behind a waiting exclusive one).
 */
async function closeWritersGate(
  main: AnyClient,
  onProgress: RebuildCalcacheOptions["onProgress"],
): Promise<void> {
  const { rows } = await main.query<{ ok: boolean }>(
    "SELECT pg_try_advisory_lock($1::bigint) AS ok",
    [CALCACHE_WRITERS_GATE_KEY],
  );
  if (rows[0]?.ok === true) {
    return;
  }
  onProgress?.({
    phase: "wait",
    framesDone: 0,
    framesTotal: 0,
    framesPerSecond: 0,
    etaSeconds: null,
  });
  await main.query("SELECT pg_advisory_lock($1::bigint)", [
    CALCACHE_WRITERS_GATE_KEY,
  ]);
}

function progressOf(
  phase: RebuildProgress["phase"],
  done: number,
  report: RebuildCalcacheReport,
  meter?: RateMeter,
): RebuildProgress {
  return {
    phase,
    framesDone: done,
    framesTotal: report.framesTotal,
    framesPerSecond: meter?.rate() ?? 0,
    etaSeconds: meter?.eta(report.framesTotal) ?? null,
  };
}

/**
 * Plans and searches every batch on `jobs` threads (search.ts), each with
 * its own share of the batches (interleaved, of equal size) and its own
 * connections, while the candidate tables are built here. The first
 * failure stops every thread (each ends its current statement) and is
 * thrown once all have ended, so none is still writing when the work
 * tables are dropped.
 */
async function searchAll(
  options: RebuildCalcacheOptions,
  jobs: number,
  hids: number[],
  report: RebuildCalcacheReport,
): Promise<void> {
  if (hids.length === 0) {
    return;
  }
  const threads = Math.min(jobs, hids.length);
  // As many batches as needed, rounded up to a multiple of the threads.
  const count =
    Math.ceil(
      Math.ceil(hids.length / (options.batchSize ?? 150_000)) / threads,
    ) * threads;
  const size = Math.max(1, Math.ceil(hids.length / count));
  const batches: number[][] = [];
  for (let i = 0; i < hids.length; i += size) {
    batches.push(hids.slice(i, i + size));
  }
  const tables = [
    ...new Set(
      report.frames.flatMap(({ instrument }) => {
        const found =
          instrument === null ? undefined : rulesForInstrument(instrument);
        return found?.kind === "rules" ? [found.rules.table] : [];
      }),
    ),
  ];
  const candidates = tables.map((t): [string, string] => [
    baseFrom(t),
    candidateTable(t),
  ]);
  const meter = new RateMeter();
  meter.sample(0);
  let done = 0;
  const shapeKeys = new Set<string>();
  let failure: ThreadErrorData | undefined;
  const workers = Array.from({ length: threads }, (_, t) =>
    startModuleThread(import.meta.url, "search-thread", {
      workerData: {
        databaseUrl: options.databaseUrl,
        batches: batches.filter((_, b) => b % threads === t),
        candidates,
      } satisfies SearchThreadData,
    }),
  );
  const stopAll = (error: ThreadErrorData) => {
    failure ??= error;
    for (const worker of workers) {
      worker.postMessage({ kind: "stop" } satisfies SearchThreadCommand);
    }
  };
  // Frames of the batches the threads are searching now, by thread.
  const partial = workers.map(() => 0);
  const tell = () => {
    const frames = done + partial.reduce((a, b) => a + b, 0);
    meter.sample(frames);
    options.onProgress?.(progressOf("search", frames, report, meter));
  };
  const ended = workers.map(
    (worker, t) =>
      new Promise<void>((resolve) => {
        let finished = false;
        worker.on("message", (message: SearchThreadMessage) => {
          if (message.kind === "searching") {
            partial[t] = message.frames;
            tell();
          } else if (message.kind === "batch") {
            for (const key of message.shapeKeys) {
              shapeKeys.add(key);
            }
            for (const [outcome, n] of Object.entries(message.outcomes)) {
              report.outcomes[outcome as FrameEvaluation["outcome"]] += n;
            }
            // The first failures by header id, whichever thread met them.
            report.failures = [...report.failures, ...message.failures]
              .sort((a, b) => a.headerId - b.headerId)
              .slice(0, MAX_FAILURES_LISTED);
            report.searches += message.searches;
            report.statements += message.statements;
            done += message.frames;
            partial[t] = 0;
            tell();
          } else if (message.kind === "done") {
            finished = true;
          } else {
            stopAll(message.error);
          }
        });
        worker.on("error", (error: Error) => stopAll(errorData(error)));
        worker.on("exit", (code) => {
          if (!finished && failure === undefined) {
            stopAll({ message: `a search thread ended (exit code ${code})` });
          }
          resolve();
        });
      }),
  );
  const clients: AnyClient[] = [];
  try {
    // The candidates are joined while the threads plan their first batch.
    for (let j = 0; j < Math.min(jobs, tables.length); j++) {
      clients.push(await rebuildConnection(options.databaseUrl));
    }
    await eachOn(clients, tables, buildCandidateTable);
    for (const worker of workers) {
      worker.postMessage({
        kind: "candidates-ready",
      } satisfies SearchThreadCommand);
    }
  } catch (error) {
    stopAll(errorData(error));
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
  await Promise.all(ended);
  report.shapes = shapeKeys.size;
  if (failure !== undefined) {
    throw Object.assign(new Error(failure.message), failure);
  }
}

/** What planning a batch counts: the frames' outcomes and the searches. */
export interface BatchTally {
  outcomes: Record<FrameEvaluation["outcome"], number>;
  failures: { headerId: number; reason: string }[];
  searches: number;
}

/**
 * Reads a batch's frames, plans each one and groups its searches by shape.
 * One `planner` serves all of a search thread's batches, so later batches
 * reuse earlier batches' plans.
 */
export async function planBatch(
  client: AnyClient,
  hids: number[],
  report: BatchTally,
  planner: FramePlanner,
): Promise<Shape[]> {
  return planRows(await readBatch(client, hids), report, planner);
}

/** A batch's header rows and first instrument rows (by table, then header id). */
export interface BatchRows {
  headers: FrameHeaderRow[];
  instrumentRows: Map<string, Map<number, Record<string, unknown>>>;
}

export async function readBatch(
  client: AnyClient,
  hids: number[],
): Promise<BatchRows> {
  const { rows: headers } = await client.query<FrameHeaderRow>(
    `SELECT ${FRAME_HEADER_COLUMNS.join(", ")} FROM header h WHERE h.id = ANY($1::int[]) ORDER BY h.id`,
    [hids],
  );
  const instrumentRows = new Map<
    string,
    Map<number, Record<string, unknown>>
  >();
  for (const rules of INSTRUMENT_RULES) {
    // The evaluator's `.first()`: the lowest id.
    const { rows } = await client.query<Record<string, unknown>>(
      `SELECT DISTINCT ON (header_id) * FROM ${rules.table}
        WHERE header_id = ANY($1::int[]) ORDER BY header_id, id`,
      [hids],
    );
    instrumentRows.set(
      rules.table,
      new Map(rows.map((r) => [r.header_id as number, r])),
    );
  }
  return { headers, instrumentRows };
}

/**
 * Plans a batch's frames and groups their searches by shape, counting the
 * outcomes into `report`. The planner (and its memo) lives as long as the
 * report, so later batches of one rebuild reuse earlier batches' plans.
 */
export async function planRows(
  { headers, instrumentRows }: BatchRows,
  report: BatchTally,
  planner: FramePlanner,
): Promise<Shape[]> {
  const groups = new ShapeGroups();
  for (const [n, header] of headers.entries()) {
    if (n % PLAN_SLICE === PLAN_SLICE - 1) {
      // Planning runs beside the searchers' statements: let their results
      // in and the next statements out between slices of frames.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { outcome, reason } = planner.plan(
      header,
      (table) => instrumentRows.get(table)?.get(header.id),
      groups,
    );
    count(report, outcome, header.id, reason);
  }
  report.searches += groups.searches;
  return [...groups.shapes.values()];
}

function count(
  report: BatchTally,
  outcome: FrameEvaluation["outcome"],
  headerId: number,
  reason?: string,
): void {
  report.outcomes[outcome] += 1;
  if (outcome === "failed" && report.failures.length < MAX_FAILURES_LISTED) {
    report.failures.push({ headerId, reason: reason ?? "" });
  }
}
