/**
 * The command tree. Built by a function so that tests and the README generator
 * get a fresh program each time.
 *
 * ## Start-up
 *
 * Every run pays for the modules it imports before commander sees a flag, and
 * the command modules pull in BullMQ, ioredis, pg, zod, the AWS SDK and sharp
 * (a few hundred milliseconds together). So the top-level commands are listed
 * here by name and description only, and a command's module is imported only
 * when the arguments name it (`fitsfleet rebuild …`, `fitsfleet help
 * rebuild`). `--version` and the root `--help` load none of them
 * (docs/BENCHMARKS.md, start-up; test/cli/startup.test.ts keeps it so).
 */
import { Command, Help, Option } from "commander";

import { closest } from "../lib/closest.js";
import { CONFIG_KEYS } from "../lib/config-keys.js";
import { UsageError } from "../lib/errors.js";
import { packageVersion } from "../lib/paths.js";

const FOOTER = `
Configuration precedence: flag > environment > config file (--config, JSON) > default.

Environment:
${Object.entries(CONFIG_KEYS)
  .map(([key, k]) => `  ${k.env.join(", ").padEnd(44)} ${key}`)
  .join("\n")}
  ${"FITSFLEET_CONFIG".padEnd(44)} config file, like --config

Exit codes:
  0  ok                               4  an external service is unreachable
  1  failed (or: differences found)   5  the database schema is newer than this fitsfleet
  2  usage or configuration error     6  a required system program is missing
  3  refused by a precondition        130 interrupted`;

export interface TopCommand {
  name: string;
  /** Exactly the loaded command's description and help term (test/cli/startup.test.ts checks). */
  description: string;
  term: string;
  load: () => Promise<Command>;
}

/** The top-level commands, in the order the root help lists them. */
export const TOP_COMMANDS: readonly TopCommand[] = [
  {
    name: "demo",
    term: "demo [options]",
    description:
      "run the toolkit end to end on the embedded local stack: stack up, a generated previous-version dump and a synthetic archive, then `rebuild run` on the local provider over them (db init, migrate-tables from the dump, enqueue, local worker processes, the calibration cache, verify)",
    load: async () => (await import("./commands/demo.js")).demoCommand(),
  },
  {
    name: "db",
    term: "db",
    description: "create, check and compare the archive database schema",
    load: async () => (await import("./commands/db/index.js")).dbCommand(),
  },
  {
    name: "stack",
    term: "stack",
    description:
      "run a throwaway PostgreSQL and Redis on this machine (the embedded local stack)",
    load: async () =>
      (await import("./commands/stack/index.js")).stackCommand(),
  },
  {
    name: "upgrade",
    term: "upgrade",
    description:
      "carry the preserved tables (users, logs, QA metrics) and their sequences from a previous version into a fresh schema",
    load: async () =>
      (await import("./commands/upgrade/index.js")).upgradeCommand(),
  },
  {
    name: "rebuild",
    term: "rebuild",
    description:
      "re-create file, diskfile, header and instrument rows from the archive's files: enqueue, watch, repair",
    load: async () =>
      (await import("./commands/rebuild/index.js")).rebuildCommand(),
  },
  {
    name: "rollcall",
    term: "rollcall [options]",
    description:
      "check that every present diskfile is still in the storage (--storage), by its full path or key; mark the missing ones not present; resumes after a kill",
    load: async () =>
      (await import("./commands/rollcall.js")).rollcallCommand(),
  },
  {
    name: "summit",
    term: "summit",
    description:
      "a summit server's database: seed it from an archive backup (seed-historic)",
    load: async () =>
      (await import("./commands/summit/index.js")).summitCommand(),
  },
  {
    name: "worker",
    term: "worker",
    description: "long-running workers that take work from the queue",
    load: async () =>
      (await import("./commands/worker/index.js")).workerCommand(),
  },
  {
    name: "cal",
    term: "cal",
    description:
      "the calibration cache: which calibrations go with a frame (cal show)",
    load: async () => (await import("./commands/cal/index.js")).calCommand(),
  },
  {
    name: "infra",
    term: "infra",
    description:
      "what an AWS account needs for a fleet and its worker image: least-privilege IAM policies",
    load: async () =>
      (await import("./commands/infra/index.js")).infraCommand(),
  },
  {
    name: "fleet",
    term: "fleet",
    description:
      "a spot fleet's secrets, status and end: secrets put, status, watch, terminate, sweep",
    load: async () =>
      (await import("./commands/fleet/index.js")).fleetCommand(),
  },
  {
    name: "ami",
    term: "ami",
    description:
      "the worker image fleet instances boot: bake one (no secret in it), list them, prune old ones, sweep what killed bakes left",
    load: async () => (await import("./commands/ami/index.js")).amiCommand(),
  },
  {
    name: "instance",
    term: "instance",
    description:
      "what a fleet instance runs at boot (from the baked image); not for operators",
    load: async () =>
      (await import("./commands/instance/index.js")).instanceCommand(),
  },
  {
    name: "fits",
    term: "fits",
    description: "read FITS files as the ingest does",
    load: async () => (await import("./commands/fits/index.js")).fitsCommand(),
  },
];

/** The root command with the global options, without subcommands. */
function rootCommand(version?: string): Command {
  const root = new Command("fitsfleet").description(
    "Upgrade and rebuild the PostgreSQL database of a FITS archive (FitsStorage v3) with a fleet of workers.",
  );
  if (version !== undefined) {
    root.version(version, "-V, --version", "print the version");
  }
  return root
    .helpOption("-h, --help", "show help for a command")
    .option("--config <file>", "read settings from a JSON config file")
    .option(
      `${CONFIG_KEYS.databaseUrl.flag} <url>`,
      CONFIG_KEYS.databaseUrl.help,
    )
    .option(`${CONFIG_KEYS.redisUrl.flag} <url>`, CONFIG_KEYS.redisUrl.help)
    .option(
      "--json",
      "print results as JSON on stdout, errors as JSON on stderr",
    )
    .option(`${CONFIG_KEYS.logLevel.flag} <level>`, CONFIG_KEYS.logLevel.help)
    .addOption(
      new Option(
        `${CONFIG_KEYS.logFormat.flag} <format>`,
        CONFIG_KEYS.logFormat.help,
      ),
    )
    .option(`${CONFIG_KEYS.stackDir.flag} <dir>`, CONFIG_KEYS.stackDir.help)
    .option(`${CONFIG_KEYS.s3Endpoint.flag} <url>`, CONFIG_KEYS.s3Endpoint.help)
    .option(`${CONFIG_KEYS.storage.flag} <location>`, CONFIG_KEYS.storage.help)
    .option(
      `${CONFIG_KEYS.previews.flag} <location>`,
      CONFIG_KEYS.previews.help,
    );
}

/**
 * The top-level command that `args` (the arguments after the program name)
 * run or ask help for, found by commander's own option parser on a bare root so
 * that global options and their values (`--storage rebuild …`) are skipped
 * exactly as the real parse will skip them.
 */
export function targetOf(args: readonly string[]): string | undefined {
  // Without --version, whose option handler would print the version.
  const probe = rootCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  let operands: string[];
  try {
    ({ operands } = probe.parseOptions([...args]));
  } catch {
    return undefined; // a bad global option: the real parse reports it
  }
  return operands[0] === "help" ? operands[1] : operands[0];
}

/**
 * The program. With `args`, only the top-level command they name is loaded and
 * the others are placeholders that carry their name and description for the
 * root help; without, every command is loaded (the README, tests).
 */
export async function buildProgram(args?: readonly string[]): Promise<Command> {
  const target = args === undefined ? undefined : targetOf(args);
  const program = rootCommand(packageVersion())
    .addHelpText("after", FOOTER)
    .showSuggestionAfterError(true);
  const terms = new Map<string, string>();
  for (const top of TOP_COMMANDS) {
    if (args === undefined || top.name === target) {
      program.addCommand(await top.load());
    } else {
      program.addCommand(new Command(top.name).description(top.description));
      terms.set(top.name, top.term);
    }
  }
  const help = new Help();
  program.configureHelp({
    // A placeholder has no options or arguments of its own to show.
    subcommandTerm: (command) =>
      terms.get(command.name()) ?? help.subcommandTerm(command),
  });
  for (const command of everyCommand(program)) {
    // `rebuild enqueue` needs --storage, a global option: its help says so.
    command.configureHelp({
      ...command.configureHelp(),
      showGlobalOptions: true,
    });
  }
  // Commander shows the group's help, exit 0, for `fitsfleet fleet --help`
  // and `fitsfleet help fleet`; a command that does not exist is a mistake.
  program.on("beforeAllHelp", ({ command }: { command: Command }) => {
    const stray = strayCommand(command);
    if (stray !== undefined) {
      throw unknownCommandError(command, stray);
    }
  });
  return program;
}

export function everyCommand(command: Command): Command[] {
  return [command, ...command.commands.flatMap(everyCommand)];
}

export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null; c = c.parent) {
    names.unshift(c.name());
  }
  return names.join(" ");
}

/** The operand that `command` (a group) was given as a subcommand name, when no subcommand has it. */
function strayCommand(command: Command): string | undefined {
  if (command.commands.length === 0) {
    return undefined;
  }
  const [first, second] = command.args;
  const name = first === "help" ? second : first;
  if (name === undefined || name.startsWith("-")) {
    return undefined;
  }
  const known = command.commands.some(
    (c) => c.name() === name || c.aliases().includes(name),
  );
  return known ? undefined : name;
}

/** The one error for a subcommand that does not exist, with or without --help. */
export function unknownCommandError(parent: Command, name: string): UsageError {
  const names = parent.commands.map((c) => c.name());
  const guess = closest(name, names);
  const path = commandPath(parent);
  return new UsageError(
    `unknown command '${name}'${guess === undefined ? "" : ` (did you mean '${guess}'?)`}`,
    {
      suggestion: `\`${path}\` has the commands ${names.join(", ")}; run \`${path} --help\` for usage`,
    },
  );
}
