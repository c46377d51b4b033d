/**
 * The options `upgrade plan` and `upgrade migrate-tables` share: where the
 * rows come from, which tables, and how the schemas map.
 */
import { type Command, Option } from "commander";

const collect = (value: string, previous: string[] = []) => [
  ...previous,
  value,
];

export function addUpgradeOptions(command: Command): Command {
  return command
    .requiredOption(
      "--from <source>",
      "the previous version: a pg_dump archive (custom file or directory), an s3:// URL of one, or a postgres:// URL",
    )
    .addOption(
      new Option(
        "--preset <names>",
        "table presets, comma-separated or repeated: archive, summit",
      )
        .argParser(collect)
        .default([], "archive"),
    )
    .option("--table <name>", "add a table (repeatable)", collect, [])
    .option(
      "--exclude-table <name>",
      "leave a selected table out (repeatable)",
      collect,
      [],
    )
    .option(
      "--mapping <file>",
      "schema mapping file for renamed tables and columns, casts and dropped columns (e.g. mappings/fitsstorage-v2-to-v3.json)",
    )
    .option(
      "--manifest <file>",
      "checksum manifest to verify the dump against (default: <dump>.manifest.json when present)",
    );
}
