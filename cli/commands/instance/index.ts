/**
 * `fitsfleet instance`: what runs on a fleet's instance (the image's boot
 * command). Operators do not run it by hand.
 */
import { Command } from "commander";

import { bootCommand } from "./boot.js";

export function instanceCommand(): Command {
  return new Command("instance")
    .description(
      "what a fleet instance runs at boot (from the baked image); not for operators",
    )
    .addCommand(bootCommand());
}
