import { Command } from "commander";

export function terminateCommand(): Command {
  return new Command("terminate").description("(being built)");
}
