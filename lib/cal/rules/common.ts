/**
 * The shape every instrument's rules share, and the interpreter that turns a
 * rule into a search for one frame. A rule is data where the reference's is
 * fixed (which frames count as the calibration, the columns that must match,
 * tolerances, the time window, how many to keep) and a function only where
 * the reference decides something from the science frame's values.
 *
 * Sources cite the pinned reference (FitsStorage 426e1308) as
 * `file:first-last` under fits_storage/cal/calibration/.
 */
import type { Frame } from "../core/frame.js";
import {
  Decimal,
  floatLiteral,
  ReferenceRaised,
  Timestamp,
} from "../core/python.js";
import type {
  CalLookup,
  CalSearch,
  Clause,
  Column,
  MatchFirst,
  Order,
} from "../core/query.js";

/** The `caltype` enum, in its order (gemini_metadata_utils cal_types). */
export const CAL_TYPES = [
  "bias",
  "processed_bias",
  "dark",
  "processed_dark",
  "processed_bpm",
  "flat",
  "processed_flat",
  "arc",
  "processed_arc",
  "pinhole",
  "processed_pinhole",
  "processed_fringe",
  "ronchi_mask",
  "lampoff_flat",
  "qh_flat",
  "domeflat",
  "lampoff_domeflat",
  "mask",
  "slitillum",
  "processed_slitillum",
  "standard",
  "processed_standard",
  "telluric",
  "processed_telluric",
  "polarization_standard",
  "astrometric_standard",
  "polarization_flat",
  "specphot",
  "photometric_standard",
  "processed_slitflat",
  "processed_slit",
] as const;

export type CalType = (typeof CAL_TYPES)[number];

/**
 * One row of `set_applicable`, tried in order: when `when` holds, `add`
 * joins the list, and `stop` ends the method there (the early returns).
 */
export interface ApplicabilityRow {
  source: string;
  when: (f: Frame) => boolean;
  add?: CalType[];
  stop?: true;
}

/** The reference's decorators that return no calibrations (calibration.py:32-89). */
export type Guard = "not_processed" | "not_imaging" | "not_spectroscopy";

/** `descriptor ± plusMinus` as an open interval on the header column. */
export interface Tolerance {
  descriptor: string;
  plusMinus: number | ((f: Frame) => number);
  /** The `condition=` argument: Python truthiness of this value. */
  when?: (f: Frame) => unknown;
}

export interface SearchSpec {
  source: string;
  guards?: Guard[];
  /** Which frames are this calibration, raw and processed. */
  frames: {
    raw: Clause[] | ((f: Frame) => Clause[]);
    processed: Clause[] | ((f: Frame) => Clause[]);
  };
  /** Equal to the science frame's descriptor of the same name. */
  match?: Column[];
  tolerances?: Tolerance[];
  withinDays?: number;
  /** Conditions that depend on the science frame. */
  filters?: (f: Frame, processed: boolean) => Clause[];
  /** Extra terms after |Δt| and processed-first, or a replacement order. */
  order?: (f: Frame) => MatchFirst[] | Order;
  howmany: { raw: number; processed: number };
}

/** A method of the reference's Calibration class: a spec, or code for the odd ones. */
export type CalMethod =
  SearchSpec | ((f: Frame, processed: boolean) => CalLookup);

export interface InstrumentRules {
  /** The reference's class, for messages. */
  name: string;
  source: string;
  /** header.instrument values this class handles (calibration/__init__.py). */
  instruments: readonly string[];
  table: "gmos" | "niri" | "f2" | "gnirs";
  /** `instrDescriptors`: the instrument-table columns copied into the descriptors. */
  descriptors: readonly string[];
  applicability: ApplicabilityRow[];
  /** By method name; a processed caltype calls its raw name with processed=true. */
  methods: Record<string, CalMethod>;
}

/** `set_applicable`, in order, stopping where the reference returns. */
export function applicableTypes(rules: InstrumentRules, f: Frame): CalType[] {
  const out: CalType[] = [];
  for (const row of rules.applicability) {
    if (!row.when(f)) {
      continue;
    }
    out.push(...(row.add ?? []));
    if (row.stop === true) {
      break;
    }
  }
  return out;
}

/**
 * What `associate_cals` calls for a caltype: `getattr(cal, ct)()`, or for a
 * processed type `getattr(cal, ct[10:])(processed=True)`.
 */
export function lookupFor(
  rules: InstrumentRules,
  caltype: CalType,
  f: Frame,
): CalLookup {
  const processed = caltype.startsWith("processed_");
  const name = processed ? caltype.slice("processed_".length) : caltype;
  const method = rules.methods[name];
  if (method === undefined) {
    throw new ReferenceRaised(
      `AttributeError: '${rules.name}' object has no attribute '${name}'`,
    );
  }
  return runMethod(method, f, processed);
}

export function runMethod(
  method: CalMethod,
  f: Frame,
  processed: boolean,
): CalLookup {
  if (typeof method === "function") {
    return method(f, processed);
  }
  const blocked = blockedBy(method.guards ?? [], f, processed);
  if (blocked !== undefined) {
    return { kind: "none", why: blocked };
  }
  return { kind: "search", search: buildSearch(method, f, processed) };
}

function blockedBy(
  guards: Guard[],
  f: Frame,
  processed: boolean,
): Guard | undefined {
  return guards.find((g) =>
    g === "not_processed"
      ? processed
      : g === "not_imaging"
        ? f.get("spectroscopy") === false
        : f.get("spectroscopy") === true,
  );
}

export function buildSearch(
  spec: SearchSpec,
  f: Frame,
  processed: boolean,
): CalSearch {
  const selector = processed ? spec.frames.processed : spec.frames.raw;
  const clauses: Clause[] = [
    ...(typeof selector === "function" ? selector(f) : selector),
    ...(spec.filters?.(f, processed) ?? []),
    ...matchDescriptors(f, spec.match ?? []),
    ...(spec.tolerances ?? []).flatMap((t) => tolerance(f, t)),
    ...(spec.withinDays === undefined
      ? []
      : [{ op: "within", days: spec.withinDays } as const]),
  ];
  const order = spec.order?.(f) ?? [];
  return {
    clauses,
    order: Array.isArray(order) ? { kind: "time", extra: order } : order,
    limit: processed ? spec.howmany.processed : spec.howmany.raw,
  };
}

/** `match_descriptors`: each column equals the descriptor of its own name. */
export function matchDescriptors(f: Frame, columns: Column[]): Clause[] {
  return columns.map((column) => {
    const value = f.get(column.slice(2));
    if (value instanceof Timestamp) {
      throw new ReferenceRaised(`cannot match ${column} on a timestamp`);
    }
    return { op: "=", column, value };
  });
}

/**
 * `CalQuery.tolerance` (calibration.py:314-346): float(value) ± tol as an
 * open interval; a None value is skipped (the reference swallows the
 * TypeError), so a frame with no wavelength matches any wavelength.
 */
export function tolerance(f: Frame, t: Tolerance): Clause[] {
  if (t.when !== undefined && !truthy(t.when(f))) {
    return [];
  }
  const value = f.get(t.descriptor);
  if (value === null) {
    return [];
  }
  const x =
    typeof value === "number"
      ? value
      : value instanceof Decimal
        ? value.toFloat()
        : Number.NaN;
  if (Number.isNaN(x)) {
    throw new ReferenceRaised(`ValueError: float(${String(value)})`);
  }
  const tol = typeof t.plusMinus === "number" ? t.plusMinus : t.plusMinus(f);
  const column: Column = `h.${t.descriptor}`;
  return [
    { op: ">", column, value: floatLiteral(x - tol) },
    { op: "<", column, value: floatLiteral(x + tol) },
  ];
}

function truthy(v: unknown): boolean {
  return v instanceof Decimal ? v.truthy : Boolean(v);
}

/** `raw_or_processed(NAME)`: a raw frame of that OBSTYPE, or PROCESSED_NAME. */
export function byObservationType(name: string): SearchSpec["frames"] {
  return {
    raw: [
      { op: "=", column: "h.reduction", value: "RAW" },
      { op: "=", column: "h.observation_type", value: name },
    ],
    processed: [{ op: "=", column: "h.reduction", value: `PROCESSED_${name}` }],
  };
}

/** `raw_or_processed_by_types(NAME)`: a raw frame tagged NAME, or PROCESSED_NAME. */
export function byTag(name: string): SearchSpec["frames"] {
  return {
    raw: [
      { op: "=", column: "h.reduction", value: "RAW" },
      { op: "like", column: "h.types", pattern: `%${name}%` },
    ],
    processed: [{ op: "=", column: "h.reduction", value: `PROCESSED_${name}` }],
  };
}

/** SQLAlchemy `col.contains(v)`: LIKE '%v%' with v's own wildcards live. */
export function contains(column: Column, value: string | null): Clause {
  return { op: "like", column, pattern: value === null ? null : `%${value}%` };
}
