/**
 * What an upgrade needs to know about one side (a live database or a dump):
 * the tables, their columns, and every sequence that feeds a column, found
 * through the catalog (ownership, identity, or a column default that calls
 * nextval) and never by guessing from names.
 */
import type { PgClient } from "../db/connect.js";
import { COLUMNS_SQL } from "../db/introspect.js";

export interface CatalogColumn {
  name: string;
  /** As format_type() prints it, e.g. "integer", "character varying(20)". */
  type: string;
  notNull: boolean;
  default: string | null;
}

export interface CatalogSequence {
  /** Schema-qualified, e.g. "public.usagelog_id_seq". */
  name: string;
  /** How the column uses it. */
  link: "owned" | "identity" | "default";
  /** The last value handed out, or null when none has been (is_called false). */
  position: bigint | null;
  lastValue: bigint;
  isCalled: boolean;
  /** Its data type ("smallint", "integer", "bigint"), when known. */
  type?: string;
  /** The largest value it may hold, when known. */
  maxValue?: bigint;
}

/** The largest value of a sequence type, the default MAXVALUE. */
export function sequenceTypeMax(type: string): bigint {
  return type === "smallint"
    ? 32767n
    : type === "integer"
      ? 2147483647n
      : 9223372036854775807n;
}

export interface CatalogTable {
  schema: string;
  name: string;
  columns: CatalogColumn[];
  /** Column name → the sequence that feeds it. */
  sequences: Record<string, CatalogSequence>;
}

export interface Catalog {
  /** Where it came from, for messages: a database name or a dump path. */
  origin: string;
  tables: Map<string, CatalogTable>;
}

/** The position a sequence has handed out up to: last_value, or one less when nextval has not run. */
export function sequencePosition(
  lastValue: bigint,
  isCalled: boolean,
): bigint | null {
  return isCalled ? lastValue : lastValue > 1n ? lastValue - 1n : null;
}

/** Tables of one schema with their columns and the sequences feeding them, read in one snapshot. */
export async function readCatalog(
  client: PgClient,
  origin: string,
  schema = "public",
): Promise<Catalog> {
  await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    const columns = await client.query<{
      table: string;
      name: string;
      type: string;
      not_null: boolean;
      default: string | null;
    }>(COLUMNS_SQL, [schema]);
    // Owned and identity sequences are recorded in pg_depend ('a' auto, 'i'
    // internal); a sequence used only by a DEFAULT nextval(...) depends on the
    // default expression ('n' normal), which is the unowned case pg_dump -t misses.
    const links = await client.query<{
      table: string;
      column: string;
      sequence: string;
      link: "owned" | "identity" | "default";
    }>(
      `SELECT DISTINCT ON (t.relname, a.attname)
              t.relname AS table, a.attname AS column,
              format('%I.%I', sn.nspname, s.relname) AS sequence,
              CASE WHEN d.deptype = 'i' THEN 'identity'
                   WHEN d.deptype = 'a' THEN 'owned'
                   ELSE 'default' END AS link
         FROM pg_depend d
         JOIN pg_class s ON s.oid = d.objid AND d.classid = 'pg_class'::regclass AND s.relkind = 'S'
         JOIN pg_namespace sn ON sn.oid = s.relnamespace
         JOIN pg_class t ON t.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
         JOIN pg_namespace tn ON tn.oid = t.relnamespace
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE tn.nspname = $1 AND d.deptype IN ('a', 'i')
       UNION ALL
       SELECT DISTINCT ON (t.relname, a.attname)
              t.relname, a.attname,
              format('%I.%I', sn.nspname, s.relname),
              'default'
         FROM pg_attrdef ad
         JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                         AND d.refclassid = 'pg_class'::regclass
         JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
         JOIN pg_namespace sn ON sn.oid = s.relnamespace
         JOIN pg_class t ON t.oid = ad.adrelid
         JOIN pg_namespace tn ON tn.oid = t.relnamespace
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ad.adnum
        WHERE tn.nspname = $1`,
      [schema],
    );
    const positions = new Map<
      string,
      { last: bigint; called: boolean; type: string; max: bigint }
    >();
    for (const sequence of new Set(links.rows.map((r) => r.sequence))) {
      // pg_sequences hides values from roles without USAGE; reading the relation says why it fails.
      const { rows } = await client.query<{
        last_value: string;
        is_called: boolean;
      }>(`SELECT last_value::text, is_called FROM ${sequence}`);
      const { rows: kind } = await client.query<{ type: string; max: string }>(
        `SELECT format_type(seqtypid, NULL) AS type, seqmax::text AS max
           FROM pg_sequence WHERE seqrelid = $1::regclass`,
        [sequence],
      );
      positions.set(sequence, {
        last: BigInt(rows[0]!.last_value),
        called: rows[0]!.is_called,
        type: kind[0]!.type,
        max: BigInt(kind[0]!.max),
      });
    }
    await client.query("COMMIT");

    const tables = new Map<string, CatalogTable>();
    for (const row of columns.rows) {
      let table = tables.get(row.table);
      if (table === undefined) {
        table = { schema, name: row.table, columns: [], sequences: {} };
        tables.set(row.table, table);
      }
      table.columns.push({
        name: row.name,
        type: row.type,
        notNull: row.not_null,
        default: row.default,
      });
    }
    // Owned or identity wins over a default link for the same column.
    const rank = { identity: 0, owned: 1, default: 2 };
    for (const row of [...links.rows].sort(
      (a, b) => rank[a.link] - rank[b.link],
    )) {
      const table = tables.get(row.table);
      const value = positions.get(row.sequence);
      if (
        table === undefined ||
        value === undefined ||
        table.sequences[row.column]
      ) {
        continue;
      }
      table.sequences[row.column] = {
        name: row.sequence,
        link: row.link,
        lastValue: value.last,
        isCalled: value.called,
        position: sequencePosition(value.last, value.called),
        type: value.type,
        maxValue: value.max,
      };
    }
    return { origin, tables };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
