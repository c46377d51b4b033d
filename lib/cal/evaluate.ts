/**
 * The per-frame evaluator: one science frame → its ranked calibrations per
 * type, as the reference's `CalCacheQueue.cache_associations`
 * (queues/queue/calcachequeue.py:49-91) computes them in the archive
 * server's mode. It runs one statement per calibration type, so it is the
 * slow path: the incremental worker's and the test oracle of the set-based
 * rebuild.
 *
 * What the reference does, step by step:
 * - a frame with no instrument or no ut_datetime, or with qa_state 'Fail',
 *   is left alone (no rows deleted or written);
 * - `header.types` goes through `ast.literal_eval`, so a NULL or unreadable
 *   value raises and the frame fails with nothing written;
 * - for each applicable type, in `set_applicable` order, the type's old rows
 *   are deleted and the search's results written with rank 0, 1, … in order
 *   (duplicates dropped, first kept), BPMs all at rank −1. An exception in
 *   one type's search stops there: earlier types are already written, and
 *   that type's rows stay deleted.
 */
import type { AnyClient } from "../db/connect.js";
import { PreconditionError } from "../errors.js";
import { utDatetimeSecs } from "../gemini/rows.js";
import { Frame, HEADER_DESCRIPTORS, type Value } from "./core/frame.js";
import {
  Decimal,
  parseTypes,
  type PyTags,
  ReferenceRaised,
  Timestamp,
} from "./core/python.js";
import {
  type CalLookup,
  type CalSearch,
  compileSearch,
  type FrameContext,
} from "./core/query.js";
import {
  applicableTypes,
  type CalType,
  type InstrumentRules,
  lookupFor,
} from "./rules/common.js";
import { rulesForInstrument } from "./rules/index.js";

export interface CaltypeAssociations {
  caltype: CalType;
  /** Calibration header ids, best first. */
  calHids: number[];
}

export interface FrameEvaluation {
  headerId: number;
  /**
   * skipped: the reference returns before touching the cache. unsupported:
   * an instrument whose rules fitsfleet does not have yet. failed: the
   * reference raised (see `reason`); `caltypes` holds what it had written
   * by then, the failing type last with no rows. associated: done.
   */
  outcome: "skipped" | "unsupported" | "failed" | "associated";
  reason?: string;
  caltypes: CaltypeAssociations[];
}

export interface CalcacheRow {
  obsHid: number;
  calHid: number;
  caltype: CalType;
  rank: number;
}

/** The HEADER_DESCRIPTORS that are NUMERIC columns (Decimals in the reference). */
const NUMERIC_DESCRIPTORS = new Set([
  "central_wavelength",
  "exposure_time",
  "elevation",
  "cass_rotator_pa",
]);

interface HeaderRow {
  id: number;
  qa_state: string | null;
  types: string | null;
  ut_iso: string | null;
  [descriptor: string]: unknown;
}

/** The header id of a diskfile's header (there is one per diskfile). */
export async function headerIdOfDiskfile(
  client: AnyClient,
  diskfileId: number,
): Promise<number> {
  const { rows } = await client.query<{ id: number }>(
    "SELECT id FROM header WHERE diskfile_id = $1 ORDER BY id LIMIT 1",
    [diskfileId],
  );
  if (rows[0] === undefined) {
    throw new PreconditionError(`diskfile ${diskfileId} has no header row`);
  }
  return rows[0].id;
}

export async function evaluateFrame(
  client: AnyClient,
  headerId: number,
): Promise<FrameEvaluation> {
  const columns = HEADER_DESCRIPTORS.filter((d) => d !== "ut_datetime").map(
    (d) => (NUMERIC_DESCRIPTORS.has(d) ? `h.${d}::text AS ${d}` : `h.${d}`),
  );
  const { rows } = await client.query<HeaderRow>(
    `SELECT h.id, h.qa_state, h.types,
            to_char(h.ut_datetime, 'YYYY-MM-DD"T"HH24:MI:SS.US') AS ut_iso,
            ${columns.join(", ")}
       FROM header h
      WHERE h.id = $1`,
    [headerId],
  );
  const header = rows[0];
  if (header === undefined) {
    throw new PreconditionError(`no header with id ${headerId}`);
  }
  const result = (
    outcome: FrameEvaluation["outcome"],
    reason?: string,
    caltypes: CaltypeAssociations[] = [],
  ): FrameEvaluation => ({ headerId, outcome, reason, caltypes });

  const instrument = header.instrument as string | null;
  if (instrument === null || header.ut_iso === null) {
    return result(
      "skipped",
      instrument === null ? "no instrument" : "no ut_datetime",
    );
  }
  if (header.qa_state === "Fail") {
    return result("skipped", "qa_state is Fail");
  }
  let types: PyTags;
  try {
    types = parseTypes(header.types);
  } catch (error) {
    return failure(result, error);
  }
  const found = rulesForInstrument(instrument);
  if (found.kind === "not implemented") {
    return result(
      "unsupported",
      `fitsfleet has no calibration rules for ${instrument} yet`,
    );
  }
  if (found.kind === "none") {
    return result("associated");
  }
  const rules = found.rules;
  const frame = await loadFrame(client, rules, header, types);

  let applicable: CalType[];
  try {
    applicable = [...new Set(applicableTypes(rules, frame))];
  } catch (error) {
    return failure(result, error);
  }
  const context: FrameContext = {
    table: rules.table,
    utDatetime: frame.utDatetime,
    utDatetimeSecs: frame.utDatetimeSecs,
    engineering: header.engineering as boolean | null,
  };
  const done: CaltypeAssociations[] = [];
  for (const caltype of applicable) {
    let lookup: CalLookup;
    try {
      lookup = lookupFor(rules, caltype, frame);
    } catch (error) {
      done.push({ caltype, calHids: [] });
      return failure(result, error, done);
    }
    const calHids = await runLookup(client, lookup, context);
    done.push({ caltype, calHids: [...new Set(calHids)] });
  }
  return result("associated", undefined, done);
}

function failure(
  result: (
    o: FrameEvaluation["outcome"],
    r?: string,
    c?: CaltypeAssociations[],
  ) => FrameEvaluation,
  error: unknown,
  done: CaltypeAssociations[] = [],
): FrameEvaluation {
  if (error instanceof ReferenceRaised) {
    return result("failed", error.message, done);
  }
  throw error;
}

async function loadFrame(
  client: AnyClient,
  rules: InstrumentRules,
  header: HeaderRow,
  types: PyTags,
): Promise<Frame> {
  const utDatetime = new Timestamp(header.ut_iso!);
  const descriptors = new Map<string, Value>([["header_id", header.id]]);
  for (const name of HEADER_DESCRIPTORS) {
    const raw = name === "ut_datetime" ? header.ut_iso : header[name];
    descriptors.set(name, toValue(name, raw));
  }
  // The reference takes `.first()` of the instrument rows (no ORDER BY);
  // the lowest id is the row ingest wrote first.
  const { rows } = await client.query<Record<string, unknown>>(
    `SELECT * FROM ${rules.table} WHERE header_id = $1 ORDER BY id LIMIT 1`,
    [header.id],
  );
  const instrumentRow = rows[0];
  for (const name of rules.descriptors) {
    descriptors.set(name, toValue(name, instrumentRow?.[name] ?? null));
  }
  return new Frame(
    header.id,
    descriptors,
    types,
    utDatetime,
    utDatetimeSecs(utDatetime.iso),
  );
}

function toValue(name: string, raw: unknown): Value {
  if (raw === null || raw === undefined) {
    return null;
  }
  if (name === "ut_datetime") {
    return new Timestamp(String(raw));
  }
  if (NUMERIC_DESCRIPTORS.has(name)) {
    return new Decimal(String(raw));
  }
  if (
    typeof raw === "string" ||
    typeof raw === "number" ||
    typeof raw === "boolean"
  ) {
    return raw;
  }
  throw new Error(
    `descriptor ${name}: unexpected ${typeof raw} from the database`,
  );
}

async function runSearch(
  client: AnyClient,
  search: CalSearch,
  context: FrameContext,
): Promise<number[]> {
  const { text, values } = compileSearch(search, context);
  const { rows } = await client.query<{ id: number }>(text, values);
  return rows.map((r) => r.id);
}

async function runLookup(
  client: AnyClient,
  lookup: CalLookup,
  context: FrameContext,
): Promise<number[]> {
  switch (lookup.kind) {
    case "none":
      return [];
    case "search":
      return runSearch(client, lookup.search, context);
    case "interleave": {
      const [first, second] = await Promise.all(
        lookup.parts.map((part) => runSearch(client, part, context)),
      );
      const woven: number[] = [];
      for (let i = 0; i < Math.max(first!.length, second!.length); i++) {
        woven.push(
          ...(first![i] === undefined ? [] : [first![i]!]),
          ...(second![i] === undefined ? [] : [second![i]!]),
        );
      }
      return woven.slice(0, lookup.limit);
    }
  }
}

/** The calcache rows of an evaluation, as cache_associations inserts them. */
export function calcacheRows(evaluation: FrameEvaluation): CalcacheRow[] {
  return evaluation.caltypes.flatMap(({ caltype, calHids }) =>
    calHids.map((calHid, index) => ({
      obsHid: evaluation.headerId,
      calHid,
      caltype,
      // BPMs sort first in the archive's associated-calibrations list.
      rank: caltype === "processed_bpm" ? -1 : index,
    })),
  );
}
