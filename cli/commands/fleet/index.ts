/**
 * `fitsfleet fleet`: the spot fleet's secrets, its state, and its end.
 * (`rebuild launch-fleet` starts one.)
 */
import { Command } from "commander";

import { secretsCommand } from "./secrets.js";
import { statusCommand } from "./status.js";
import { sweepCommand } from "./sweep.js";
import { terminateCommand } from "./terminate.js";
import { watchCommand } from "./watch.js";

export function fleetCommand(): Command {
  return new Command("fleet")
    .description(
      "a spot fleet's secrets, status and end: secrets put, status, watch, terminate, sweep",
    )
    .addCommand(secretsCommand())
    .addCommand(statusCommand())
    .addCommand(watchCommand())
    .addCommand(terminateCommand())
    .addCommand(sweepCommand());
}
