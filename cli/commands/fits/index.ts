import { Command } from "commander";

import { inspectCommand } from "./inspect.js";

export function fitsCommand(): Command {
  return new Command("fits")
    .description("read FITS files as the ingest does")
    .addCommand(inspectCommand());
}
