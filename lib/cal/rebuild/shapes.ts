/**
 * Many frames' searches as a few statements. Every search is first compiled
 * exactly as the per-frame evaluator compiles it (`compileSearchParts`);
 * searches whose SQL text is the same (the same clauses, IS NULL where the
 * frame's value is None, the same ordering terms) form one shape. A shape
 * runs as one statement over all its frames: the frames' parameters arrive
 * as arrays (`unnest`), each `$n` of the per-frame text becomes the frame's
 * column `p.vN` (or stays a single `$m` when every frame has the same value,
 * so the planner sees it as a constant and can use indexes), and
 * `row_number()` over the per-frame ORDER BY, partitioned by the frame's
 * search, replaces the LIMIT.
 *
 * Identical by construction: the WHERE and ORDER BY are the per-frame
 * statement's own text, with each parameter at the type PostgreSQL infers
 * for the per-frame statement (asked by PREPARE). The one addition is a
 * final tiebreak (`h.id DESC, i.id DESC`): where the reference's ORDER BY
 * leaves two candidates tied on every key, its own order is whatever its
 * plan gives; ours is fixed.
 */
import type { AnyClient } from "../../db/connect.js";
import { BASE_CLAUSES, type CompiledSearchParts } from "../core/query.js";
import type { CalType } from "../rules/common.js";

/** One search of one frame: part 0, or 0/1 of an interleave. */
export interface ShapeMember {
  obsHid: number;
  caltype: CalType;
  part: number;
  /** The interleave's cut after weaving, or null. */
  weaveLimit: number | null;
  values: CompiledSearchParts["values"];
}

/** The SQL of a shape: the per-frame statement's pieces, without values. */
export type ShapeParts = Pick<
  CompiledSearchParts,
  "from" | "where" | "order" | "limit"
>;

/** A shape's identity: its SQL pieces and the key they make, built once. */
export interface ShapeSpec {
  key: string;
  parts: ShapeParts;
}

export interface Shape {
  key: string;
  parts: ShapeParts;
  members: ShapeMember[];
}

export function shapeSpec(parts: ShapeParts): ShapeSpec {
  const { from, where, order, limit } = parts;
  return {
    key: `${from}\u0000${where.join("\u0000")}\u0000${order.join("\u0000")}\u0000${limit}`,
    parts: { from, where, order, limit },
  };
}

/** Groups compiled searches by their SQL text. */
export class ShapeGroups {
  readonly shapes = new Map<string, Shape>();
  searches = 0;

  add(spec: ShapeSpec, member: ShapeMember): void {
    let shape = this.shapes.get(spec.key);
    if (shape === undefined) {
      shape = { key: spec.key, parts: spec.parts, members: [] };
      this.shapes.set(spec.key, shape);
    }
    shape.members.push(member);
    this.searches += 1;
  }
}

/** The parameter types PostgreSQL infers for a shape's per-frame statement. */
export class ParameterTypes {
  private readonly cache = new Map<string, string[]>();
  private counter = 0;

  async of(client: AnyClient, shape: Shape): Promise<string[]> {
    const cached = this.cache.get(shape.key);
    if (cached !== undefined) {
      return cached;
    }
    const { from, where, order, limit } = shape.parts;
    const name = `fitsfleet_calshape_${process.pid}_${++this.counter}`;
    await client.query(
      `PREPARE ${name} AS SELECT h.id FROM ${from} WHERE ${where.join(" AND ")} ORDER BY ${order.join(", ")} LIMIT ${limit}`,
    );
    try {
      const { rows } = await client.query<{ types: string[] }>(
        `SELECT parameter_types::text[] AS types FROM pg_prepared_statements WHERE name = $1`,
        [name],
      );
      const types = rows[0]!.types;
      this.cache.set(shape.key, types);
      return types;
    } finally {
      await client.query(`DEALLOCATE ${name}`);
    }
  }
}

/**
 * Runs one shape over `members` and inserts each frame's ranked candidates
 * into `work` (obs_hid, caltype, part, rn, cal_hid, weave_limit).
 * Returns the rows inserted.
 */
export async function runShape(
  client: AnyClient,
  shape: Shape,
  members: ShapeMember[],
  types: string[],
  work: string,
  candidates?: string,
): Promise<number> {
  const { text, params } = shapeStatement(
    shape,
    members,
    types,
    work,
    candidates,
  );
  const result = await client.query(text, params);
  return result.rowCount ?? 0;
}

/**
 * An array parameter as the text node-postgres would send for it, byte for
 * byte (its `prepareValue`: every element double-quoted, `\\` and `"`
 * escaped, NULL bare), without its per-element type tests and regular
 * expressions. Only the element types searches bind: strings, numbers,
 * booleans and NULL.
 */
export function arrayLiteral(
  values: readonly (string | number | boolean | null | undefined)[],
): string {
  // Mostly no NULL and nothing to escape: then one join does it.
  let plain = values.length > 0;
  for (const v of values) {
    if (
      typeof v === "string"
        ? v.includes("\\") || v.includes('"')
        : typeof v !== "number" && typeof v !== "boolean"
    ) {
      plain = false;
      break;
    }
  }
  if (plain) {
    return `{"${values.join('","')}"}`;
  }
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      parts[i] = "NULL";
    } else if (typeof v === "string") {
      parts[i] =
        v.includes("\\") || v.includes('"')
          ? `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`
          : `"${v}"`;
    } else if (typeof v === "number" || typeof v === "boolean") {
      parts[i] = `"${v}"`;
    } else {
      throw new Error(`array parameter: unexpected ${typeof v} element`);
    }
  }
  return `{${parts.join(",")}}`;
}

/** A column of the per-frame statement: `h."name"`, `pt.priority`, … */
const COLUMN_REF = /\b(h|i|d|pt)\.(?:"([^"]+)"|([a-z_][a-z0-9_]*))/g;

/** A join clause that is an equality of a candidate column and a frame's value. */
const EQUALITY = /^c\."([^"]+)" = (p\.v\d+)$/;

/** The ORDER BY's first two keys when they are the class, then |Δt|. */
const CLASS_THEN_TIME =
  /^c\."pt\.priority" DESC, abs\(c\."h\.ut_datetime_secs" - (p\.v\d+|\$\d+::bigint)\), /;

/**
 * An untimed search (no window, so every frame meets every candidate of
 * its setup) whose only per-frame clauses are equalities and whose order
 * is the class, then the distance in time: each frame needs, per class,
 * only the `lim` nearest candidates before and after it (with those tied
 * with the last of them); every other candidate has `lim` candidates of
 * its class strictly nearer, so cannot be among the first `lim`. Those are
 * found by binary search (`width_bucket`) in each group's candidates
 * sorted by time, instead of ranking every pair. Candidates without a time
 * sort after all others of their class (NULLS LAST), so all are kept.
 */
function nearestPlan(
  joinText: string[],
  orderText: string,
  lim: string,
): { keys: string[]; keyColumns: string[]; secs: string } | null {
  const order = CLASS_THEN_TIME.exec(orderText);
  if (order === null || lim.startsWith("p.")) {
    return null;
  }
  const keys: string[] = [];
  const keyColumns = new Set<string>();
  for (const clause of joinText) {
    const m = EQUALITY.exec(clause);
    if (m === null) {
      return null;
    }
    keys.push(`g."${m[1]!}" = ${m[2]!}`);
    keyColumns.add(`"${m[1]!}"`);
  }
  return { keys, keyColumns: [...keyColumns], secs: order[1]! };
}

/** The per-frame `max_interval` clause as query.ts writes it. */
const WITHIN =
  /^h\.ut_datetime > \$(\d+)(?:::timestamp)? - make_interval\(days => \$(\d+)\) AND h\.ut_datetime < \$\1(?:::timestamp)? \+ make_interval\(days => \$\2\)$/;

/**
 * The statement `runShape` runs. Its plan is forced into the order that
 * keeps it linear: first the candidates (a MATERIALIZED CTE with the
 * clauses that are the same for every frame, and for a time-windowed search
 * only what lies within the window of some frame of the batch), then a hash
 * join of the frames to the candidates on the equality clauses and, for a
 * time window of D days, on the D-day bucket of ut_datetime (the frame's
 * bucket −1, 0 or +1: a candidate within D days is always in one of them),
 * then the per-frame clauses themselves, then the ranking. Every added
 * condition is implied by the per-frame clauses, so it only drops rows the
 * per-frame statement also drops.
 *
 * With `candidates` (buildCandidateTable's table for the shape's instrument:
 * its FROM joined and its BASE_CLAUSES applied once), the candidates are
 * read from there instead, each column reference `h.x` becoming `x."h.x"`.
 */
export function shapeStatement(
  shape: Shape,
  members: ShapeMember[],
  types: string[],
  work: string,
  candidates?: string,
): { text: string; params: unknown[] } {
  const params: unknown[] = [];
  const unnest: string[] = [];
  const columns: string[] = [];
  const column = (
    name: string,
    type: string,
    values: (string | number | boolean | null)[],
  ) => {
    params.push(arrayLiteral(values));
    unnest.push(`$${params.length}::${type}[]`);
    columns.push(name);
  };
  // A value of each frame's search: its column, or one parameter when every
  // frame has the same value (the planner then sees a constant; caltype,
  // part and weave limit usually are).
  const carry = (
    name: string,
    type: string,
    value: (m: ShapeMember) => string | number | boolean | null,
  ) => {
    const first = value(members[0]!);
    if (members.every((m) => value(m) === first)) {
      params.push(first);
      return `$${params.length}::${type}`;
    }
    column(name, type, members.map(value));
    return `p.${name}`;
  };
  // The frame's own column always, so `unnest` has at least one array.
  column(
    "obs_hid",
    "int",
    members.map((m) => m.obsHid),
  );
  const obsHid = "p.obs_hid";
  const caltype = carry("caltype", "caltype", (m) => m.caltype);
  const part = carry("part", "smallint", (m) => m.part);
  const weaveLimit = carry("weave_limit", "int", (m) => m.weaveLimit);
  const frameColumns = `${obsHid} AS obs_hid, ${caltype} AS caltype, ${part} AS part, ${weaveLimit} AS weave_limit`;
  // $n of the per-frame text → what stands for it here.
  const replacement = new Map<number, string>();
  types.forEach((type, index) => {
    replacement.set(
      index + 1,
      carry(`v${index + 1}`, type, (m) => m.values[index] ?? null),
    );
  });
  const rewrite = (sql: string) =>
    sql.replace(/\$(\d+)/g, (_, n: string) => {
      const r = replacement.get(Number(n));
      if (r === undefined) {
        throw new Error(`shape parameter $${n} has no type`);
      }
      return r;
    });
  const { order, limit } = shape.parts;
  let { from, where } = shape.parts;
  // A candidate column as the CTE's FROM names it.
  let source = (sql: string) => sql;
  if (candidates !== undefined) {
    if (!BASE_CLAUSES.every((clause, n) => where[n] === clause)) {
      throw new Error("a search without the base query's clauses");
    }
    from = `${candidates} x`;
    where = where.slice(BASE_CLAUSES.length);
    source = (sql) =>
      sql.replace(
        COLUMN_REF,
        (_ref: string, alias: string, quoted?: string, bare?: string) =>
          `x."${alias}.${quoted ?? bare}"`,
      );
  }

  const candidateWhere: string[] = [];
  const joinWhere: string[] = [];
  for (const clause of where) {
    const text = rewrite(clause);
    if (/\bp\.v\d+\b/.test(text)) {
      joinWhere.push(text);
    } else {
      candidateWhere.push(source(text));
    }
  }
  let bucketJoin = "";
  let bucketColumn = "";
  const frameBuckets: string[] = [];
  for (const clause of where) {
    const m = WITHIN.exec(clause);
    if (m === null) {
      continue;
    }
    // With a window that differs between frames, the widest one: a
    // candidate within d <= D days of its frame still lies in the frame's
    // D-day bucket -1, 0 or +1.
    const windows = members.map((mm) => mm.values[Number(m[2]) - 1]);
    if (!windows.every((d) => typeof d === "number" && d > 0)) {
      continue;
    }
    const days = (windows as number[]).reduce((a, b) => Math.max(a, b));
    const at = replacement.get(Number(m[1]))!;
    const seconds = days * 86400;
    bucketColumn = `, floor(extract(epoch FROM ${source("h.ut_datetime")}) / ${seconds}) AS "bucket"`;
    frameBuckets.push(`floor(extract(epoch FROM ${at}) / ${seconds}) + b.o`);
    bucketJoin = `CROSS JOIN (VALUES (-1), (0), (1)) AS b(o)`;
    if (at.startsWith("p.")) {
      // The earliest and latest frame times (ISO text sorts as time does).
      const time = Number(m[1]) - 1;
      let first = String(members[0]!.values[time]);
      let last = first;
      for (const member of members) {
        const value = String(member.values[time]);
        if (value < first) {
          first = value;
        } else if (value > last) {
          last = value;
        }
      }
      params.push(first, last, days);
      const n = params.length;
      candidateWhere.push(
        source(
          `h.ut_datetime > $${n - 2}::timestamp - make_interval(days => $${n}::int)`,
        ),
        source(
          `h.ut_datetime < $${n - 1}::timestamp + make_interval(days => $${n}::int)`,
        ),
      );
    }
    break;
  }

  const tiebreak = "h.id DESC, i.id DESC";
  const outerOrder = `${order.join(", ")}, ${tiebreak}`;
  // Every column the frame-dependent parts read comes out of the CTE.
  const needed = new Map<string, string>();
  const toCte = (sql: string) =>
    sql.replace(
      COLUMN_REF,
      (ref: string, alias: string, quoted?: string, bare?: string) => {
        const name = `${alias}.${quoted ?? bare}`;
        needed.set(name, ref);
        return `c."${name}"`;
      },
    );
  const joinText = joinWhere.map(toCte);
  const orderText = toCte(rewrite(outerOrder));
  const cteColumns = [...needed].map(
    ([name, ref]) => `${source(ref)} AS "${name}"`,
  );
  // The frames: one row per frame, or per frame and bucket offset. The
  // bucket is a column of its own, computed before the join, so the planner
  // can join on it with the equality clauses; computed inside the join it
  // is only a filter after the other keys, and a batch's frames of one
  // setup then meet every candidate of that setup in the archive.
  // k numbers the frames' searches, the partition of the ranking.
  let frames = `unnest(${unnest.join(", ")}) WITH ORDINALITY AS p(${[...columns, "k"].join(", ")})`;
  if (frameBuckets.length > 0) {
    joinText.push(`c."bucket" = p."bucket"`);
    frames = `(SELECT p.*, ${frameBuckets[0]} AS "bucket"
                  FROM ${frames}
                  ${bucketJoin}) p`;
  }
  const lim = rewrite(limit);
  let ranked = `SELECT obs_hid, caltype, part, rn, cal_hid, weave_limit
  FROM (SELECT ${frameColumns}, c."h.id" AS cal_hid,
               ${lim} AS lim,
               row_number() OVER (PARTITION BY p.k ORDER BY ${orderText}) AS rn
          FROM p
          JOIN c ON ${joinText.length === 0 ? "true" : joinText.join("\n           AND ")}) ranked
 WHERE rn <= lim`;
  let nearestGroups = "";
  const nearest =
    frameBuckets.length === 0 ? nearestPlan(joinText, orderText, lim) : null;
  if (nearest !== null) {
    const carried = [...needed.keys()].map((name) => `"${name}"`);
    const asArrays = (suffix: string, filter: string) =>
      carried.map(
        (c) =>
          `array_agg(c.${c} ORDER BY c."h.ut_datetime_secs") FILTER (WHERE ${filter}) AS "${c.slice(1, -1)}${suffix}"`,
      );
    const slices = (suffix: string, slice: string) =>
      carried.map((c) => `g."${c.slice(1, -1)}${suffix}"${slice}`).join(", ");
    const groupBy = [...nearest.keyColumns, `"pt.priority"`];
    nearestGroups = `,
g AS MATERIALIZED (
  SELECT ${[...groupBy, ...asArrays("[]", `c."h.ut_datetime_secs" IS NOT NULL`), ...asArrays("[null]", `c."h.ut_datetime_secs" IS NULL`)].join(",\n         ")}
    FROM c
   GROUP BY ${groupBy.join(", ")})`;
    const secs = `g."h.ut_datetime_secs[]"`;
    ranked = `SELECT obs_hid, caltype, part, rn, cal_hid, weave_limit
  FROM (SELECT ${frameColumns}, c."h.id" AS cal_hid,
               ${lim} AS lim,
               row_number() OVER (PARTITION BY p.k ORDER BY ${orderText}) AS rn
          FROM p
          JOIN g ON ${nearest.keys.length === 0 ? "true" : nearest.keys.join("\n           AND ")}
          CROSS JOIN LATERAL (SELECT coalesce(width_bucket(${nearest.secs}, ${secs}), 0) AS n,
                                     coalesce(cardinality(${secs}), 0) AS len) w
          CROSS JOIN LATERAL (
                SELECT CASE WHEN ${nearest.secs} IS NOT NULL AND w.n >= ${lim}
                            THEN width_bucket(${secs}[w.n - ${lim} + 1] - 1, ${secs}) + 1
                            ELSE 1 END AS lo,
                       CASE WHEN ${nearest.secs} IS NOT NULL AND w.n + ${lim} <= w.len
                            THEN width_bucket(${secs}[w.n + ${lim}], ${secs})
                            ELSE w.len END AS hi) s
          CROSS JOIN LATERAL (
                SELECT * FROM unnest(${slices("[]", "[s.lo:s.hi]")})
                UNION ALL
                SELECT * FROM unnest(${slices("[null]", "")})) AS c(${carried.join(", ")})) ranked
 WHERE rn <= lim`;
  }
  const text = `WITH c AS MATERIALIZED (
  SELECT ${cteColumns.join(", ")}${bucketColumn}
    FROM ${from}
   WHERE ${candidateWhere.length === 0 ? "true" : candidateWhere.join("\n     AND ")}),
p AS MATERIALIZED (SELECT * FROM ${frames})${nearestGroups}
INSERT INTO ${work} (obs_hid, caltype, part, rn, cal_hid, weave_limit)
${ranked}`;
  return { text, params };
}
