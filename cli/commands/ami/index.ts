/**
 * `fitsfleet ami`: the worker image the fleet's instances boot (ami/):
 * bake one, list them, prune old ones, sweep what killed bakes left.
 */
import { Command } from "commander";

import { bakeCommand } from "./bake.js";
import { listCommand } from "./list.js";
import { pruneCommand } from "./prune.js";
import { sweepCommand } from "./sweep.js";

export function amiCommand(): Command {
  return new Command("ami")
    .description(
      "the worker image fleet instances boot: bake one (no secret in it), list them, prune old ones, sweep what killed bakes left",
    )
    .addCommand(bakeCommand())
    .addCommand(listCommand())
    .addCommand(pruneCommand())
    .addCommand(sweepCommand());
}
