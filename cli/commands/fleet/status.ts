import { Command } from "commander";

export function statusCommand(): Command {
  return new Command("status").description("(being built)");
}
