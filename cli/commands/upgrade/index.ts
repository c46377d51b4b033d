import { Command } from "commander";

import { manifestCommand } from "./manifest.js";
import { migrateTablesCommand } from "./migrate-tables.js";
import { planCommand } from "./plan.js";

export function upgradeCommand(): Command {
  return new Command("upgrade")
    .description(
      "carry the preserved tables (users, logs, QA metrics) and their sequences from a previous version into a fresh schema",
    )
    .addCommand(planCommand())
    .addCommand(migrateTablesCommand())
    .addCommand(manifestCommand());
}
