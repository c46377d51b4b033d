import { Command } from "commander";

import { calcacheCommand } from "./calcache.js";
import { enqueueCommand } from "./enqueue.js";
import { failuresCommand } from "./failures.js";
import { launchFleetCommand } from "./launch-fleet.js";
import { reconcileCommand, retryFailedCommand } from "./requeue.js";
import { statusCommand } from "./status.js";

export function rebuildCommand(): Command {
  return new Command("rebuild")
    .description(
      "re-create file, diskfile, header and instrument rows from the archive's files: enqueue, watch, repair",
    )
    .addCommand(enqueueCommand())
    .addCommand(statusCommand())
    .addCommand(failuresCommand())
    .addCommand(retryFailedCommand())
    .addCommand(reconcileCommand())
    .addCommand(launchFleetCommand())
    .addCommand(calcacheCommand());
}
