import { readFileSync } from "node:fs";

import type { Command } from "commander";

import { presetTables } from "../../../lib/archive-tables.js";
import { withClient } from "../../../lib/db/connect.js";
import {
  compareSchemas,
  describeDdl,
  describeSchema,
  type SchemaDifference,
} from "../../../lib/db/introspect.js";
import { databaseUrl } from "../../../lib/endpoints.js";
import { EXIT, FitsfleetError, UsageError } from "../../../lib/errors.js";
import { redactUrl } from "../../../lib/redact.js";
import { commandContext } from "../../context.js";

export interface DiffOptions {
  /** A DDL file to compare with, loaded into a scratch database on the same server. */
  reference?: string;
  /** Or another live database to compare with. */
  against?: string;
  /** Only these tables (default: every table in either schema). */
  tables?: string[];
}

export interface DiffResult {
  database: string;
  comparedWith: string;
  tables: string[] | "all";
  differences: SchemaDifference[];
}

/** Compares the archive schema (public) of `url` with a reference DDL file or another database. */
export async function diffDatabase(
  url: string,
  options: DiffOptions,
): Promise<DiffResult> {
  if ((options.reference === undefined) === (options.against === undefined)) {
    throw new UsageError(
      "db diff needs exactly one of --reference FILE or --against URL",
    );
  }
  let expected;
  let comparedWith: string;
  if (options.reference !== undefined) {
    let ddl: string;
    try {
      ddl = readFileSync(options.reference, "utf8");
    } catch (error) {
      throw new UsageError(
        `--reference: cannot read ${options.reference}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
    expected = await describeDdl(url, ddl, options.reference);
    comparedWith = options.reference;
  } else {
    const against = options.against ?? "";
    expected = await withClient(against, (client) =>
      describeSchema(client, "public"),
    );
    comparedWith = redactUrl(against);
  }
  const actual = await withClient(url, (client) =>
    describeSchema(client, "public"),
  );
  return {
    database: redactUrl(url),
    comparedWith,
    tables: options.tables ?? "all",
    differences: compareSchemas(
      expected,
      actual,
      options.tables === undefined ? {} : { tables: options.tables },
    ),
  };
}

export function describeDiff(result: DiffResult): string {
  const scope =
    result.tables === "all" ? "all tables" : `${result.tables.length} tables`;
  const lines = [
    `comparing ${result.database} with ${result.comparedWith} (${scope})`,
  ];
  if (result.differences.length === 0) {
    lines.push("no differences");
  } else {
    lines.push(
      `${result.differences.length} difference(s):`,
      ...result.differences.map((d) => `  - ${d.detail}`),
    );
  }
  return lines.join("\n");
}

export interface DiffFlags {
  reference?: string;
  against?: string;
  tables?: string;
  preset?: string;
}

/** `db diff`'s action (cli/commands/db/index.ts loads this module for it). */
export async function diffAction(
  flags: DiffFlags,
  command: Command,
): Promise<void> {
  const { config, logger, output } = commandContext(command);
  const listed =
    flags.tables
      ?.split(",")
      .map((t) => t.trim())
      .filter((t) => t !== "") ?? [];
  const preset = flags.preset === undefined ? [] : presetTables(flags.preset);
  const tables =
    listed.length + preset.length > 0
      ? [...new Set([...preset, ...listed])]
      : undefined;
  const result = await diffDatabase(databaseUrl(config, logger), {
    ...(flags.reference === undefined ? {} : { reference: flags.reference }),
    ...(flags.against === undefined ? {} : { against: flags.against }),
    ...(tables === undefined ? {} : { tables }),
  });
  output.result(result, describeDiff);
  if (result.differences.length > 0) {
    throw new FitsfleetError(
      "schema-differs",
      EXIT.failed,
      `the schemas differ in ${result.differences.length} place(s)`,
    );
  }
}
