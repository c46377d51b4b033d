import { Command } from "commander";

import { seedHistoricCommand } from "./seed-historic.js";

export function summitCommand(): Command {
  return new Command("summit")
    .description(
      "a summit server's database: seed it from an archive backup (seed-historic)",
    )
    .addCommand(seedHistoricCommand());
}
