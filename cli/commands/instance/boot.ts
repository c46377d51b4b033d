import { Command } from "commander";

export function bootCommand(): Command {
  return new Command("boot").description("(being built)");
}
