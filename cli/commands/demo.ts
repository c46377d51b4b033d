import { Command } from "commander";

import type { Logger } from "../../lib/logger.js";
import { stackUp, stackUrls } from "../../lib/stack/index.js";
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

export interface DemoResult {
  stack: StackReport;
  init: InitDatabaseResult;
  status: DatabaseStatus;
}

/**
 * The README's main command. So far: bring up the embedded stack, create the
 * archive schema in it, and show the schema status. Later stages (enqueue,
 * ingest workers, calibration cache) join as they land.
 */
export async function runDemo(
  stackDir: string,
  logger?: Logger,
): Promise<DemoResult> {
  const { state, created, started } = await stackUp(stackDir, { logger });
  const url = stackUrls(state).databaseUrl;
  const init = await initDatabase(url, { logger });
  const status = await databaseStatus(url);
  return { stack: stackReport(stackDir, { created, started }), init, status };
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
  ].join("\n");
}

export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "run the toolkit end to end on the embedded local stack (so far: stack up, db init, db status)",
    )
    .action(async (_options: unknown, command: Command) => {
      const { config, logger, output } = commandContext(command);
      output.result(await runDemo(config.stackDir, logger), describeDemo);
    });
}
