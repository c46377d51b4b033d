/**
 * The `db` commands' names, options and help. Each action imports its module
 * (and with it pg) only when it runs, so that `db --help` and a subcommand's
 * `--help` stay fast (cli/program.ts, start-up).
 */
import { Command } from "commander";

import type { DiffFlags } from "./diff.js";
import type { InitFlags } from "./init.js";
import type { StatusFlags } from "./status.js";

export function dbCommand(): Command {
  return new Command("db")
    .description("create, check and compare the archive database schema")
    .addCommand(
      new Command("init")
        .description(
          "create or update the archive schema (idempotent; one transaction)",
        )
        .option(
          "--dry-run",
          "print the SQL that would be applied, change nothing",
        )
        .action(async (flags: InitFlags, command: Command) =>
          (await import("./init.js")).initAction(flags, command),
        ),
    )
    .addCommand(
      new Command("status")
        .description(
          "show applied and pending migrations (exit 3 with --check when any is pending)",
        )
        .option("--check", "exit with code 3 when migrations are pending")
        .action(async (flags: StatusFlags, command: Command) =>
          (await import("./status.js")).statusAction(flags, command),
        ),
    )
    .addCommand(
      new Command("diff")
        .description(
          "compare the archive schema with a reference DDL file or another database (exit 1 if they differ)",
        )
        .option(
          "--reference <file>",
          "DDL file to compare with (loaded into a scratch database; needs CREATEDB)",
        )
        .option("--against <url>", "another database to compare with")
        .option("--tables <names>", "comma-separated tables to compare")
        .option(
          "--preset <names>",
          "table sets to compare: ingest, archive, summit (comma-separated)",
        )
        .action(async (flags: DiffFlags, command: Command) =>
          (await import("./diff.js")).diffAction(flags, command),
        ),
    );
}
