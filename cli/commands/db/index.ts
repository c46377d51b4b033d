import { Command } from "commander";

import { diffCommand } from "./diff.js";
import { initCommand } from "./init.js";
import { statusCommand } from "./status.js";

export function dbCommand(): Command {
  return new Command("db")
    .description("create, check and compare the archive database schema")
    .addCommand(initCommand())
    .addCommand(statusCommand())
    .addCommand(diffCommand());
}
