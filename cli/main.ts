#!/usr/bin/env node
/**
 * Entry point and the single error funnel: every failure ends here, is printed
 * once (message, then what to do; the stack only with --log-level debug or
 * DEBUG=1) and becomes the process exit code.
 */
import type { CommanderError } from "commander";
import { type Command } from "commander";

import {
  coerceError,
  EXIT,
  type FitsfleetError,
  InterruptedError,
  UsageError,
} from "../lib/errors.js";
import { Output } from "./output.js";
import {
  buildProgram,
  commandPath,
  everyCommand,
  unknownCommandError,
} from "./program.js";
import { interruptGracefully } from "./signals.js";

/** commander's own outcomes: help and version are successes, the rest usage errors. */
function fromCommander(
  error: CommanderError,
  command: Command,
): FitsfleetError | undefined {
  if (
    ["commander.helpDisplayed", "commander.version", "commander.help"].includes(
      error.code,
    )
  ) {
    return error.code === "commander.help" && error.exitCode !== 0
      ? new UsageError(`\`${commandPath(command)}\` needs a subcommand`, {
          suggestion: "choose one from the list above",
        })
      : undefined;
  }
  const name = command.args[0];
  if (error.code === "commander.unknownCommand" && name !== undefined) {
    return unknownCommandError(command, name);
  }
  return new UsageError(error.message.replace(/^error: /, ""), {
    suggestion: `run \`${commandPath(command)} --help\` for usage`,
  });
}

/** Carries the command that commander was parsing when it failed. */
class CommandError extends Error {
  constructor(
    readonly commanderError: CommanderError,
    readonly command: Command,
  ) {
    super(commanderError.message);
  }
}

function wantsDebug(argv: readonly string[]): boolean {
  const i = argv.indexOf("--log-level");
  return (
    argv.includes("--log-level=debug") ||
    (i >= 0 && argv[i + 1] === "debug") ||
    process.env.FITSFLEET_LOG_LEVEL === "debug" ||
    ["1", "true", "yes"].includes((process.env.DEBUG ?? "").toLowerCase())
  );
}

export async function main(argv: readonly string[]): Promise<number> {
  const args = argv.slice(2);
  const output = new Output({ json: args.includes("--json") });
  try {
    const program = await buildProgram(args);
    for (const command of everyCommand(program)) {
      // Commander reports through our funnel instead of printing and exiting itself.
      command
        .exitOverride((error) => {
          throw new CommandError(error, command);
        })
        .configureOutput({ outputError: () => undefined });
    }
    await program.parseAsync([...argv]);
    return EXIT.ok;
  } catch (raw) {
    const error =
      raw instanceof CommandError
        ? fromCommander(raw.commanderError, raw.command)
        : coerceError(raw);
    if (error === undefined) {
      return EXIT.ok;
    }
    output.error(error, { debug: wantsDebug(args) });
    return error.exitCode;
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interruptGracefully()) {
      new Output({ json: process.argv.includes("--json") }).note(
        `${signal}: finishing the work in hand, then stopping (send it again to stop at once)`,
      );
      return;
    }
    new Output({ json: process.argv.includes("--json") }).error(
      new InterruptedError(signal),
      { debug: false },
    );
    process.exit(EXIT.interrupted);
  });
}

// A reader that goes away (`fitsfleet --help | head`) is not an error: stop quietly, as cat does.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") {
    process.exit(EXIT.ok);
  }
  throw error;
});

// The AWS SDK warns on every run that its releases after January 2027 will
// need Node 22; this project pins its SDK version and runs on Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

process.exitCode = await main(process.argv);
