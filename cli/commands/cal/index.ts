import { Command } from "commander";

import { showCommand } from "./show.js";

export function calCommand(): Command {
  return new Command("cal")
    .description(
      "the calibration cache: which calibrations go with a frame (cal show)",
    )
    .addCommand(showCommand());
}
