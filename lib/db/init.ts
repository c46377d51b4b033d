/**
 * `db init` and `db status` as library functions, for the CLI and for a
 * coordinator alike: bring a database's schema to this build's newest
 * version, and read where it stands.
 */
import type { Logger } from "../logger.js";
import { redactUrl } from "../redact.js";
import { withClient } from "./connect.js";
import {
  loadMigrations,
  migrationStatus,
  runMigrations,
  type StatusReport,
} from "./migrate.js";

export interface InitDatabaseOptions {
  dryRun?: boolean;
  logger?: Logger;
}

export interface InitDatabaseResult {
  database: string;
  dryRun: boolean;
  applied: { version: number; name: string; sql?: string }[];
  version: number;
  latest: number;
  seconds: number;
}

/** Brings the database's schema to the newest version this build knows. */
export async function initDatabase(
  url: string,
  options: InitDatabaseOptions = {},
): Promise<InitDatabaseResult> {
  const started = performance.now();
  const migrations = loadMigrations();
  const report = await withClient(url, (client) =>
    runMigrations(client, migrations, {
      dryRun: options.dryRun === true,
      logger: options.logger,
    }),
  );
  return {
    database: redactUrl(url),
    dryRun: report.dryRun,
    applied: report.applied.map((m) => ({
      version: m.version,
      name: m.name,
      ...(report.dryRun ? { sql: m.sql } : {}),
    })),
    version: report.current,
    latest: migrations.length,
    seconds: (performance.now() - started) / 1000,
  };
}

export interface DatabaseStatus extends StatusReport {
  database: string;
}

export async function databaseStatus(url: string): Promise<DatabaseStatus> {
  const report = await withClient(url, (client) => migrationStatus(client));
  return { database: redactUrl(url), ...report };
}
