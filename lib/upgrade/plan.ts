/**
 * The upgrade plan: for every preserved table, where each target column's
 * value comes from, which source columns are dropped, and how each target
 * sequence will be set. Compatible differences are resolved here without a
 * mapping (columns added in the target, widened types); everything else must
 * be in the mapping file, and every unresolved difference is a problem. A plan
 * with problems is never executed.
 */
import type { Catalog, CatalogColumn, CatalogTable } from "./catalog.js";
import type { ColumnMapping, UpgradeMapping } from "./mapping.js";

export type ColumnSourceKind =
  /** Same type: the text passes through COPY unchanged. */
  | "copy"
  /** A wider type of the same kind (integer → bigint, varchar(n) → text): COPY accepts the text. */
  | "widen"
  /** An explicit cast from the mapping file. */
  | "cast"
  /** An SQL expression from the mapping file. */
  | "expr"
  /** Not in the source: the target column's default. */
  | "default"
  /** Not in the source and no default: NULL. */
  | "null";

export interface ColumnPlan {
  target: string;
  targetType: string;
  kind: ColumnSourceKind;
  source?: string;
  sourceType?: string;
  expr?: string;
  default?: string;
}

export interface SequencePlan {
  column: string;
  /** The target sequence that feeds the column. */
  sequence: string;
  sourceSequence: string | null;
  /** The last value the source sequence handed out (null: none, or no sequence). */
  sourcePosition: bigint | null;
  /** The source sequence's state as read: nextval gives lastValue when isCalled is false. */
  sourceLastValue: bigint | null;
  sourceIsCalled: boolean | null;
  sourceType: string | null;
  targetType: string | null;
  targetMax: bigint | null;
}

export interface SequenceSetting {
  /** setval's value and is_called. */
  value: bigint;
  isCalled: boolean;
  /** What the next nextval returns. */
  next: bigint;
}

/**
 * What migrate-tables gives setval: the larger of the source's position and
 * max(id), so the next id collides with no row and never reuses an id the
 * source handed out; a sequence with neither starts afresh at 1.
 */
export function sequenceSetting(
  sourcePosition: bigint | null,
  maxId: bigint | null,
): SequenceSetting {
  const position = [sourcePosition ?? 0n, maxId ?? 0n].reduce((a, b) =>
    a > b ? a : b,
  );
  return position > 0n
    ? { value: position, isCalled: true, next: position + 1n }
    : { value: 1n, isCalled: false, next: 1n };
}

/** A problem when the value the sequence must reach does not fit the target sequence's type. */
export function sequenceFitProblem(
  table: string,
  s: SequencePlan,
  setting: SequenceSetting,
): string | undefined {
  if (s.targetMax === null || setting.next <= s.targetMax) {
    return undefined;
  }
  return `${table}.${s.column}: the target's sequence ${s.sequence} is ${s.targetType ?? "?"} (at most ${s.targetMax}), but its next value must be ${setting.next}${s.sourceType !== null && s.sourceType !== s.targetType ? ` (the source's ${s.sourceSequence ?? ""} is ${s.sourceType})` : ""}; make the target column and its sequence bigint before migrating`;
}

export interface TablePlan {
  target: string;
  source: string;
  columns: ColumnPlan[];
  /** Source columns deliberately left behind (listed under "drop" in the mapping). */
  dropped: string[];
  sequences: SequencePlan[];
  /** True when every carried column is a plain copy or widening: rows stream straight into the table. */
  direct: boolean;
}

export interface UpgradePlan {
  source: string;
  tables: TablePlan[];
  /** Everything that stops the upgrade, all at once. */
  problems: string[];
}

// Widening that COPY's text input accepts unchanged (same textual form, larger range).
const WIDER: Record<string, string[]> = {
  smallint: ["integer", "bigint", "numeric"],
  integer: ["bigint", "numeric"],
  bigint: ["numeric"],
  real: ["double precision"],
  "character varying": ["text"],
  character: ["text"],
};

function baseType(type: string): { base: string; args: number[] } {
  const match = /^([a-z ]+?)(?:\((\d+)(?:,(\d+))?\))?$/.exec(type);
  if (match === null) {
    return { base: type, args: [] };
  }
  return {
    base: match[1]!,
    args: [match[2], match[3]]
      .filter((a) => a !== undefined)
      .map((a) => Number(a)),
  };
}

/** "copy" for the same type, "widen" for a lossless widening, undefined otherwise. */
export function typeChange(
  from: string,
  to: string,
): "copy" | "widen" | undefined {
  if (from === to) {
    return "copy";
  }
  const a = baseType(from);
  const b = baseType(to);
  if (WIDER[a.base]?.includes(b.base) === true) {
    // Unconstrained numeric or text holds anything narrower.
    return b.args.length === 0 ? "widen" : undefined;
  }
  if (a.base === b.base) {
    if (a.base === "character varying" && b.args.length === 0) {
      return "widen";
    }
    if (
      a.base === "character varying" &&
      a.args[0] !== undefined &&
      b.args[0] !== undefined &&
      b.args[0] >= a.args[0]
    ) {
      return "widen";
    }
    if (a.base === "numeric") {
      if (b.args.length === 0) {
        return "widen";
      }
      const [ap = 0, as = 0] = a.args;
      const [bp = 0, bs = 0] = b.args;
      if (a.args.length > 0 && bs === as && bp >= ap) {
        return "widen";
      }
    }
  }
  return undefined;
}

function planColumn(
  table: string,
  column: CatalogColumn,
  sourceTable: CatalogTable,
  mapping: ColumnMapping | undefined,
  problems: string[],
): ColumnPlan {
  const base = { target: column.name, targetType: column.type };
  const sourceColumn = (name: string) =>
    sourceTable.columns.find((c) => c.name === name);
  if (mapping !== undefined && typeof mapping === "object") {
    if ("expr" in mapping) {
      return { ...base, kind: "expr", expr: mapping.expr };
    }
    const from = sourceColumn(mapping.from);
    if (from === undefined) {
      problems.push(
        `${table}.${column.name}: the mapping casts source column ${mapping.from}, which ${sourceTable.name} does not have`,
      );
      return { ...base, kind: "null" };
    }
    return { ...base, kind: "cast", source: from.name, sourceType: from.type };
  }
  const name = mapping ?? column.name;
  const from = sourceColumn(name);
  if (from === undefined) {
    if (mapping !== undefined) {
      problems.push(
        `${table}.${column.name}: the mapping takes it from ${sourceTable.name}.${name}, which does not exist`,
      );
    }
    if (column.default !== null) {
      return { ...base, kind: "default", default: column.default };
    }
    if (column.notNull) {
      problems.push(
        `${table}.${column.name}: NOT NULL in the target, has no default, and ${sourceTable.name} has no such column; map it in the mapping file ("columns": {"${column.name}": {"expr": "…"}})`,
      );
    }
    return { ...base, kind: "null" };
  }
  const change = typeChange(from.type, column.type);
  if (change === undefined) {
    problems.push(
      `${table}.${column.name}: ${from.type} in ${sourceTable.name}.${from.name} but ${column.type} in the target, which is not a safe widening; add {"from": "${from.name}", "cast": true} or an expression to the mapping file`,
    );
  }
  return {
    ...base,
    kind: change ?? "cast",
    source: from.name,
    sourceType: from.type,
  };
}

/** The plan for `tables` (target names, already in load order). */
export function planUpgrade(
  source: Catalog,
  target: Catalog,
  tables: readonly string[],
  mapping: UpgradeMapping,
): UpgradePlan {
  const problems: string[] = [];
  const plans: TablePlan[] = [];
  for (const name of Object.keys(mapping.tables)) {
    if (!tables.includes(name)) {
      problems.push(
        `the mapping file maps table ${name}, which is not being migrated (add it with --table, or remove it from the mapping)`,
      );
    }
  }
  for (const name of tables) {
    const targetTable = target.tables.get(name);
    if (targetTable === undefined) {
      problems.push(
        `the target database has no table ${name}; run \`fitsfleet db init\` on it first`,
      );
      continue;
    }
    const tableMapping = mapping.tables[name] ?? {};
    const sourceName = tableMapping.from ?? name;
    const sourceTable = source.tables.get(sourceName);
    if (sourceTable === undefined) {
      problems.push(
        tableMapping.from === undefined
          ? `${source.origin} has no table ${name}${source.tables.has("archiveuser") && name === "users" ? ' (it has archiveuser: a previous version; use a mapping file with "users": {"from": "archiveuser"}, e.g. mappings/fitsstorage-v2-to-v3.json)' : ""}`
          : `${source.origin} has no table ${sourceName} (the mapping's source for ${name})`,
      );
      continue;
    }
    const columnMappings = tableMapping.columns ?? {};
    for (const target of Object.keys(columnMappings)) {
      if (!targetTable.columns.some((c) => c.name === target)) {
        problems.push(
          `${name}: the mapping names column ${target}, which the target table does not have`,
        );
      }
    }
    const columns = targetTable.columns.map((c) =>
      planColumn(name, c, sourceTable, columnMappings[c.name], problems),
    );
    const used = new Set(
      columns.flatMap((c) => (c.source === undefined ? [] : [c.source])),
    );
    const dropped = tableMapping.drop ?? [];
    for (const d of dropped) {
      if (!sourceTable.columns.some((c) => c.name === d)) {
        problems.push(
          `${name}: the mapping drops ${sourceName}.${d}, which does not exist`,
        );
      }
    }
    const hasExpr = columns.some((c) => c.kind === "expr");
    for (const c of sourceTable.columns) {
      if (!used.has(c.name) && !dropped.includes(c.name) && !hasExpr) {
        problems.push(
          `${name}: source column ${sourceName}.${c.name} (${c.type}) has no place in the target and would be lost; map it, or list it under "drop" in the mapping file`,
        );
      }
    }
    const sequences: SequencePlan[] = [];
    for (const [column, sequence] of Object.entries(targetTable.sequences)) {
      const from = columns.find((c) => c.target === column)?.source;
      const sourceSequence =
        from === undefined ? undefined : sourceTable.sequences[from];
      const planned: SequencePlan = {
        column,
        sequence: sequence.name,
        sourceSequence: sourceSequence?.name ?? null,
        sourcePosition: sourceSequence?.position ?? null,
        sourceLastValue: sourceSequence?.lastValue ?? null,
        sourceIsCalled: sourceSequence?.isCalled ?? null,
        sourceType: sourceSequence?.type ?? null,
        targetType: sequence.type ?? null,
        targetMax: sequence.maxValue ?? null,
      };
      // max(id) is known only once the rows are read; the source's position is known now.
      const problem = sequenceFitProblem(
        name,
        planned,
        sequenceSetting(planned.sourcePosition, null),
      );
      if (problem !== undefined) {
        problems.push(problem);
      }
      sequences.push(planned);
    }
    plans.push({
      target: name,
      source: sourceName,
      columns,
      dropped: [...dropped],
      sequences,
      direct: columns.every(
        (c) =>
          c.kind === "copy" ||
          c.kind === "widen" ||
          c.kind === "default" ||
          c.kind === "null",
      ),
    });
  }
  return { source: source.origin, tables: plans, problems };
}
