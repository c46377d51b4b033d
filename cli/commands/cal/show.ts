/**
 * `cal show FILE`: one frame's calibrations by type and rank, from the
 * cache or, with --live, computed now by the evaluator and set against the
 * cache, to check a doubtful association by hand.
 */
import { basename } from "node:path";

import { Command } from "commander";

import type { FrameEvaluation } from "../../../lib/cal/evaluate.js";
import type { AnyClient } from "../../../lib/db/connect.js";
import { EXIT, FitsfleetError } from "../../../lib/errors.js";
import { table } from "../../output.js";
import { runContext } from "../../run.js";

export interface CalFrame {
  headerId: number;
  diskfileId: number;
  filename: string;
  path: string;
  canonical: boolean;
  instrument: string | null;
  observationType: string | null;
  utDatetime: string | null;
}

export interface CalAssociation {
  caltype: string;
  rank: number;
  calHid: number;
  filename: string;
  observationType: string | null;
  utDatetime: string | null;
  /** Calibration minus frame, in seconds (null when either has no ut_datetime). */
  deltaSeconds: number | null;
  /** With --live: where the live result and the cache differ. */
  difference?: "live only" | "cached only" | "rank differs";
  /** With --live, for `rank differs`: the cached rank. */
  cachedRank?: number;
}

export interface CalQueueEntry {
  id: number;
  failed: boolean;
  failDt: string | null;
  error: string | null;
}

export interface CalShowResult {
  frame: CalFrame;
  source: "cache" | "live";
  /** Why the frame has no associations of its own: skipped, unsupported or failed (else associated). */
  outcome: FrameEvaluation["outcome"] | "not cached";
  reason?: string;
  associations: CalAssociation[];
  /** With --live: rows that live and cache disagree on. */
  differences?: number;
  /** Its calcachequeue entries (waiting, or failed with the reason). */
  queue: CalQueueEntry[];
}

const TIME = `'YYYY-MM-DD"T"HH24:MI:SS.US'`;

/** The frame of a file name or path (`.bz2` or not): its canonical version, else its newest. */
export async function findCalFrame(
  client: AnyClient,
  file: string,
): Promise<CalFrame> {
  const name = basename(file.trim());
  if (name === "") {
    throw new FitsfleetError(
      "usage",
      EXIT.usage,
      "FILE is empty: give a file name such as N20200127S0023.fits",
    );
  }
  // file.name is the name without .bz2 (the reference's trim_name).
  const trimmed = name.replace(/\.bz2$/, "");
  const { rows } = await client.query<{
    header_id: number;
    diskfile_id: number;
    filename: string;
    path: string | null;
    canonical: boolean | null;
    instrument: string | null;
    observation_type: string | null;
    ut: string | null;
  }>(
    `SELECT h.id AS header_id, d.id AS diskfile_id, d.filename, d.path, d.canonical,
            h.instrument, h.observation_type, to_char(h.ut_datetime, ${TIME}) AS ut
       FROM file f
       JOIN diskfile d ON d.file_id = f.id
       JOIN header h ON h.diskfile_id = d.id
      WHERE f.name = $1
      ORDER BY d.canonical DESC NULLS LAST, d.id DESC, h.id
      LIMIT 1`,
    [trimmed],
  );
  const row = rows[0];
  if (row === undefined) {
    throw new FitsfleetError(
      "not-found",
      EXIT.failed,
      `${name}: no such file with a header in the database`,
      {
        suggestion:
          "check the name (N20200127S0023.fits, with or without .bz2) and --database-url; a file that failed ingest has no header (see `fitsfleet rebuild failures`)",
      },
    );
  }
  return {
    headerId: row.header_id,
    diskfileId: row.diskfile_id,
    filename: row.filename,
    path: row.path ?? "",
    canonical: row.canonical === true,
    instrument: row.instrument,
    observationType: row.observation_type,
    utDatetime: row.ut,
  };
}

interface CalRow {
  caltype: string;
  rank: number;
  cal_hid: number;
  filename: string | null;
  observation_type: string | null;
  ut: string | null;
  delta: number | null;
}

/** Calibration details for (caltype, rank, cal_hid) rows, in enum and rank order. */
async function describeRows(
  client: AnyClient,
  frame: CalFrame,
  rows: { caltype: string; rank: number; calHid: number }[],
): Promise<CalAssociation[]> {
  const { rows: found } = await client.query<CalRow>(
    `SELECT r.caltype::text AS caltype, r.rank, r.cal_hid, d.filename, h.observation_type,
            to_char(h.ut_datetime, ${TIME}) AS ut,
            extract(epoch FROM h.ut_datetime - s.ut_datetime)::float8 AS delta
       FROM unnest($2::caltype[], $3::int[], $4::int[]) WITH ORDINALITY AS r(caltype, rank, cal_hid, n)
       JOIN header h ON h.id = r.cal_hid
       LEFT JOIN diskfile d ON d.id = h.diskfile_id
       JOIN header s ON s.id = $1
      ORDER BY r.caltype, r.rank, r.n`,
    [
      frame.headerId,
      rows.map((r) => r.caltype),
      rows.map((r) => r.rank),
      rows.map((r) => r.calHid),
    ],
  );
  return found.map((r) => ({
    caltype: r.caltype,
    rank: r.rank,
    calHid: r.cal_hid,
    filename: r.filename ?? "?",
    observationType: r.observation_type,
    utDatetime: r.ut,
    deltaSeconds: r.delta,
  }));
}

async function cachedRows(client: AnyClient, headerId: number) {
  const { rows } = await client.query<{
    caltype: string;
    rank: number;
    cal_hid: number;
  }>(
    "SELECT caltype::text AS caltype, rank, cal_hid FROM calcache WHERE obs_hid = $1 ORDER BY caltype, rank, id",
    [headerId],
  );
  return rows.map((r) => ({
    caltype: r.caltype,
    rank: r.rank,
    calHid: r.cal_hid,
  }));
}

export async function showCalibrations(
  client: AnyClient,
  file: string,
  options: { live: boolean },
): Promise<CalShowResult> {
  const { evaluateFrame, calcacheRows } =
    await import("../../../lib/cal/evaluate.js");
  const frame = await findCalFrame(client, file);
  const { rows: entries } = await client.query<{
    id: number;
    fail_dt: string | null;
    error: string | null;
  }>(
    `SELECT id, CASE WHEN fail_dt = '9999-12-31 23:59:59.999999' THEN NULL
                     ELSE to_char(fail_dt, ${TIME}) END AS fail_dt, error
       FROM calcachequeue WHERE obs_hid = $1 ORDER BY id`,
    [frame.headerId],
  );
  const queue = entries.map((e) => ({
    id: e.id,
    failed: e.fail_dt !== null,
    failDt: e.fail_dt,
    error: e.error,
  }));
  const cached = await cachedRows(client, frame.headerId);
  if (!options.live) {
    const associations = await describeRows(client, frame, cached);
    if (cached.length > 0) {
      return {
        frame,
        source: "cache",
        outcome: "associated",
        associations,
        queue,
      };
    }
    // Nothing cached: say why, from the evaluator's own early returns.
    const evaluation = await evaluateFrame(client, frame.headerId);
    const outcome =
      evaluation.outcome === "associated" ? "not cached" : evaluation.outcome;
    return {
      frame,
      source: "cache",
      outcome,
      reason:
        outcome === "not cached"
          ? queue.some((q) => !q.failed)
            ? "queued for `worker calcache`, not worked yet"
            : "no calibrations cached for this frame"
          : evaluation.reason,
      associations,
      queue,
    };
  }
  const evaluation = await evaluateFrame(client, frame.headerId);
  const live = calcacheRows(evaluation).map((r) => ({
    caltype: r.caltype as string,
    rank: r.rank,
    calHid: r.calHid,
  }));
  // Only the types the evaluator reached are compared: the cache keeps rows
  // of types that no longer apply, as the reference does.
  const reached = new Set<string>(evaluation.caltypes.map((c) => c.caltype));
  const key = (r: { caltype: string; calHid: number }) =>
    `${r.caltype}\0${r.calHid}`;
  const cachedByKey = new Map(cached.map((r) => [key(r), r]));
  const liveKeys = new Set(live.map(key));
  const described = await describeRows(client, frame, [
    ...live,
    ...cached.filter((r) => reached.has(r.caltype) && !liveKeys.has(key(r))),
  ]);
  let differences = 0;
  const associations = described.map((a) => {
    const inCache = cachedByKey.get(key(a));
    if (!liveKeys.has(key(a))) {
      differences++;
      return { ...a, difference: "cached only" as const };
    }
    if (inCache === undefined) {
      differences++;
      return { ...a, difference: "live only" as const };
    }
    if (inCache.rank !== a.rank) {
      differences++;
      return {
        ...a,
        difference: "rank differs" as const,
        cachedRank: inCache.rank,
      };
    }
    return a;
  });
  return {
    frame,
    source: "live",
    outcome: evaluation.outcome,
    reason: evaluation.reason,
    associations,
    differences,
    queue,
  };
}

function formatDelta(seconds: number | null): string {
  if (seconds === null) {
    return "?";
  }
  const sign = seconds < 0 ? "−" : "+";
  const a = Math.abs(seconds);
  if (a < 3600) {
    return `${sign}${(a / 60).toFixed(1)} min`;
  }
  if (a < 86_400 * 2) {
    return `${sign}${(a / 3600).toFixed(1)} h`;
  }
  return `${sign}${(a / 86_400).toFixed(1)} d`;
}

export function describeCalShow(r: CalShowResult): string {
  const f = r.frame;
  const lines = [
    `${f.filename}${f.path === "" ? "" : ` (${f.path})`}: header ${f.headerId}, ${f.instrument ?? "no instrument"} ${f.observationType ?? "?"}, ut ${f.utDatetime ?? "none"}${f.canonical ? "" : " — not the canonical version"}`,
  ];
  if (r.outcome !== "associated") {
    lines.push(`${r.outcome}${r.reason === undefined ? "" : `: ${r.reason}`}`);
  }
  if (r.associations.length > 0) {
    lines.push(
      table(
        [
          "type",
          "rank",
          "calibration",
          "obstype",
          "ut_datetime",
          "Δt",
          ...(r.source === "live" ? ["vs cache"] : []),
        ],
        r.associations.map((a) => [
          a.caltype,
          String(a.rank),
          a.filename,
          a.observationType ?? "",
          a.utDatetime ?? "",
          formatDelta(a.deltaSeconds),
          ...(r.source === "live"
            ? [
                a.difference === "rank differs"
                  ? `rank ${a.cachedRank} in cache`
                  : (a.difference ?? ""),
              ]
            : []),
        ]),
      ),
    );
  } else if (r.outcome === "associated") {
    lines.push("no calibrations");
  }
  if (r.source === "live") {
    lines.push(
      r.differences === 0
        ? "live and cached agree"
        : `${r.differences} difference(s) between live and cached`,
    );
  } else {
    lines.push(`from the cache (${r.associations.length} row(s))`);
  }
  for (const q of r.queue) {
    lines.push(
      q.failed
        ? `calcachequeue entry ${q.id}: failed at ${q.failDt}: ${q.error ?? ""}`
        : `calcachequeue entry ${q.id}: waiting${q.error === null ? "" : ` (${q.error})`}`,
    );
  }
  return lines.join("\n");
}

export function showCommand(): Command {
  return new Command("show")
    .description(
      "a frame's calibrations by type and rank, with each calibration's file, observation type, ut_datetime and Δt (calibration minus frame), from the calcache table; --live computes them now with the reference's rules and marks where live and cached differ. FILE is a file name (with or without .bz2) or a path. Exit 1 if the file is not in the database",
    )
    .argument("<FILE>", "the frame's file name or path")
    .option("--live", "compute the associations now and compare with the cache")
    .action(async (file: string, flags: { live?: boolean }, cmd: Command) => {
      const { output, databaseUrl } = await runContext(cmd);
      const { withClient } = await import("../../../lib/db/connect.js");
      const result = await withClient(databaseUrl(), (c) =>
        showCalibrations(c, file, { live: flags.live === true }),
      );
      output.result(result, describeCalShow);
    });
}
