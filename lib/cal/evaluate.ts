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
import {
  Frame,
  HEADER_DESCRIPTORS,
  SlottedDescriptors,
  type Value,
} from "./core/frame.js";
import {
  decimalOf,
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

/** A row of `FRAME_HEADER_COLUMNS`. */
export interface FrameHeaderRow {
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

/** The header columns a frame's evaluation reads, as `SELECT` items over `header h`. */
export const FRAME_HEADER_COLUMNS: readonly string[] = [
  "h.id",
  "h.qa_state",
  "h.types",
  `to_char(h.ut_datetime, 'YYYY-MM-DD"T"HH24:MI:SS.US') AS ut_iso`,
  ...HEADER_DESCRIPTORS.filter((d) => d !== "ut_datetime").map((d) =>
    NUMERIC_DESCRIPTORS.has(d) ? `h.${d}::text AS ${d}` : `h.${d}`,
  ),
];

export async function evaluateFrame(
  client: AnyClient,
  headerId: number,
): Promise<FrameEvaluation> {
  const { rows } = await client.query<FrameHeaderRow>(
    `SELECT ${FRAME_HEADER_COLUMNS.join(", ")}
       FROM header h
      WHERE h.id = $1`,
    [headerId],
  );
  const header = rows[0];
  if (header === undefined) {
    throw new PreconditionError(`no header with id ${headerId}`);
  }
  const planned = await planFrame(header, async (table) => {
    // The reference takes `.first()` of the instrument rows (no ORDER BY);
    // the lowest id is the row ingest wrote first.
    const { rows: inst } = await client.query<Record<string, unknown>>(
      `SELECT * FROM ${table} WHERE header_id = $1 ORDER BY id LIMIT 1`,
      [header.id],
    );
    return inst[0];
  });
  if (planned.kind === "evaluated") {
    return planned.evaluation;
  }
  const done: CaltypeAssociations[] = [];
  for (const step of planned.steps) {
    const calHids = await runLookup(client, step.lookup, planned.context);
    done.push({ caltype: step.caltype, calHids: [...new Set(calHids)] });
  }
  if (planned.failure !== undefined) {
    done.push({ caltype: planned.failure.caltype, calHids: [] });
    return {
      headerId,
      outcome: "failed",
      reason: planned.failure.reason,
      caltypes: done,
    };
  }
  return { headerId, outcome: "associated", caltypes: done };
}

/** One applicable caltype of a frame and what its method searches for. */
export interface PlannedStep {
  caltype: CalType;
  lookup: CalLookup;
}

/**
 * What a frame's evaluation will do, decided from its header and instrument
 * rows alone: either the evaluation already (skipped, unsupported, failed
 * before any search, or nothing applicable), or the searches to run in
 * order, and the caltype whose method raised after them, if one did.
 */
export type FramePlan =
  | { kind: "evaluated"; evaluation: FrameEvaluation }
  | {
      kind: "searches";
      headerId: number;
      context: FrameContext;
      steps: PlannedStep[];
      failure?: { caltype: CalType; reason: string };
    };

/**
 * The part of `evaluateFrame` that needs no search: the skips, the types'
 * parse, the instrument's rules, `set_applicable` and each type's lookup.
 * `instrumentRow` gives the frame's first instrument row (or undefined).
 * The set-based rebuild plans every frame with it, so both paths share it.
 */
export function planFrame(
  header: FrameHeaderRow,
  instrumentRow: (table: string) => Record<string, unknown> | undefined,
): FramePlan;
export function planFrame(
  header: FrameHeaderRow,
  instrumentRow: (
    table: string,
  ) => Promise<Record<string, unknown> | undefined>,
): Promise<FramePlan>;
export function planFrame(
  header: FrameHeaderRow,
  instrumentRow: (
    table: string,
  ) =>
    | Record<string, unknown>
    | undefined
    | Promise<Record<string, unknown> | undefined>,
): FramePlan | Promise<FramePlan> {
  const prelude = framePrelude(header);
  if (prelude.kind === "evaluated") {
    return prelude;
  }
  const { rules, types } = prelude;
  const row = instrumentRow(rules.table);
  const plan = (r: Record<string, unknown> | undefined): FramePlan => {
    const frame = frameOf(rules, header, types, r);
    return planWithFrame(
      rules,
      frame,
      contextOf(rules, header, frame),
      header.id,
    );
  };
  return row instanceof Promise ? row.then(plan) : plan(row);
}

/** What `planFrame` decides before it builds the frame. */
export type FramePrelude =
  | { kind: "evaluated"; evaluation: FrameEvaluation }
  | { kind: "rules"; rules: InstrumentRules; types: PyTags };

/**
 * The skips, the types' parse and the instrument's rules. `parse` is
 * `parseTypes` (the rebuild passes a cached one: the same text always
 * parses the same).
 */
export function framePrelude(
  header: FrameHeaderRow,
  parse: (text: string | null) => PyTags = parseTypes,
): FramePrelude {
  const headerId = header.id;
  const evaluated = (
    outcome: FrameEvaluation["outcome"],
    reason?: string,
  ): FramePrelude => ({
    kind: "evaluated",
    evaluation: { headerId, outcome, reason, caltypes: [] },
  });
  const instrument = header.instrument as string | null;
  if (instrument === null || header.ut_iso === null) {
    return evaluated(
      "skipped",
      instrument === null ? "no instrument" : "no ut_datetime",
    );
  }
  if (header.qa_state === "Fail") {
    return evaluated("skipped", "qa_state is Fail");
  }
  let types: PyTags;
  try {
    types = parse(header.types);
  } catch (error) {
    return evaluated("failed", raisedReason(error));
  }
  const found = rulesForInstrument(instrument);
  if (found.kind === "not implemented") {
    return evaluated(
      "unsupported",
      `fitsfleet has no calibration rules for ${instrument} yet`,
    );
  }
  if (found.kind === "none") {
    return evaluated("associated");
  }
  return { kind: "rules", rules: found.rules, types };
}

/** The science frame's side of every statement. */
export function contextOf(
  rules: InstrumentRules,
  header: FrameHeaderRow,
  frame: Frame,
): FrameContext {
  return {
    table: rules.table,
    utDatetime: frame.utDatetime,
    utDatetimeSecs: frame.utDatetimeSecs,
    engineering: header.engineering as boolean | null,
  };
}

/**
 * `set_applicable` and each applicable type's lookup. The rules see the
 * frame only through its methods, so while the frame records, what it
 * records is everything this result depends on besides `context`.
 */
export function planWithFrame(
  rules: InstrumentRules,
  frame: Frame,
  context: FrameContext,
  headerId: number,
): FramePlan {
  let applicable: CalType[];
  try {
    applicable = [...new Set(applicableTypes(rules, frame))];
  } catch (error) {
    return {
      kind: "evaluated",
      evaluation: {
        headerId,
        outcome: "failed",
        reason: raisedReason(error),
        caltypes: [],
      },
    };
  }
  const steps: PlannedStep[] = [];
  for (const caltype of applicable) {
    try {
      steps.push({ caltype, lookup: lookupFor(rules, caltype, frame) });
    } catch (error) {
      return {
        kind: "searches",
        headerId,
        context,
        steps,
        failure: { caltype, reason: raisedReason(error) },
      };
    }
  }
  return { kind: "searches", headerId, context, steps };
}

/** The reason of what the reference raised; anything else is our bug and propagates. */
function raisedReason(error: unknown): string {
  if (error instanceof ReferenceRaised) {
    return error.message;
  }
  throw error;
}

/**
 * Where each descriptor of an instrument's frames sits: "header_id", the
 * header's, then the instrument's (the instrument table's value replaces a
 * header descriptor of the same name, as in the reference's dict).
 */
const SLOTS = new WeakMap<InstrumentRules, Map<string, number>>();

function slotsOf(rules: InstrumentRules): Map<string, number> {
  let slots = SLOTS.get(rules);
  if (slots === undefined) {
    slots = new Map<string, number>();
    for (const name of [
      "header_id",
      ...HEADER_DESCRIPTORS,
      ...rules.descriptors,
    ]) {
      if (!slots.has(name)) {
        slots.set(name, slots.size);
      }
    }
    SLOTS.set(rules, slots);
  }
  return slots;
}

export function frameOf(
  rules: InstrumentRules,
  header: FrameHeaderRow,
  types: PyTags,
  instrumentRow: Record<string, unknown> | undefined,
): Frame {
  const utDatetime = new Timestamp(header.ut_iso!);
  const slots = slotsOf(rules);
  const values = new Array<Value>(slots.size);
  values[0] = header.id;
  // Every value is converted, in this order, whether or not it is replaced,
  // so a value that cannot be raises as it always did.
  for (const name of HEADER_DESCRIPTORS) {
    const raw = name === "ut_datetime" ? header.ut_iso : header[name];
    values[slots.get(name)!] = toValue(name, raw);
  }
  for (const name of rules.descriptors) {
    values[slots.get(name)!] = toValue(name, instrumentRow?.[name] ?? null);
  }
  return new Frame(
    header.id,
    new SlottedDescriptors(slots, values),
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
    return decimalOf(String(raw));
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
