import { Command } from "commander";

export function sweepCommand(): Command {
  return new Command("sweep").description("(being built)");
}
