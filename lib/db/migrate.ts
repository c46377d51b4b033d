/**
 * Schema migrations: numbered, append-only SQL files in `migrations/`, recorded
 * in the ledger table `fitsfleet.schema_migrations`.
 *
 * ## Atomicity
 * All pending migrations are applied in one transaction: either the database
 * moves to the newest version or it stays exactly as it was. A file whose first
 * line is `--! no-transaction` (for statements such as CREATE INDEX
 * CONCURRENTLY) must hold one statement; it runs on its own, after the
 * transactional batch before it has committed.
 *
 * ## Isolation
 * Concurrent runs (two operators, or many workers starting at once) serialise
 * on a transaction-level advisory lock, so each migration is applied once.
 *
 * ## Safety
 * A ledger that names a version this build does not know means the database is
 * newer than the code: we refuse (exit 5). A ledger whose checksum for a file
 * differs from the file means someone edited an applied migration: we refuse.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import {
  EXIT,
  FitsfleetError,
  PreconditionError,
  SchemaNewerThanCodeError,
} from "../errors.js";
import type { Logger } from "../logger.js";
import { migrationsDir } from "../paths.js";
import type { PgClient } from "./connect.js";
import { MIGRATION_LOCK_KEY } from "./locks.js";

export const OWN_SCHEMA = "fitsfleet";
const NO_TRANSACTION = /^--!\s*no-transaction\s*$/;
const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  file: string;
  sql: string;
  sha256: string;
  transactional: boolean;
}

export interface MigrationStatus {
  version: number;
  name: string;
  state: "applied" | "pending";
  appliedAt: Date | undefined;
}

export interface StatusReport {
  migrations: MigrationStatus[];
  current: number;
  latest: number;
  pending: number;
}

export interface RunReport {
  applied: Migration[];
  /** The newest version in the ledger afterwards. */
  current: number;
  dryRun: boolean;
}

/** Reads and validates `migrations/NNNN_name.sql`: numbered from 1, no gaps, no duplicates. */
export function loadMigrations(dir: string = migrationsDir()): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_NAME.exec(file);
    if (match === null) {
      throw new FitsfleetError(
        "bad-migration",
        EXIT.failed,
        `migration file ${file} is not named NNNN_name.sql`,
      );
    }
    const version = Number(match[1]);
    if (version !== migrations.length + 1) {
      throw new FitsfleetError(
        "bad-migration",
        EXIT.failed,
        `migration ${file}: expected version ${String(migrations.length + 1).padStart(4, "0")}; versions must run from 0001 without gaps`,
      );
    }
    const sql = readFileSync(join(dir, file), "utf8");
    migrations.push({
      version,
      name: match[2] ?? "",
      file,
      sql,
      sha256: createHash("sha256").update(sql).digest("hex"),
      transactional: !NO_TRANSACTION.test(sql.split("\n", 1)[0] ?? ""),
    });
  }
  return migrations;
}

interface LedgerRow {
  version: number;
  name: string;
  sha256: string;
  applied_at: Date;
}

async function readLedger(client: PgClient): Promise<LedgerRow[] | undefined> {
  const { rows } = await client.query<{ exists: boolean }>(
    "SELECT to_regclass('fitsfleet.schema_migrations') IS NOT NULL AS exists",
  );
  if (rows[0]?.exists !== true) {
    return undefined;
  }
  const ledger = await client.query<LedgerRow>(
    "SELECT version, name, sha256, applied_at FROM fitsfleet.schema_migrations ORDER BY version",
  );
  return ledger.rows;
}

/** Throws unless the ledger is a prefix of `migrations` with matching checksums. */
function checkLedger(ledger: LedgerRow[], migrations: Migration[]): void {
  const latest = migrations.length;
  const newer = ledger.filter((row) => row.version > latest);
  if (newer.length > 0) {
    throw new SchemaNewerThanCodeError(
      `the database is at schema version ${Math.max(...newer.map((r) => r.version))} but this fitsfleet only knows versions up to ${latest} (${newer.map((r) => `${r.version}_${r.name}`).join(", ")})`,
    );
  }
  for (const row of ledger) {
    const migration = migrations[row.version - 1];
    if (migration !== undefined && migration.sha256 !== row.sha256) {
      throw new PreconditionError(
        `migration ${migration.file} differs from the one applied to this database on ${row.applied_at.toISOString()}`,
        {
          suggestion:
            "migrations are append-only: restore the original file and put the change in a new numbered migration",
        },
      );
    }
  }
  ledger.forEach((row, index) => {
    if (row.version !== index + 1) {
      throw new PreconditionError(
        `the migration ledger has a gap before version ${row.version}; the database was changed outside fitsfleet`,
      );
    }
  });
}

export async function migrationStatus(
  client: PgClient,
  migrations: Migration[] = loadMigrations(),
): Promise<StatusReport> {
  const ledger = (await readLedger(client)) ?? [];
  checkLedger(ledger, migrations);
  const applied = new Map(ledger.map((row) => [row.version, row]));
  const list = migrations.map((m): MigrationStatus => {
    const row = applied.get(m.version);
    return {
      version: m.version,
      name: m.name,
      state: row === undefined ? "pending" : "applied",
      appliedAt: row?.applied_at,
    };
  });
  return {
    migrations: list,
    current: ledger.length,
    latest: migrations.length,
    pending: migrations.length - ledger.length,
  };
}

export interface RunOptions {
  dryRun?: boolean;
  logger?: Logger;
}

export async function runMigrations(
  client: PgClient,
  migrations: Migration[] = loadMigrations(),
  options: RunOptions = {},
): Promise<RunReport> {
  if (options.dryRun === true) {
    const ledger = (await readLedger(client)) ?? [];
    checkLedger(ledger, migrations);
    if (ledger.length === 0) {
      await refuseForeignTables(client);
    }
    return {
      applied: migrations.slice(ledger.length),
      current: ledger.length,
      dryRun: true,
    };
  }
  const applied: Migration[] = [];
  // Each pass applies the transactional run of pending migrations up to the next
  // no-transaction one, then that one alone.
  for (;;) {
    const step = await applyNextBatch(client, migrations, options.logger);
    applied.push(...step.applied);
    if (step.applied.length === 0 || step.current === migrations.length) {
      return { applied, current: step.current, dryRun: false };
    }
  }
}

async function applyNextBatch(
  client: PgClient,
  migrations: Migration[],
  logger: Logger | undefined,
): Promise<{ applied: Migration[]; current: number }> {
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [
      MIGRATION_LOCK_KEY,
    ]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${OWN_SCHEMA}`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS fitsfleet.schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        sha256 text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const ledger = (await readLedger(client)) ?? [];
    checkLedger(ledger, migrations);
    if (ledger.length === 0) {
      await refuseForeignTables(client);
    }
    const pending = migrations.slice(ledger.length);
    const batch: Migration[] = [];
    for (const migration of pending) {
      if (!migration.transactional) {
        break;
      }
      batch.push(migration);
    }
    for (const migration of batch) {
      await applyOne(client, migration, logger);
    }
    await client.query("COMMIT");
    const next = pending[batch.length];
    if (batch.length > 0 || next === undefined) {
      return { applied: batch, current: ledger.length + batch.length };
    }
    await applyAlone(client, next, logger);
    return { applied: [next], current: ledger.length + 1 };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/**
 * A database with tables in public but no ledger was not made by fitsfleet:
 * most likely --database-url points at the live archive or an old restore.
 */
async function refuseForeignTables(client: PgClient): Promise<void> {
  const { rows } = await client.query<{ name: string }>(
    "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
  );
  if (rows.length > 0) {
    const names = rows.slice(0, 5).map((r) => r.name);
    throw new PreconditionError(
      `the database already holds ${rows.length} table(s) in schema public (${names.join(", ")}${rows.length > 5 ? ", …" : ""}) but no fitsfleet migration ledger; nothing was changed`,
      {
        suggestion:
          "db init builds a new archive database: point --database-url at an empty database (is this the live archive?)",
      },
    );
  }
}

async function applyOne(
  client: PgClient,
  migration: Migration,
  logger: Logger | undefined,
): Promise<void> {
  logger?.info("applying migration", { migration: migration.file });
  // Archive tables are unqualified in the SQL files and belong in public.
  await client.query("SET LOCAL search_path TO public");
  try {
    await client.query(migration.sql);
  } catch (error) {
    throw migrationFailed(migration, error);
  }
  await client.query(
    "INSERT INTO fitsfleet.schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
    [migration.version, migration.name, migration.sha256],
  );
}

/** A no-transaction migration: one statement under a session-level lock. */
async function applyAlone(
  client: PgClient,
  migration: Migration,
  logger: Logger | undefined,
): Promise<void> {
  logger?.info("applying migration outside a transaction", {
    migration: migration.file,
  });
  await client.query("SELECT pg_advisory_lock($1::bigint)", [
    MIGRATION_LOCK_KEY,
  ]);
  try {
    const ledger = (await readLedger(client)) ?? [];
    if (ledger.length >= migration.version) {
      return; // another runner applied it while we waited
    }
    await client.query("SET search_path TO public");
    try {
      await client.query(migration.sql);
    } catch (error) {
      throw migrationFailed(migration, error);
    } finally {
      await client.query("RESET search_path");
    }
    await client.query(
      "INSERT INTO fitsfleet.schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
      [migration.version, migration.name, migration.sha256],
    );
  } finally {
    await client.query("SELECT pg_advisory_unlock($1::bigint)", [
      MIGRATION_LOCK_KEY,
    ]);
  }
}

function migrationFailed(migration: Migration, error: unknown): FitsfleetError {
  const e = error as { message?: string; position?: string };
  let where = "";
  if (e.position !== undefined) {
    const line = migration.sql.slice(0, Number(e.position)).split("\n").length;
    where = ` (line ${line})`;
  }
  return new PreconditionError(
    `migration ${migration.file} failed${where}: ${e.message ?? String(error)}`,
    {
      cause: error,
      suggestion: migration.transactional
        ? "nothing was changed. `db init` needs an empty database or one that fitsfleet initialised"
        : "this migration runs outside a transaction; check the database state before retrying",
    },
  );
}
