/**
 * The `stack` commands' names, options and help. Each action imports its
 * module (and with it pg and ioredis) only when it runs, so that `stack
 * --help` and a subcommand's `--help` stay fast (cli/program.ts, start-up).
 */
import { Command } from "commander";

import type { DownFlags } from "./down.js";
import type { UpFlags } from "./up.js";

export function stackCommand(): Command {
  return new Command("stack")
    .description(
      "run a throwaway PostgreSQL and Redis on this machine (the embedded local stack)",
    )
    .addCommand(
      new Command("up")
        .description(
          "start a throwaway PostgreSQL and Redis on free loopback ports (idempotent)",
        )
        .option(
          "--unsafe-fast",
          "turn off fsync for speed; data may be lost on a crash (tests, benchmarks)",
        )
        .action(async (flags: UpFlags, command: Command) =>
          (await import("./up.js")).upAction(flags, command),
        ),
    )
    .addCommand(
      new Command("status")
        .description(
          "show the embedded stack's servers and URLs (exit 3 unless both are running)",
        )
        .action(async (flags: unknown, command: Command) =>
          (await import("./status.js")).statusAction(flags, command),
        ),
    )
    .addCommand(
      new Command("down")
        .description(
          "stop the embedded stack (idempotent); --purge also deletes its data",
        )
        .option(
          "--purge",
          "delete the state folder and all data after stopping",
        )
        .action(async (flags: DownFlags, command: Command) =>
          (await import("./down.js")).downAction(flags, command),
        ),
    );
}
