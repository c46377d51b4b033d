import { Command } from "commander";

export function secretsCommand(): Command {
  return new Command("secrets").description("(being built)");
}
