/**
 * `upgrade migrate-tables`: the preserved tables from a previous version into
 * the fresh schema, in one transaction on the target.
 *
 * Inside that transaction: the tables locked and checked empty, optional
 * TRUNCATE, the tables' foreign keys and secondary indexes dropped, every
 * table streamed in with COPY (directly, or through a temporary staging table
 * when the mapping has casts or expressions), indexes rebuilt and foreign
 * keys re-validated in bulk, sequences set, and everything verified (row
 * counts, fingerprints of the carried columns, sequence positions). Any
 * failure, including a mismatch, rolls it all back: the target is as it was.
 *
 * Both cores work: the source (pg_restore decompressing, or the source
 * server) produces rows while the target server parses and stores them, and
 * index rebuilds run with PostgreSQL's parallel maintenance workers.
 */
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

import { from as copyFrom, to as copyTo } from "pg-copy-streams";

import { connect, type PgClient } from "../db/connect.js";
import { MIGRATE_TABLES_LOCK_KEY } from "../db/locks.js";
import { migrationStatus } from "../db/migrate.js";
import { quoteIdent } from "../db/sql.js";
import {
  EXIT,
  ExternalServiceError,
  FitsfleetError,
  PreconditionError,
} from "../errors.js";
import { type Catalog, readCatalog } from "./catalog.js";
import type { UpgradeMapping } from "./mapping.js";
import {
  type ColumnPlan,
  planUpgrade,
  sequenceSetting,
  type TablePlan,
  type UpgradePlan,
} from "./plan.js";
import { RowPipe } from "./rowpipe.js";
import { COPY_SETTINGS, type UpgradeSource } from "./source.js";

/** Serialises migrate-tables runs against one target database. */

/** Tables this large lose their secondary indexes during the load and get them rebuilt after. */
const REBUILD_INDEXES_FROM_ROWS = 10_000;

export interface TableProgress {
  table: string;
  phase: "copy" | "indexes" | "verify" | "done";
  rows: number;
  bytes: number;
  /** Rows expected (exact for a database source; the sequence position, an upper bound, for a dump). */
  expectedRows: number | null;
}

export interface SequenceReport {
  column: string;
  sequence: string;
  sourceSequence: string | null;
  sourcePosition: string | null;
  maxId: string | null;
  /** The value given to setval: nextval returns one more. */
  setTo: string;
  ok: boolean;
}

export interface TableReport {
  table: string;
  source: string;
  rows: number;
  targetRows: number;
  /** Columns whose values are compared by fingerprint (plain copies and widenings). */
  fingerprintColumns: string[];
  sourceFingerprint: string;
  targetFingerprint: string;
  sequences: SequenceReport[];
  indexesRebuilt: number;
  ok: boolean;
  /** Seconds spent streaming the table in, then verifying it. */
  seconds: number;
  verifySeconds: number;
}

export interface MigrateReport {
  source: string;
  tables: TableReport[];
  ok: boolean;
  seconds: number;
  /** Where the time went: planning, copying, index rebuilds, foreign-key validation, verification. */
  phases: Record<
    "plan" | "copy" | "indexes" | "foreignKeys" | "verify",
    number
  >;
}

export interface PlanInput {
  source: UpgradeSource;
  target: PgClient;
  tables: readonly string[];
  mapping: UpgradeMapping;
}

/** FK order among `tables` on the target: referenced tables first. */
async function loadOrder(
  client: PgClient,
  tables: readonly string[],
): Promise<string[]> {
  const { rows } = await client.query<{ child: string; parent: string }>(
    `SELECT c.relname AS child, p.relname AS parent
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid
       JOIN pg_class p ON p.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND n.nspname = 'public'
        AND c.relname = ANY($1) AND p.relname = ANY($1) AND c.relname <> p.relname`,
    [tables],
  );
  const ordered: string[] = [];
  const visiting = new Set<string>();
  const visit = (table: string) => {
    if (ordered.includes(table) || visiting.has(table)) {
      return;
    }
    visiting.add(table);
    for (const r of rows.filter((r) => r.child === table)) {
      visit(r.parent);
    }
    ordered.push(table);
  };
  [...tables].sort().forEach(visit);
  return ordered;
}

/** Checks the target is a database made by `db init` and up to date. */
async function checkTarget(client: PgClient): Promise<void> {
  const status = await migrationStatus(client);
  if (status.current === 0) {
    throw new PreconditionError("the target database has no fitsfleet schema", {
      suggestion:
        "create the new version's schema first: `fitsfleet db init --database-url TARGET`",
    });
  }
  if (status.pending > 0) {
    throw new PreconditionError(
      `the target database's schema is ${status.pending} migration(s) behind`,
      { suggestion: "run `fitsfleet db init` on it to bring it up to date" },
    );
  }
}

export interface PreparedPlan {
  plan: UpgradePlan;
  order: string[];
  sourceCatalog: Catalog;
  targetCatalog: Catalog;
}

/** Reads both catalogs and plans; problems are in the plan, not thrown. */
export async function preparePlan(input: PlanInput): Promise<PreparedPlan> {
  await checkTarget(input.target);
  const order = await loadOrder(input.target, input.tables);
  const sourceCatalog = await input.source.catalog();
  const targetCatalog = await readCatalog(input.target, "the target database");
  const plan = planUpgrade(sourceCatalog, targetCatalog, order, input.mapping);
  const missing = input.source.missingSequenceValues();
  for (const t of plan.tables) {
    for (const s of t.sequences) {
      if (s.sourceSequence !== null && missing.includes(s.sourceSequence)) {
        plan.problems.push(
          `${t.target}.${s.column}: the source's sequence ${s.sourceSequence} feeds it, but ${input.source.origin} holds no value for it (pg_dump -t leaves out sequences a table does not own); dump the whole database, or add -t ${s.sourceSequence}`,
        );
      }
    }
  }
  return { plan, order, sourceCatalog, targetCatalog };
}

export function planProblemsError(plan: UpgradePlan): FitsfleetError {
  return new PreconditionError(
    [
      `the upgrade cannot start (${plan.problems.length} problem${plan.problems.length === 1 ? "" : "s"}); nothing was written:`,
      ...plan.problems.map((p) => `  - ${p}`),
    ].join("\n"),
    {
      suggestion:
        "resolve them in the mapping file (--mapping) or the table selection, then run `fitsfleet upgrade plan` to check",
      context: { problems: plan.problems },
    },
  );
}

interface Dropped {
  indexes: string[];
  foreignKeys: { table: string; name: string; definition: string }[];
}

async function dropForLoad(
  client: PgClient,
  tables: string[],
): Promise<Dropped> {
  const fks = await client.query<{
    table: string;
    name: string;
    definition: string;
  }>(
    `SELECT c.relname AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS definition
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND n.nspname = 'public' AND c.relname = ANY($1)
      ORDER BY c.relname, k.conname`,
    [tables],
  );
  const indexes = await client.query<{ name: string; definition: string }>(
    `SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relname = ANY($1)
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
      ORDER BY ic.relname`,
    [tables],
  );
  for (const fk of fks.rows) {
    await client.query(
      `ALTER TABLE ${quoteIdent(fk.table)} DROP CONSTRAINT ${quoteIdent(fk.name, "constraint name")}`,
    );
  }
  for (const index of indexes.rows) {
    await client.query(`DROP INDEX ${quoteIdent(index.name, "index name")}`);
  }
  return {
    indexes: indexes.rows.map((r) => r.definition),
    foreignKeys: fks.rows,
  };
}

/** Source field positions and target columns for a table's load. */
function loadShape(plan: TablePlan, sourceColumns: string[]) {
  const carried = plan.columns.filter(
    (c): c is ColumnPlan & { source: string } =>
      c.source !== undefined && (c.kind === "copy" || c.kind === "widen"),
  );
  const index = (name: string) => sourceColumns.indexOf(name);
  // Rows flow in source order; the direct path keeps only the carried fields.
  const ordered = [...carried].sort(
    (a, b) => index(a.source) - index(b.source),
  );
  return {
    fingerprint: ordered,
    digestFields: ordered.map((c) => index(c.source)),
  };
}

async function copyTable(
  client: PgClient,
  source: UpgradeSource,
  plan: TablePlan,
  sourceTypes: Map<string, string>,
  options: { freeze: boolean },
  onRows: (rows: number, bytes: number) => void,
): Promise<{ digest: string; rows: number; fingerprint: ColumnPlan[] }> {
  const rows = await source.rows(plan.source);
  const shape = loadShape(plan, rows.columns);
  let copySql: string;
  let stagedInsert: string | undefined;
  // When every source field is carried, rows pass through untouched and hash whole.
  const everyField =
    shape.digestFields.length === rows.columns.length &&
    shape.digestFields.every((f, i) => f === i);
  const pipe = new RowPipe({
    digestFields: everyField ? null : shape.digestFields,
    outputFields: plan.direct && !everyField ? shape.digestFields : null,
  });
  // FREEZE writes the rows already frozen (no later rewrite by vacuum); it needs the table emptied in this transaction.
  const freeze = options.freeze ? " WITH (FREEZE)" : "";
  if (plan.direct) {
    copySql = `COPY ${quoteIdent(plan.target)} (${shape.fingerprint.map((c) => quoteIdent(c.target, "column name")).join(", ")}) FROM STDIN${freeze}`;
  } else {
    const stage = quoteIdent(`fitsfleet_stage_${plan.target}`.slice(0, 63));
    const defs = rows.columns.map(
      (c) => `${quoteIdent(c, "column name")} ${sourceTypes.get(c) ?? "text"}`,
    );
    await client.query(
      `CREATE TEMPORARY TABLE ${stage} (${defs.join(", ")}) ON COMMIT DROP`,
    );
    copySql = `COPY ${stage} FROM STDIN`;
    const targets = plan.columns.filter(
      (c) => c.kind !== "default" && c.kind !== "null",
    );
    const values = targets.map((c) =>
      c.kind === "expr"
        ? `(${c.expr})::${c.targetType}`
        : c.kind === "cast"
          ? `${quoteIdent(c.source!, "column name")}::${c.targetType}`
          : quoteIdent(c.source!, "column name"),
    );
    stagedInsert = `INSERT INTO ${quoteIdent(plan.target)} (${targets.map((c) => quoteIdent(c.target, "column name")).join(", ")}) SELECT ${values.join(", ")} FROM ${stage}`;
  }
  let lastReport = 0;
  pipe.on("data", () => {
    const now = Date.now();
    if (now - lastReport > 250) {
      lastReport = now;
      onRows(pipe.digest.rows, pipe.digest.bytes);
    }
  });
  const sink = client.query(copyFrom(copySql));
  try {
    await Promise.all([pipeline(rows.stream, pipe, sink), rows.finished]);
  } catch (error) {
    throw (await rows.stop()) ?? error;
  }
  if (stagedInsert !== undefined) {
    await client.query(stagedInsert);
  }
  onRows(pipe.digest.rows, pipe.digest.bytes);
  return {
    digest: pipe.digest.value,
    rows: pipe.digest.rows,
    fingerprint: shape.fingerprint,
  };
}

/** The fingerprint of the carried columns as stored, rendered in their source types. */
async function targetFingerprint(
  client: PgClient,
  plan: TablePlan,
  columns: ColumnPlan[],
): Promise<string> {
  const select =
    columns.length === 0
      ? "SELECT 1"
      : `SELECT ${columns.map((c) => (c.kind === "widen" ? `${quoteIdent(c.target, "column name")}::${c.sourceType!}` : quoteIdent(c.target, "column name"))).join(", ")}`;
  const pipe = new RowPipe({
    digestFields: null,
    outputFields: null,
    discard: true,
  });
  const stream = client.query(
    copyTo(`COPY (${select} FROM ${quoteIdent(plan.target)}) TO STDOUT`),
  );
  await pipeline(
    stream,
    pipe,
    new Writable({
      write: (_chunk, _encoding, done) => done(),
    }),
  );
  return columns.length === 0 ? `${pipe.digest.rows}:-` : pipe.digest.value;
}

async function setSequences(
  client: PgClient,
  plan: TablePlan,
): Promise<SequenceReport[]> {
  const reports: SequenceReport[] = [];
  for (const s of plan.sequences) {
    const { rows } = await client.query<{ max: string | null }>(
      `SELECT max(${quoteIdent(s.column, "column name")})::text AS max FROM ${quoteIdent(plan.target)}`,
    );
    const maxId =
      rows[0]?.max === null || rows[0]?.max === undefined
        ? null
        : BigInt(rows[0].max);
    const setting = sequenceSetting(s.sourcePosition, maxId);
    await client.query("SELECT setval($1::regclass, $2::bigint, $3)", [
      s.sequence,
      setting.value.toString(),
      setting.isCalled,
    ]);
    const check = await client.query<{
      last_value: string;
      is_called: boolean;
    }>(`SELECT last_value::text, is_called FROM ${s.sequence}`);
    const last = BigInt(check.rows[0]!.last_value);
    const next = check.rows[0]!.is_called ? last + 1n : last;
    const ok = next > (maxId ?? 0n) && next > (s.sourcePosition ?? 0n);
    reports.push({
      column: s.column,
      sequence: s.sequence,
      sourceSequence: s.sourceSequence,
      sourcePosition: s.sourcePosition?.toString() ?? null,
      maxId: maxId?.toString() ?? null,
      setTo: setting.isCalled
        ? setting.value.toString()
        : `${setting.value} (not called)`,
      ok,
    });
  }
  return reports;
}

export interface MigrateOptions extends Omit<PlanInput, "target"> {
  targetUrl: string;
  truncateTarget?: boolean;
  onProgress?: (progress: TableProgress) => void;
  /** Called once the plan is known, before anything is written. */
  onPlan?: (plan: UpgradePlan) => void;
  /**
   * Called after planning, just before the transaction takes its locks: a
   * seam for tests to commit a row where a concurrent writer could.
   */
  beforeTransaction?: () => Promise<void>;
  /**
   * Inside the transaction, once the tables are locked and before they are
   * checked empty and loaded: for a caller whose own edits belong to the
   * same transaction (`summit seed-historic`).
   */
  beforeLoad?: (client: PgClient) => Promise<void>;
  /** Inside the transaction, after everything verified, just before COMMIT; a throw rolls it all back. */
  beforeCommit?: (client: PgClient) => Promise<void>;
}

export async function migrateTables(
  options: MigrateOptions,
): Promise<MigrateReport> {
  const started = Date.now();
  const client = await connect(options.targetUrl, {
    applicationName: "fitsfleet upgrade (target)",
  });
  try {
    const phases = { plan: 0, copy: 0, indexes: 0, foreignKeys: 0, verify: 0 };
    let mark = Date.now();
    const lap = (phase: keyof typeof phases) => {
      const now = Date.now();
      phases[phase] += (now - mark) / 1000;
      mark = now;
    };
    const prepared = await preparePlan({ ...options, target: client });
    const { plan } = prepared;
    options.onPlan?.(plan);
    if (plan.problems.length > 0) {
      throw planProblemsError(plan);
    }
    const tables = plan.tables.map((t) => t.target);
    /** What was under way, for the message when something fails. */
    let doing = "starting the transaction";
    await options.beforeTransaction?.();
    for (const setting of COPY_SETTINGS) {
      await client.query(setting);
    }
    await client.query("BEGIN");
    try {
      const { rows: lock } = await client.query<{ ok: boolean }>(
        "SELECT pg_try_advisory_xact_lock($1::bigint) AS ok",
        [MIGRATE_TABLES_LOCK_KEY],
      );
      if (lock[0]?.ok !== true) {
        throw new PreconditionError(
          "another `upgrade migrate-tables` is running against this database",
          { suggestion: "wait for it to finish, then run again" },
        );
      }
      // The emptiness check only means something while no one can write: a
      // row committed after it would be wiped by the TRUNCATE below. ACCESS
      // EXCLUSIVE is what TRUNCATE takes anyway; taking it first, before the
      // check, avoids upgrading a weaker lock later (a deadlock with readers).
      // LOCK waits for writers in flight, and the check after it sees their rows.
      doing = "waiting for the locks on the target tables";
      await client.query(
        `LOCK TABLE ${tables.map((t) => quoteIdent(t)).join(", ")} IN ACCESS EXCLUSIVE MODE`,
      );
      if (options.beforeLoad !== undefined) {
        doing = "preparing the target";
        await options.beforeLoad(client);
      }
      doing = "checking the target tables are empty";
      await checkEmpty(client, tables, options.truncateTarget === true);
      // Emptying the (empty, or to be replaced) tables here lets COPY write frozen rows.
      const freeze = await truncateTables(
        client,
        tables,
        options.truncateTarget === true,
      );
      // Sorting for index builds and foreign-key checks in memory rather than in temp files.
      await client.query("SET LOCAL maintenance_work_mem = '512MB'");
      await client.query("SET LOCAL work_mem = '128MB'");
      const expected = new Map<string, number | null>();
      for (const t of plan.tables) {
        const positions = t.sequences
          .map((s) => s.sourcePosition)
          .filter((p): p is bigint => p !== null);
        expected.set(
          t.target,
          options.source.kind === "database"
            ? await options.source.count(t.source)
            : positions.length > 0
              ? Number(positions[0])
              : null,
        );
      }
      const big = plan.tables
        .filter(
          (t) =>
            (expected.get(t.target) ?? Infinity) >= REBUILD_INDEXES_FROM_ROWS,
        )
        .map((t) => t.target);
      const dropped = await dropForLoad(client, big);
      lap("plan");
      const reports: TableReport[] = [];
      for (const t of plan.tables) {
        doing = `copying ${t.source} into ${t.target}`;
        const tableStarted = Date.now();
        const sourceTable = prepared.sourceCatalog.tables.get(t.source)!;
        const types = t.direct
          ? new Map<string, string>()
          : await stageTypes(client, sourceTable.columns);
        const result = await copyTable(
          client,
          options.source,
          t,
          types,
          { freeze },
          (rows, bytes) =>
            options.onProgress?.({
              table: t.target,
              phase: "copy",
              rows,
              bytes,
              expectedRows: expected.get(t.target) ?? null,
            }),
        );
        reports.push({
          table: t.target,
          source: t.source,
          rows: result.rows,
          targetRows: 0,
          fingerprintColumns: result.fingerprint.map((c) => c.target),
          sourceFingerprint: result.digest,
          targetFingerprint: "",
          sequences: [],
          indexesRebuilt: 0,
          ok: false,
          seconds: (Date.now() - tableStarted) / 1000,
          verifySeconds: 0,
        });
      }
      lap("copy");
      // Secondary indexes come back in bulk (parallel workers), then the foreign keys validate in one pass each.
      doing = "rebuilding indexes";
      for (const definition of dropped.indexes) {
        await client.query(definition);
      }
      doing = "validating foreign keys";
      lap("indexes");
      for (const fk of dropped.foreignKeys) {
        await client.query(
          `ALTER TABLE ${quoteIdent(fk.table)} ADD CONSTRAINT ${quoteIdent(fk.name, "constraint name")} ${fk.definition}`,
        );
      }
      lap("foreignKeys");
      for (const report of reports) {
        const t = plan.tables.find((p) => p.target === report.table)!;
        report.indexesRebuilt = dropped.indexes.filter((d) =>
          d.includes(` ON public.${report.table} `),
        ).length;
        doing = `verifying ${report.table}`;
        const verifyStarted = Date.now();
        options.onProgress?.({
          table: t.target,
          phase: "verify",
          rows: report.rows,
          bytes: 0,
          expectedRows: report.rows,
        });
        const { rows: count } = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${quoteIdent(t.target)}`,
        );
        report.targetRows = Number(count[0]!.n);
        report.targetFingerprint = await targetFingerprint(
          client,
          t,
          t.columns.filter((c) => report.fingerprintColumns.includes(c.target)),
        );
        if (report.fingerprintColumns.length === 0) {
          report.sourceFingerprint = `${report.rows}:-`;
        }
        report.sequences = await setSequences(client, t);
        report.ok =
          report.targetRows === report.rows &&
          report.targetFingerprint === report.sourceFingerprint &&
          report.sequences.every((s) => s.ok);
        report.verifySeconds = (Date.now() - verifyStarted) / 1000;
        options.onProgress?.({
          table: t.target,
          phase: "done",
          rows: report.rows,
          bytes: 0,
          expectedRows: report.rows,
        });
      }
      lap("verify");
      const ok = reports.every((r) => r.ok);
      if (!ok) {
        await client.query("ROLLBACK");
        throw new VerificationError({
          source: options.source.origin,
          tables: reports,
          ok,
          seconds: (Date.now() - started) / 1000,
          phases,
        });
      }
      if (options.beforeCommit !== undefined) {
        doing = "finishing the load";
        await options.beforeCommit(client);
      }
      await client.query("COMMIT");
      return {
        source: options.source.origin,
        tables: reports,
        ok,
        seconds: (Date.now() - started) / 1000,
        phases,
      };
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw failedWhile(doing, error);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Any failure inside the transaction, said in the operator's terms; the target is untouched. */
function failedWhile(doing: string, error: unknown): FitsfleetError {
  if (error instanceof FitsfleetError) {
    return error;
  }
  const message = (error as Error).message;
  const code = (error as { code?: string }).code;
  const lost =
    code === "57P01" ||
    code === "57P02" ||
    code === "57P03" ||
    code === "ECONNRESET" ||
    /Connection terminated|connection.*(closed|lost)/i.test(message);
  const text = `${lost ? "lost the connection to the target database" : "failed"} while ${doing}: ${message}; the transaction was rolled back and the target is unchanged`;
  return lost
    ? new ExternalServiceError("postgres", text, {
        cause: error,
        suggestion:
          "check the target server is up and reachable, then run the same command again",
      })
    : new FitsfleetError("upgrade-failed", EXIT.failed, text, {
        cause: error,
        suggestion:
          "fix the cause above and run again; `upgrade plan` shows what will be copied",
      });
}

/** Source column types the target knows; anything else (a dropped enum, say) stages as text. */
async function stageTypes(
  client: PgClient,
  columns: { name: string; type: string }[],
): Promise<Map<string, string>> {
  const types = new Map<string, string>();
  for (const c of columns) {
    const { rows } = await client.query<{ t: string | null }>(
      "SELECT to_regtype($1)::text AS t",
      [c.type],
    );
    types.set(c.name, rows[0]?.t ?? "text");
  }
  return types;
}

/**
 * TRUNCATE needs every table that references a truncated one in the same
 * statement. Such tables outside the selection (usagelog_analysis, say) are
 * included only when they are empty; otherwise their rows would go too.
 */
async function truncateTables(
  client: PgClient,
  tables: string[],
  required: boolean,
): Promise<boolean> {
  const all = new Set(tables);
  for (;;) {
    const { rows } = await client.query<{ child: string; parent: string }>(
      `SELECT DISTINCT c.relname AS child, p.relname AS parent
         FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid
         JOIN pg_class p ON p.oid = k.confrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE k.contype = 'f' AND n.nspname = 'public'
          AND p.relname = ANY($1) AND NOT c.relname = ANY($1)`,
      [[...all]],
    );
    if (rows.length === 0) {
      break;
    }
    const blocking: string[] = [];
    // Locked before they are looked at, for the same reason as the selected tables.
    await client.query(
      `LOCK TABLE ${[...new Set(rows.map((r) => r.child))].map((t) => quoteIdent(t)).join(", ")} IN ACCESS EXCLUSIVE MODE`,
    );
    for (const { child, parent } of rows) {
      const { rows: any } = await client.query(
        `SELECT 1 FROM ${quoteIdent(child)} LIMIT 1`,
      );
      if (any.length > 0) {
        blocking.push(`${child} (it references ${parent})`);
      }
      all.add(child);
    }
    if (blocking.length > 0 && !required) {
      return false; // only an optimisation here; leave those tables alone
    }
    if (blocking.length > 0) {
      throw new PreconditionError(
        `--truncate-target would also empty ${blocking.join(", ")}, which is not being migrated and holds rows; nothing was written`,
        {
          suggestion:
            "empty or drop those rows yourself first, or add the table to the migration with --table",
        },
      );
    }
  }
  await client.query(
    `TRUNCATE ${[...all].map((t) => quoteIdent(t)).join(", ")}`,
  );
  return true;
}

async function checkEmpty(
  client: PgClient,
  tables: string[],
  truncate: boolean,
): Promise<void> {
  if (truncate) {
    return;
  }
  const full: string[] = [];
  for (const t of tables) {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT 1 FROM ${quoteIdent(t)} LIMIT 1000001) AS x`,
    );
    const n = Number(rows[0]!.n);
    if (n > 0) {
      full.push(`${t} (${n > 1_000_000 ? "over 1,000,000" : n} rows)`);
    }
  }
  if (full.length > 0) {
    throw new PreconditionError(
      `the target tables are not empty: ${full.join(", ")}; nothing was written`,
      {
        suggestion:
          "migrate into a fresh database made by `fitsfleet db init`, or give --truncate-target to replace those rows (in the same transaction)",
      },
    );
  }
}

export class VerificationError extends FitsfleetError {
  constructor(readonly report: MigrateReport) {
    const bad = report.tables.filter((t) => !t.ok);
    super(
      "verification",
      1,
      [
        `verification failed for ${bad.length} table(s); everything was rolled back:`,
        ...bad.map(
          (t) =>
            `  - ${t.table}: ${t.rows} rows read, ${t.targetRows} stored; fingerprint ${t.sourceFingerprint} vs ${t.targetFingerprint}${t.sequences.some((s) => !s.ok) ? "; a sequence is behind" : ""}`,
        ),
      ].join("\n"),
      {
        suggestion:
          "this points at a damaged source or a bug; keep the source and rerun with --log-level debug",
        context: { tables: bad.map((t) => t.table) },
      },
    );
  }
}
