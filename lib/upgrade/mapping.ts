/**
 * The upgrade mapping file: how a previous version's tables and columns become
 * the new version's, for the differences that cannot be applied automatically
 * (table and column renames, expressions, explicit casts, dropped columns).
 * It is JSON so it can be versioned and reviewed next to the code; every
 * problem in it is reported at once.
 *
 * {
 *   "description": "FitsStorage v2 → v3",
 *   "tables": {
 *     "users": { "from": "archiveuser" },
 *     "fileuploadlog": { "drop": ["invoke_pid"] },
 *     "glacier": { "columns": { "md5": { "expr": "lower(md5)" },
 *                               "path": "folder",
 *                               "size": { "from": "size", "cast": true } } }
 *   }
 * }
 *
 * Keys under "tables" and "columns" are target names; values name source
 * columns. Expressions are SQL over the source row's columns, evaluated by
 * PostgreSQL; the file is the operator's own and is trusted like a migration.
 */
import { readFileSync } from "node:fs";

import { z } from "zod";

import { isPlainIdentifier } from "../db/sql.js";
import { ConfigError } from "../errors.js";

const identifier = z
  .string()
  .refine(isPlainIdentifier, "must be a lower-case SQL identifier");

const columnMapping = z.union([
  identifier,
  z.strictObject({ expr: z.string().min(1) }),
  z.strictObject({ from: identifier, cast: z.literal(true) }),
]);

const tableMapping = z.strictObject({
  from: identifier.optional(),
  columns: z.record(identifier, columnMapping).optional(),
  drop: z.array(identifier).optional(),
});

const mappingFile = z.strictObject({
  description: z.string().optional(),
  tables: z.record(identifier, tableMapping),
});

export type ColumnMapping = z.infer<typeof columnMapping>;
export type TableMapping = z.infer<typeof tableMapping>;
export type UpgradeMapping = z.infer<typeof mappingFile>;

export const EMPTY_MAPPING: UpgradeMapping = { tables: {} };

export function parseMapping(text: string, origin: string): UpgradeMapping {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([
      `${origin}: not valid JSON (${(error as Error).message})`,
    ]);
  }
  const result = mappingFile.safeParse(json);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map(
        (issue) =>
          `${origin}: ${issue.path.map(String).join(".") || "(top level)"}: ${issue.message}`,
      ),
      {
        suggestion:
          "see docs/UPGRADE.md for the mapping file format, and mappings/ for the shipped ones",
      },
    );
  }
  return result.data;
}

export function loadMapping(path: string): UpgradeMapping {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError([
      `--mapping ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    ]);
  }
  return parseMapping(text, path);
}
