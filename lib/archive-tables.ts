/**
 * Named sets of archive tables. `ingest` is what a rebuild writes; `archive`
 * and `summit` are the tables an upgrade carries over from the previous
 * version on an archive server and a summit server (DOMAIN.md §1.6).
 */
import { isPlainIdentifier } from "./db/sql.js";
import { UsageError } from "./errors.js";

export const TABLE_PRESETS = {
  ingest: [
    "file",
    "diskfile",
    "diskfilereport",
    "fulltextheader",
    "header",
    "gmos",
    "niri",
    "f2",
    "gnirs",
    "preview",
    "calcache",
    "ingestqueue",
    "previewqueue",
    "calcachequeue",
  ],
  archive: [
    "users",
    "userprogram",
    "notification",
    "glacier",
    "usagelog",
    "querylog",
    "downloadlog",
    "filedownloadlog",
    "fileuploadlog",
  ],
  summit: ["qareport", "qametriciq", "qametricpe", "qametricsb", "qametriczp"],
} as const satisfies Record<string, readonly string[]>;

export type TablePreset = keyof typeof TABLE_PRESETS;

export function isTablePreset(name: string): name is TablePreset {
  return Object.hasOwn(TABLE_PRESETS, name);
}

/** Expands a comma list of preset names; an unknown name is a UsageError naming the flag. */
export function presetTables(list: string, flag = "--preset"): string[] {
  const tables: string[] = [];
  for (const name of list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    if (!isTablePreset(name)) {
      throw new UsageError(
        `${flag}: unknown preset "${name}"; choose from ${Object.keys(TABLE_PRESETS).join(", ")}`,
      );
    }
    tables.push(...TABLE_PRESETS[name]);
  }
  return tables;
}

export interface TableSelection {
  /** Comma lists of preset names. */
  presets: string[];
  /** Tables to add (--table). */
  add: string[];
  /** Tables to leave out (--exclude-table). */
  exclude: string[];
}

/** Presets plus --table minus --exclude-table, without duplicates, in first-seen order. */
export function selectTables(selection: TableSelection): string[] {
  const chosen = selection.presets.flatMap((p) => presetTables(p));
  for (const table of selection.add) {
    if (!isPlainIdentifier(table)) {
      throw new UsageError(
        `--table ${JSON.stringify(table)}: not a table name (lower-case letters, digits and _)`,
      );
    }
    chosen.push(table);
  }
  const excluded = new Set(selection.exclude);
  for (const table of excluded) {
    if (!chosen.includes(table)) {
      throw new UsageError(
        `--exclude-table ${table}: not among the selected tables (${[...new Set(chosen)].join(", ") || "none"})`,
      );
    }
  }
  const result = [...new Set(chosen)].filter((t) => !excluded.has(t));
  if (result.length === 0) {
    throw new UsageError(
      "no tables selected; use --preset archive, --preset summit, or --table NAME",
    );
  }
  return result;
}
