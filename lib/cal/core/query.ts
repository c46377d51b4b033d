/**
 * A calibration search as data: the clauses a rule adds to the reference's
 * base query (`CalQuery`, calibration.py:92-510), its ordering and how many
 * rows it keeps. Rules build these from one science frame's descriptors;
 * `compileSearch` turns one into a single SQL statement with `$n` parameters,
 * and the set-based rebuild can compile the same data over many frames.
 *
 * The base query is the archive server's (calibration.py:107-139): the
 * instrument table joined to header and diskfile, a left join to
 * processingtag keeping raw frames or published processed ones, canonical
 * diskfiles, qa_state not 'Fail', and no engineering frames unless the
 * science frame is itself engineering (exactly `False`; NULL lets them in).
 */
import { quoteIdent } from "../../db/sql.js";
import { Decimal, Timestamp } from "./python.js";

/** A column of the candidate calibration: `h.` header, `i.` the instrument table. */
export type Column = `h.${string}` | `i.${string}`;

/**
 * A value as the reference binds it. Strings, integers and booleans go
 * untyped, so the server gives them the column's type as it does a quoted
 * literal (enum columns included); a Decimal is an exact numeric (psycopg2
 * sends floats and Decimals as numeric literals); a Timestamp a timestamp.
 */
export type SqlValue = string | number | boolean | Decimal | Timestamp | null;

export type Clause =
  /** SQLAlchemy `col == v`: `IS NULL` when v is None. */
  | { op: "="; column: Column; value: SqlValue }
  /** SQLAlchemy `col != v`: `IS NOT NULL` when v is None; NULL columns never pass. */
  | { op: "<>"; column: Column; value: SqlValue }
  | { op: "<" | ">" | "<="; column: Column; value: SqlValue }
  | { op: "in"; column: Column; values: string[] }
  /** The pattern as the reference builds it, wildcards in the value unescaped. */
  | { op: "like"; column: Column; pattern: string | null }
  | { op: "or"; clauses: Clause[] }
  /** `max_interval(days=N)`: strictly within N days either side of the frame. */
  | { op: "within"; days: number }
  /** BPMs: taken at or before the frame. */
  | { op: "notAfterFrame" };

/** `desc(col == value)`: true first, and NULL (a NULL column) before both. */
export interface MatchFirst {
  column: Column;
  value: SqlValue;
  /**
   * Set when `value` is this descriptor of the frame as it is (read with
   * `Frame.textValue`): the compiled search marks where it goes, so the
   * rebuild's memo can put another frame's value there.
   */
  descriptor?: string;
}

export type Order =
  /**
   * `CalQuery.all()` (calibration.py:252-310): |Δt| in whole seconds, then
   * processed before raw (procmode enum descending), then the extra terms.
   */
  | { kind: "time"; extra: MatchFirst[] }
  /**
   * GMOS `_closest_wlen_time_order` (calibration_gmos.py:899-945), which
   * replaces the time ordering: |Δt|/range + |Δλ|/range, ascending.
   */
  | {
      kind: "score";
      timeRangeDays: number;
      wlenRange: number;
      scienceWavelength: Decimal | null;
    };

export interface CalSearch {
  clauses: Clause[];
  order: Order;
  limit: number;
}

/**
 * What a caltype's method returns for a frame: nothing (a decorator such as
 * `not_imaging` short-circuits), one search, or GNIRS's interleave of two
 * searches (IR and QH flats, first of each in turn, cut to `limit`).
 */
export type CalLookup =
  | { kind: "none"; why: string }
  | { kind: "search"; search: CalSearch }
  | { kind: "interleave"; parts: [CalSearch, CalSearch]; limit: number };

/** The science frame's side of every statement. */
export interface FrameContext {
  table: string;
  utDatetime: Timestamp;
  /** Whole seconds from 2000-01-01, truncated as Python's int() does. */
  utDatetimeSecs: number;
  /** Only exactly false hides engineering calibrations. */
  engineering: boolean | null;
}

export interface CompiledSearch {
  text: string;
  values: (string | number | boolean | null)[];
}

const ENTRYTIME_TIEBREAK = "d.entrytime DESC";

/** Column text by column: the rules name a few dozen columns, each validated once. */
const COLUMN_SQL = new Map<Column, string>();

function columnSql(column: Column): string {
  let sql = COLUMN_SQL.get(column);
  if (sql === undefined) {
    const [alias, name] = column.split(".") as [string, string];
    sql = `${alias}.${quoteIdent(name, "column name")}`;
    COLUMN_SQL.set(column, sql);
  }
  return sql;
}

class Params {
  readonly values: (string | number | boolean | null)[] = [];
  /** Indexes of the values that are the frame's ut_datetime, and its seconds. */
  readonly frameTime: number[] = [];
  readonly frameSecs: number[] = [];
  readonly frameDescriptors: { index: number; name: string }[] = [];

  /** A descriptor of the frame bound as it is. */
  addDescriptor(name: string, value: SqlValue): string {
    this.frameDescriptors.push({ index: this.values.length, name });
    return this.add(value);
  }

  /** The frame's own ut_datetime (every frame has its own). */
  addFrameTime(frame: FrameContext): string {
    this.frameTime.push(this.values.length);
    return this.add(frame.utDatetime);
  }

  addFrameSecs(frame: FrameContext): string {
    this.frameSecs.push(this.values.length);
    return this.add(frame.utDatetimeSecs);
  }

  /** A NULL that still needs a type for the arithmetic around it. */
  addNumeric(value: Decimal | null): string {
    this.values.push(value === null ? null : value.text);
    return `$${this.values.length}::numeric`;
  }

  add(value: SqlValue): string {
    if (value instanceof Decimal) {
      this.values.push(value.text);
      return `$${this.values.length}::numeric`;
    }
    if (value instanceof Timestamp) {
      this.values.push(value.iso);
      return `$${this.values.length}::timestamp`;
    }
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

function clauseSql(clause: Clause, p: Params, frame: FrameContext): string {
  switch (clause.op) {
    case "=":
      return clause.value === null
        ? `${columnSql(clause.column)} IS NULL`
        : `${columnSql(clause.column)} = ${p.add(clause.value)}`;
    case "<>":
      return clause.value === null
        ? `${columnSql(clause.column)} IS NOT NULL`
        : `${columnSql(clause.column)} <> ${p.add(clause.value)}`;
    case "<":
    case ">":
    case "<=":
      return `${columnSql(clause.column)} ${clause.op} ${p.add(clause.value)}`;
    case "in":
      return `${columnSql(clause.column)} IN (${clause.values.map((v) => p.add(v)).join(", ")})`;
    case "like":
      return `${columnSql(clause.column)} LIKE ${p.add(clause.pattern)}`;
    case "or":
      return `(${clause.clauses.map((c) => clauseSql(c, p, frame)).join(" OR ")})`;
    case "within": {
      const t = p.addFrameTime(frame);
      const days = p.add(clause.days);
      return `h.ut_datetime > ${t} - make_interval(days => ${days}) AND h.ut_datetime < ${t} + make_interval(days => ${days})`;
    }
    case "notAfterFrame":
      return `h.ut_datetime <= ${p.addFrameTime(frame)}`;
  }
}

function orderSql(order: Order, p: Params, frame: FrameContext): string[] {
  if (order.kind === "time") {
    return [
      `abs(h.ut_datetime_secs - ${p.addFrameSecs(frame)})`,
      "h.processing DESC",
      ...order.extra.map((m) =>
        m.value === null
          ? `${columnSql(m.column)} IS NULL DESC`
          : `${columnSql(m.column)} = ${m.descriptor === undefined ? p.add(m.value) : p.addDescriptor(m.descriptor, m.value)} DESC`,
      ),
    ];
  }
  // With a NULL science wavelength the whole score is NULL, so the order
  // falls through to the tiebreak, as it does in the reference.
  const secs = p.addFrameSecs(frame);
  const norm = `${p.add(order.timeRangeDays * 86400)}::float8`;
  const range = `${p.add(order.wlenRange)}::float8`;
  return [
    `abs(CAST(h.ut_datetime_secs - ${secs} AS float8) / ${norm}) + abs(CAST(h.central_wavelength - ${p.addNumeric(order.scienceWavelength)} AS float8) / ${range}) ASC`,
  ];
}

/** A compiled search in pieces, so the set-based rebuild can reuse every piece. */
export interface CompiledSearchParts {
  /** The FROM clause (instrument table `i`, header `h`, diskfile `d`, processingtag `pt`). */
  from: string;
  where: string[];
  /** ORDER BY keys, the processingtag priority first and the entry time last. */
  order: string[];
  /** The `$n` of the LIMIT. */
  limit: string;
  values: (string | number | boolean | null)[];
  /**
   * Which `values` are the frame's ut_datetime (ISO text) and its whole
   * seconds: everything else is the same for two frames whose rules read
   * the same descriptors, so a plan can be reused with these replaced.
   */
  frameTime: number[];
  frameSecs: number[];
  /** Which `values` are a descriptor of the frame as it is (`MatchFirst.descriptor`). */
  frameDescriptors: { index: number; name: string }[];
}

/**
 * The clauses of the base query that are the same for every search: raw
 * frames or published processed ones, canonical diskfiles, QA not failed.
 * Every compiled search's WHERE begins with them.
 */
export const BASE_CLAUSES: readonly string[] = [
  "(h.processing = 'Raw' OR pt.published = true)",
  "d.canonical = true",
  "h.qa_state <> 'Fail'",
];

/** The base query's FROM for an instrument table (aliases i, h, d, pt). */
export function baseFrom(table: string): string {
  return `${quoteIdent(table, "instrument table")} i
  JOIN header h ON h.id = i.header_id
  JOIN diskfile d ON d.id = h.diskfile_id
  LEFT JOIN processingtag pt ON pt.tag = h.processing_tag`;
}

/**
 * One search as pieces with `$n` parameters. The processingtag priority
 * leads the ORDER BY because the base query adds it before `all()` appends
 * the rest; as a DESC key it puts NULLs (every raw frame, which has no tag)
 * first.
 */
export function compileSearchParts(
  search: CalSearch,
  frame: FrameContext,
): CompiledSearchParts {
  const p = new Params();
  const where = [
    ...BASE_CLAUSES,
    ...(frame.engineering === false ? ["h.engineering = false"] : []),
    ...search.clauses.map((c) => clauseSql(c, p, frame)),
  ];
  const order = [
    "pt.priority DESC",
    ...orderSql(search.order, p, frame),
    ENTRYTIME_TIEBREAK,
  ];
  const from = baseFrom(frame.table);
  const limit = p.add(search.limit);
  return {
    from,
    where,
    order,
    limit,
    values: p.values,
    frameTime: p.frameTime,
    frameSecs: p.frameSecs,
    frameDescriptors: p.frameDescriptors,
  };
}

/** One statement for one search (the per-frame evaluator's). */
export function compileSearch(
  search: CalSearch,
  frame: FrameContext,
): CompiledSearch {
  const { from, where, order, limit, values } = compileSearchParts(
    search,
    frame,
  );
  const text = `SELECT h.id
  FROM ${from}
 WHERE ${where.join("\n   AND ")}
 ORDER BY ${order.join(", ")}
 LIMIT ${limit}`;
  return { text, values };
}
