/**
 * Schema introspection and comparison, from the catalog of a live server rather
 * than by parsing DDL: PostgreSQL itself normalises types, defaults, constraints
 * and index definitions, so two schemas compare equal exactly when the server
 * would treat them the same.
 */
import { randomBytes } from "node:crypto";

import { PreconditionError } from "../errors.js";
import { type PgClient, withClient } from "./connect.js";
import { quoteIdent } from "./sql.js";

/** Every column of the tables in schema $1, in table then column order. */
export const COLUMNS_SQL = `
  SELECT c.relname AS table, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
         a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
   WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
   ORDER BY c.relname, a.attnum`;

export interface ColumnInfo {
  name: string;
  type: string;
  notNull: boolean;
  default: string | null;
}

export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  /** constraint name → definition (primary keys, unique, foreign keys, checks) */
  constraints: Record<string, string>;
  /** index name → definition with the schema qualifier removed */
  indexes: Record<string, string>;
}

export interface SchemaInfo {
  schema: string;
  tables: Record<string, TableInfo>;
  /** enum type name → labels in sort order (the order matters to queries) */
  enums: Record<string, string[]>;
}

export async function describeSchema(
  client: PgClient,
  schema = "public",
): Promise<SchemaInfo> {
  await client.query("BEGIN READ ONLY");
  try {
    // With the schema on the search path, format_type() prints enum types unqualified.
    await client.query(
      `SET LOCAL search_path TO ${quoteIdent(schema, "schema name")}`,
    );
    const enums = await client.query<{ name: string; labels: string[] }>(
      `SELECT t.typname AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
         FROM pg_type t
         JOIN pg_namespace n ON n.oid = t.typnamespace
         JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE n.nspname = $1
        GROUP BY t.typname`,
      [schema],
    );
    const columns = await client.query<{
      table: string;
      name: string;
      type: string;
      not_null: boolean;
      default: string | null;
    }>(COLUMNS_SQL, [schema]);
    const constraints = await client.query<{
      table: string;
      name: string;
      definition: string;
    }>(
      `SELECT c.relname AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS definition
         FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1`,
      [schema],
    );
    const indexes = await client.query<{
      table: string;
      name: string;
      definition: string;
    }>(
      `SELECT tablename AS table, indexname AS name, indexdef AS definition
         FROM pg_indexes WHERE schemaname = $1`,
      [schema],
    );
    await client.query("COMMIT");

    const tables: Record<string, TableInfo> = {};
    const table = (name: string): TableInfo =>
      (tables[name] ??= { name, columns: [], constraints: {}, indexes: {} });
    for (const row of columns.rows) {
      table(row.table).columns.push({
        name: row.name,
        type: row.type,
        notNull: row.not_null,
        default: row.default,
      });
    }
    for (const row of constraints.rows) {
      table(row.table).constraints[row.name] = row.definition;
    }
    const qualifier = `${schema}.`;
    for (const row of indexes.rows) {
      table(row.table).indexes[row.name] = row.definition.replaceAll(
        ` ON ${qualifier}`,
        " ON ",
      );
    }
    return {
      schema,
      tables,
      enums: Object.fromEntries(enums.rows.map((r) => [r.name, r.labels])),
    };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

export interface SchemaDifference {
  /** The table the difference is in, or undefined for enum types. */
  table: string | undefined;
  kind:
    | "missing-table"
    | "extra-table"
    | "missing-column"
    | "extra-column"
    | "column"
    | "enum"
    | "missing-index"
    | "extra-index"
    | "index"
    | "missing-constraint"
    | "extra-constraint"
    | "constraint";
  detail: string;
}

export interface CompareOptions {
  /** Compare only these tables (and the enum types their columns use). */
  tables?: readonly string[];
}

/**
 * Differences between `expected` (for example the reference schema) and
 * `actual` (the database), described from the database's point of view.
 */
export function compareSchemas(
  expected: SchemaInfo,
  actual: SchemaInfo,
  options: CompareOptions = {},
): SchemaDifference[] {
  const diffs: SchemaDifference[] = [];
  const only =
    options.tables === undefined ? undefined : new Set(options.tables);
  const names = new Set([
    ...Object.keys(expected.tables),
    ...Object.keys(actual.tables),
  ]);
  const usedTypes = new Set<string>();

  for (const name of [...names].sort()) {
    if (only !== undefined && !only.has(name)) {
      continue;
    }
    const want = expected.tables[name];
    const have = actual.tables[name];
    if (want === undefined) {
      diffs.push({
        table: name,
        kind: "extra-table",
        detail: `table ${name} is not in the reference`,
      });
      continue;
    }
    if (have === undefined) {
      diffs.push({
        table: name,
        kind: "missing-table",
        detail: `table ${name} is missing`,
      });
      continue;
    }
    want.columns.forEach((c) => usedTypes.add(c.type.replace(/\[\]$/, "")));
    have.columns.forEach((c) => usedTypes.add(c.type.replace(/\[\]$/, "")));
    diffs.push(...compareColumns(name, want.columns, have.columns));
    diffs.push(...compareNamed(name, "index", want.indexes, have.indexes));
    diffs.push(
      ...compareNamed(name, "constraint", want.constraints, have.constraints),
    );
  }
  if (only !== undefined) {
    for (const table of only) {
      if (!names.has(table)) {
        diffs.push({
          table,
          kind: "missing-table",
          detail: `table ${table} is in neither schema`,
        });
      }
    }
  }

  const enumNames = new Set([
    ...Object.keys(expected.enums),
    ...Object.keys(actual.enums),
  ]);
  for (const name of [...enumNames].sort()) {
    if (only !== undefined && !usedTypes.has(name)) {
      continue;
    }
    const want = expected.enums[name];
    const have = actual.enums[name];
    if (want === undefined) {
      diffs.push({
        table: undefined,
        kind: "enum",
        detail: `enum type ${name} is not in the reference`,
      });
    } else if (have === undefined) {
      diffs.push({
        table: undefined,
        kind: "enum",
        detail: `enum type ${name} is missing`,
      });
    } else if (want.join("\u0000") !== have.join("\u0000")) {
      diffs.push({
        table: undefined,
        kind: "enum",
        detail: `enum type ${name} has values (${have.join(", ")}); the reference has (${want.join(", ")})`,
      });
    }
  }
  return diffs;
}

function compareColumns(
  table: string,
  want: ColumnInfo[],
  have: ColumnInfo[],
): SchemaDifference[] {
  const diffs: SchemaDifference[] = [];
  const haveByName = new Map(have.map((c) => [c.name, c]));
  const wantNames = new Set(want.map((c) => c.name));
  for (const w of want) {
    const h = haveByName.get(w.name);
    if (h === undefined) {
      diffs.push({
        table,
        kind: "missing-column",
        detail: `${table}.${w.name} (${w.type}) is missing`,
      });
      continue;
    }
    const problems: string[] = [];
    if (w.type !== h.type) {
      problems.push(`type ${h.type}, reference ${w.type}`);
    }
    if (w.notNull !== h.notNull) {
      problems.push(
        h.notNull
          ? "NOT NULL, reference nullable"
          : "nullable, reference NOT NULL",
      );
    }
    if (w.default !== h.default) {
      problems.push(
        `default ${h.default ?? "none"}, reference ${w.default ?? "none"}`,
      );
    }
    if (problems.length > 0) {
      diffs.push({
        table,
        kind: "column",
        detail: `${table}.${w.name}: ${problems.join("; ")}`,
      });
    }
  }
  for (const h of have) {
    if (!wantNames.has(h.name)) {
      diffs.push({
        table,
        kind: "extra-column",
        detail: `${table}.${h.name} (${h.type}) is not in the reference`,
      });
    }
  }
  return diffs;
}

function compareNamed(
  table: string,
  what: "index" | "constraint",
  want: Record<string, string>,
  have: Record<string, string>,
): SchemaDifference[] {
  const diffs: SchemaDifference[] = [];
  for (const [name, definition] of Object.entries(want)) {
    const actual = have[name];
    if (actual === undefined) {
      diffs.push({
        table,
        kind: `missing-${what}`,
        detail: `${what} ${name} on ${table} is missing: ${definition}`,
      });
    } else if (actual !== definition) {
      diffs.push({
        table,
        kind: what,
        detail: `${what} ${name} on ${table} is ${actual}; the reference has ${definition}`,
      });
    }
  }
  for (const [name, definition] of Object.entries(have)) {
    if (!(name in want)) {
      diffs.push({
        table,
        kind: `extra-${what}`,
        detail: `${what} ${name} on ${table} is not in the reference: ${definition}`,
      });
    }
  }
  return diffs;
}

/**
 * Loads a DDL file into a scratch database on the same server as `url`,
 * describes it, and drops the scratch database again (also on failure).
 */
export async function describeDdl(
  url: string,
  ddl: string,
  label: string,
): Promise<SchemaInfo> {
  const scratch = `fitsfleet_scratch_${randomBytes(6).toString("hex")}`;
  await withClient(url, async (admin) => {
    try {
      await admin.query(`CREATE DATABASE ${quoteIdent(scratch)}`);
    } catch (error) {
      throw new PreconditionError(
        `cannot create a scratch database to load ${label}: ${(error as Error).message}`,
        {
          cause: error,
          suggestion:
            "the database user needs CREATEDB for --reference; or load the reference yourself and pass --against URL",
        },
      );
    }
  });
  try {
    const scratchUrl = new URL(url);
    scratchUrl.pathname = `/${scratch}`;
    return await withClient(scratchUrl.toString(), async (client) => {
      try {
        await client.query(ddl);
      } catch (error) {
        throw new PreconditionError(
          `cannot load ${label}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      return describeSchema(client, "public");
    });
  } finally {
    await withClient(url, (admin) =>
      admin.query(
        `DROP DATABASE IF EXISTS ${quoteIdent(scratch)} WITH (FORCE)`,
      ),
    );
  }
}
