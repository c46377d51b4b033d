/**
 * The options `upgrade plan` and `upgrade migrate-tables` share: where the
 * rows come from, which tables, and how the schemas map.
 */
import { type Command, Option } from "commander";

import { selectTables } from "../../../lib/archive-tables.js";
import type { Logger } from "../../../lib/logger.js";
import {
  EMPTY_MAPPING,
  loadMapping,
  type UpgradeMapping,
} from "../../../lib/upgrade/mapping.js";
import {
  type OpenedSource,
  openSource,
} from "../../../lib/upgrade/open-source.js";

export interface UpgradeFlags {
  from: string;
  preset: string[];
  table: string[];
  excludeTable: string[];
  mapping?: string;
  manifest?: string;
}

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

export interface UpgradeInputs {
  tables: string[];
  mapping: UpgradeMapping;
}

export function upgradeInputs(flags: UpgradeFlags): UpgradeInputs {
  return {
    tables: selectTables({
      presets: flags.preset.length > 0 ? flags.preset : ["archive"],
      add: flags.table,
      exclude: flags.excludeTable,
    }),
    mapping:
      flags.mapping === undefined ? EMPTY_MAPPING : loadMapping(flags.mapping),
  };
}

/** Validates the selection and mapping, opens (and verifies) the source, runs `fn`, cleans up. */
export async function withUpgradeSource<T>(
  flags: UpgradeFlags,
  options: { s3Endpoint?: string; logger: Logger },
  fn: (opened: OpenedSource, inputs: UpgradeInputs) => Promise<T>,
): Promise<T> {
  const inputs = upgradeInputs(flags);
  const opened = await openSource(flags.from, {
    manifest: flags.manifest,
    s3Endpoint: options.s3Endpoint,
    logger: options.logger,
  });
  try {
    return await fn(opened, inputs);
  } finally {
    await opened.cleanup();
  }
}
