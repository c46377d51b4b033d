/**
 * The command tree. Built by a function so that tests and the README generator
 * get a fresh program each time.
 */
import { Command, Option } from "commander";

import { CONFIG_KEYS } from "../lib/config.js";
import { packageVersion } from "../lib/paths.js";
import { dbCommand } from "./commands/db/index.js";
import { demoCommand } from "./commands/demo.js";
import { fitsCommand } from "./commands/fits/index.js";
import { rebuildCommand } from "./commands/rebuild/index.js";
import { stackCommand } from "./commands/stack/index.js";
import { upgradeCommand } from "./commands/upgrade/index.js";
import { workerCommand } from "./commands/worker/index.js";

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

export function buildProgram(): Command {
  const program = new Command("fitsfleet")
    .description(
      "Upgrade and rebuild the PostgreSQL database of a FITS archive (FitsStorage v3) with a fleet of workers.",
    )
    .version(packageVersion(), "-V, --version", "print the version")
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
    )
    .addCommand(demoCommand())
    .addCommand(dbCommand())
    .addCommand(stackCommand())
    .addCommand(upgradeCommand())
    .addCommand(rebuildCommand())
    .addCommand(workerCommand())
    .addCommand(fitsCommand())
    .addHelpText("after", FOOTER)
    .showSuggestionAfterError(true);
  return program;
}
