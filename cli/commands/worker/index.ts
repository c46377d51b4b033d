import { Command } from "commander";

import { calcacheCommand } from "./calcache.js";
import { ingestCommand } from "./ingest.js";
import { previewCommand } from "./preview.js";

export function workerCommand(): Command {
  return new Command("worker")
    .description("long-running workers that take work from the queue")
    .addCommand(ingestCommand())
    .addCommand(previewCommand())
    .addCommand(calcacheCommand());
}
