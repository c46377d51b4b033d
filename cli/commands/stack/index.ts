import { Command } from "commander";

import { downCommand } from "./down.js";
import { statusCommand } from "./status.js";
import { upCommand } from "./up.js";

export function stackCommand(): Command {
  return new Command("stack")
    .description(
      "run a throwaway PostgreSQL and Redis on this machine (the embedded local stack)",
    )
    .addCommand(upCommand())
    .addCommand(statusCommand())
    .addCommand(downCommand());
}
