import { Command } from "commander";

import { calcacheCommand } from "./calcache.js";
import { dashboardCommand } from "./dashboard.js";
import { enqueueCommand } from "./enqueue.js";
import { failuresCommand } from "./failures.js";
import { launchFleetCommand } from "./launch-fleet.js";
import { planCommand } from "./plan.js";
import { reconcileCommand, retryFailedCommand } from "./requeue.js";
import { runCommand } from "./run.js";
import { runsCommand } from "./runs.js";
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
    .addCommand(planCommand())
    .addCommand(runCommand())
    .addCommand(runsCommand())
    .addCommand(calcacheCommand())
    .addCommand(dashboardCommand());
}
