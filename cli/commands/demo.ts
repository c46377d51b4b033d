import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { Command } from "commander";

import { withClient } from "../../lib/db/connect.js";
import type { Logger } from "../../lib/logger.js";
import { packageRoot } from "../../lib/paths.js";
import { stackUp, stackUrls } from "../../lib/stack/index.js";
import { writeManifest } from "../../lib/upgrade/manifest.js";
import {
  createPreviousVersionDatabase,
  dumpDatabase,
} from "../../lib/upgrade/previous-version.js";
import { commandContext } from "../context.js";
import {
  describeInit,
  initDatabase,
  type InitDatabaseResult,
} from "./db/init.js";
import {
  type DatabaseStatus,
  databaseStatus,
  describeStatus,
} from "./db/status.js";
import { describeStack, type StackReport, stackReport } from "./stack/up.js";
import {
  describeMigration,
  type MigrateTablesResult,
  runMigrateTables,
} from "./upgrade/migrate-tables.js";

export interface DemoResult {
  stack: StackReport;
  init: InitDatabaseResult;
  status: DatabaseStatus;
  upgrade: MigrateTablesResult;
}

const DEMO_PREVIOUS = "demo_previous_version";

/**
 * A previous-version (v2) archive database with realistic preserved tables,
 * made afresh on the stack and dumped with a manifest, as an operator's
 * backup would be.
 */
async function previousVersionDump(
  stackDir: string,
  adminUrl: string,
): Promise<string> {
  await withClient(adminUrl, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${DEMO_PREVIOUS} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${DEMO_PREVIOUS}`);
  });
  const url = new URL(adminUrl);
  url.pathname = `/${DEMO_PREVIOUS}`;
  await withClient(url.toString(), (c) =>
    createPreviousVersionDatabase(c, { usagelogRows: 20_000 }),
  );
  const dir = join(stackDir, "demo");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const dump = join(dir, "previous-version.dump");
  await dumpDatabase(url.toString(), dump, "custom");
  await writeManifest(dump);
  return dump;
}

/**
 * The README's main command. So far: bring up the embedded stack, create the
 * archive schema in it, and carry a generated previous version's users, logs
 * and QA metrics over from its dump. Later stages (enqueue, ingest workers,
 * calibration cache) join as they land.
 */
export async function runDemo(
  stackDir: string,
  logger: Logger,
): Promise<DemoResult> {
  const { state, created, started } = await stackUp(stackDir, { logger });
  const urls = stackUrls(state);
  const url = urls.databaseUrl;
  const init = await initDatabase(url, { logger });
  const status = await databaseStatus(url);
  const dump = await previousVersionDump(stackDir, urls.adminUrl);
  // The demo replaces its own earlier rows, so it can run again and again.
  const upgrade = await runMigrateTables(
    {
      from: dump,
      preset: ["archive,summit"],
      table: [],
      excludeTable: [],
      mapping: join(packageRoot(), "mappings", "fitsstorage-v2-to-v3.json"),
    },
    url,
    { logger, truncateTarget: true },
  );
  return {
    stack: stackReport(stackDir, { created, started }),
    init,
    status,
    upgrade,
  };
}

function describeDemo(result: DemoResult): string {
  return [
    "== embedded stack",
    describeStack(result.stack),
    "",
    "== db init",
    describeInit(result.init),
    "",
    "== db status",
    describeStatus(result.status),
    "",
    "== upgrade migrate-tables (a generated v2 archive's dump, mapped by mappings/fitsstorage-v2-to-v3.json)",
    describeMigration(result.upgrade),
  ].join("\n");
}

export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "run the toolkit end to end on the embedded local stack (so far: stack up, db init, upgrade migrate-tables from a generated previous-version dump)",
    )
    .action(async (_options: unknown, command: Command) => {
      const { config, logger, output } = commandContext(command);
      output.result(await runDemo(config.stackDir, logger), describeDemo);
    });
}
