import type { Command } from "commander";

import { initDatabase, type InitDatabaseResult } from "../../../lib/db/init.js";
import { databaseUrl } from "../../../lib/endpoints.js";
import { commandContext } from "../../context.js";

export function describeInit(result: InitDatabaseResult): string {
  const lines = [`database ${result.database}`];
  if (result.dryRun) {
    if (result.applied.length === 0) {
      lines.push(
        `schema is at version ${result.version}, the latest; nothing would be applied`,
      );
    } else {
      lines.push(
        `would apply ${result.applied.length} migration(s) in one transaction:`,
      );
      for (const m of result.applied) {
        lines.push(
          "",
          `-- ${String(m.version).padStart(4, "0")}_${m.name}.sql`,
          (m.sql ?? "").trimEnd(),
        );
      }
    }
    return lines.join("\n");
  }
  if (result.applied.length === 0) {
    lines.push(
      `schema is at version ${result.version}, the latest; nothing to do`,
    );
  } else {
    lines.push(
      `applied ${result.applied.length} migration(s) in ${result.seconds.toFixed(2)} s:`,
    );
    lines.push(
      ...result.applied.map(
        (m) => `  ${String(m.version).padStart(4, "0")} ${m.name}`,
      ),
    );
    lines.push(
      `schema is now at version ${result.version} of ${result.latest}`,
    );
  }
  return lines.join("\n");
}

export interface InitFlags {
  dryRun?: boolean;
}

/** `db init`'s action (cli/commands/db/index.ts loads this module for it). */
export async function initAction(
  flags: InitFlags,
  command: Command,
): Promise<void> {
  const { config, logger, output } = commandContext(command);
  const result = await initDatabase(databaseUrl(config, logger), {
    dryRun: flags.dryRun,
    logger,
  });
  output.result(result, describeInit);
}
