import { readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";

import type { Command } from "commander";

import { coerceError, EXIT, FitsfleetError } from "../../../lib/errors.js";
import type { Card } from "../../../lib/fits/card.js";
import { FitsFormatError } from "../../../lib/fits/errors.js";
import {
  isCompressedName,
  readFitsFile,
  readHeaders,
} from "../../../lib/fits/read.js";
import type { FitsStructure, Hdu } from "../../../lib/fits/scanner.js";
import {
  describe,
  type Descriptors,
  geminiFile,
} from "../../../lib/gemini/descriptors.js";
import { type ArchiveRows, archiveRows } from "../../../lib/gemini/rows.js";
import { computeTags } from "../../../lib/gemini/tags.js";
import { commandContext } from "../../context.js";
import { table } from "../../output.js";

export interface InspectOptions {
  /** Read headers only, seeking past data units (no checksums; not for .bz2). */
  headersOnly?: boolean;
}

export interface CardReport {
  keyword: string;
  kind: string;
  value: unknown;
  comment: string | undefined;
  image: string;
}

export interface HduReport {
  index: number;
  type: string;
  extname: string | undefined;
  bitpix: number;
  axes: number[];
  pcount: number;
  gcount: number;
  headerOffset: number;
  dataOffset: number;
  dataSize: number;
  cards: CardReport[];
}

export interface FileReport {
  file: string;
  ok: boolean;
  compressed: boolean;
  fileSize?: number;
  fileMd5?: string;
  dataSize?: number;
  dataMd5?: string;
  hdus: HduReport[];
  /** Gemini data tags (the archive's header.types), when the file is Gemini data. */
  tags?: {
    instrumentClass: string | undefined;
    tags: string[];
    error: string | undefined;
  };
  /** Gemini descriptors (values the header row is made from), when the file is Gemini data. */
  descriptors?: Descriptors;
  /** The archive rows an ingest would write: header, instrument, and why any column is NULL. */
  rows?: ArchiveRows;
  warnings: string[];
  error?: { code: string; problem: string | undefined; message: string };
}

function cardReport(card: Card): CardReport {
  const value = card.value;
  return {
    keyword: card.keyword,
    kind: card.kind,
    value: typeof value === "bigint" ? value.toString() : value,
    comment: card.comment,
    image: card.images.join("\n"),
  };
}

function hduReport(hdu: Hdu): HduReport {
  return {
    index: hdu.index,
    type: hdu.type,
    extname: hdu.header.string("EXTNAME"),
    bitpix: hdu.bitpix,
    axes: hdu.axes,
    pcount: hdu.pcount,
    gcount: hdu.gcount,
    headerOffset: hdu.headerOffset,
    dataOffset: hdu.dataOffset,
    dataSize: hdu.dataSize,
    cards: hdu.header.cards.map(cardReport),
  };
}

/** Reads one file; a damaged file is a report with its error, not a throw. */
export async function inspectFile(
  path: string,
  options: InspectOptions = {},
): Promise<FileReport> {
  const compressed = isCompressedName(path);
  try {
    if (options.headersOnly === true && !compressed) {
      const structure: FitsStructure = readHeaders(path);
      return {
        file: path,
        ok: true,
        compressed,
        hdus: structure.hdus.map(hduReport),
        ...derived(structure, path),
        warnings: structure.warnings,
      };
    }
    const result = await readFitsFile(path);
    return {
      file: path,
      ok: true,
      compressed,
      fileSize: result.fileSize,
      fileMd5: result.fileMd5,
      dataSize: result.dataSize,
      dataMd5: result.dataMd5,
      hdus: result.structure.hdus.map(hduReport),
      ...derived(result.structure, path),
      warnings: result.structure.warnings,
    };
  } catch (raw) {
    const error = raw instanceof FitsfleetError ? raw : readError(raw, path);
    if (!(error instanceof FitsFormatError) && error.exitCode !== EXIT.failed) {
      throw error; // a missing bzip2 program is not a property of this file
    }
    return {
      file: path,
      ok: false,
      compressed,
      hdus: [],
      warnings: [],
      error: {
        code: error.code,
        problem: error instanceof FitsFormatError ? error.problem : undefined,
        message: error.message,
      },
    };
  }
}

function tagReport(structure: FitsStructure): FileReport["tags"] {
  const phu = structure.hdus[0]?.header;
  if (phu === undefined) {
    return undefined;
  }
  const result = computeTags(phu);
  return {
    instrumentClass: result.instrumentClass,
    tags: [...result.tags].sort(),
    error: result.error,
  };
}

/** Tags, descriptors and rows, under the name the archive gives the file (no .bz2). */
function derived(
  structure: FitsStructure,
  path: string,
): Pick<FileReport, "tags" | "descriptors" | "rows"> {
  const name = basename(path).replace(/\.bz2$/, "");
  const tags = tagReport(structure);
  return {
    tags,
    descriptors:
      tags?.instrumentClass === undefined
        ? undefined
        : describe(geminiFile(structure, name)),
    rows: archiveRows(structure, name),
  };
}

/** What the system's refusal to open or read a file means, in words. */
const ERRNO_WORDS: Record<string, string> = {
  ENOENT: "no such file",
  ENOTDIR: "a folder in its path is a file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a directory",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "the name is too long",
  EIO: "input/output error (a failing disk or network mount?)",
  ENXIO: "no such device",
  ENODEV: "no such device",
  ESTALE: "stale network file handle",
};

function readError(error: unknown, path: string): FitsfleetError {
  const code = (error as NodeJS.ErrnoException).code;
  const words = code === undefined ? undefined : ERRNO_WORDS[code];
  if (words !== undefined) {
    return new FitsfleetError(
      "unreadable",
      EXIT.failed,
      `${path}: cannot read: ${words}`,
    );
  }
  return coerceError(error);
}

const FITS_NAME = /\.fits(\.bz2)?$/i;

/**
 * The files to inspect: each argument as given, except that a directory
 * stands for the .fits and .fits.bz2 files under it, at any depth, in name
 * order (symbolic links to directories are not followed). A directory without
 * any is a damaged entry of its own, so a mistyped folder is not a silent
 * success.
 */
function expand(argument: string): { file: string; empty?: boolean }[] {
  let isDirectory = false;
  try {
    isDirectory = statSync(argument).isDirectory();
  } catch {
    return [{ file: argument }]; // reading it reports why
  }
  if (!isDirectory) {
    return [{ file: argument }];
  }
  const files = readdirSync(argument, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && FITS_NAME.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
  return files.length > 0
    ? files.map((file) => ({ file }))
    : [{ file: argument, empty: true }];
}

function emptyDirectory(path: string): FileReport {
  return {
    file: path,
    ok: false,
    compressed: false,
    hdus: [],
    warnings: [],
    error: {
      code: "no-fits-files",
      problem: undefined,
      message: `${path}: a directory without .fits or .fits.bz2 files`,
    },
  };
}

const shown = (value: unknown) =>
  value === null ? "NULL" : typeof value === "string" ? value : String(value);

function rowLines(rows: ArchiveRows): string[] {
  const why = new Map<string, string>();
  for (const w of rows.warnings) {
    why.set(w.column, w.message);
  }
  const section = (name: string, values: Record<string, unknown>) =>
    table(
      [`${name} column`, "value"],
      Object.entries(values).map(([column, value]) => {
        const key = `${name}.${column}`;
        const reason =
          value === null ? (rows.reasons[key] ?? why.get(key)) : why.get(key);
        return [
          column,
          reason === undefined ? shown(value) : `${shown(value)} (${reason})`,
        ];
      }),
    )
      .split("\n")
      .map((l) => `  ${l}`);
  const lines = section("header", rows.header);
  for (const row of rows.instrument) {
    lines.push(...section(row.table, row.values));
  }
  const shownColumns = new Set([
    ...Object.keys(rows.header).map((c) => `header.${c}`),
    ...rows.instrument.flatMap((r) =>
      Object.keys(r.values).map((c) => `${r.table}.${c}`),
    ),
  ]);
  for (const w of rows.warnings.filter((w) => !shownColumns.has(w.column))) {
    lines.push(`  note: ${w.column}: ${w.message}`);
  }
  return lines;
}

export function describeFile(
  report: FileReport,
  options: { cards?: boolean; descriptors?: boolean } = {},
): string {
  if (!report.ok) {
    return `${report.file}\n  error: ${report.error?.message}`;
  }
  const lines = [report.file];
  if (report.fileMd5 !== undefined) {
    lines.push(
      report.compressed
        ? `  bzip2: ${report.fileSize} bytes stored (md5 ${report.fileMd5}), ${report.dataSize} bytes of FITS (md5 ${report.dataMd5})`
        : `  ${report.fileSize} bytes (md5 ${report.fileMd5})`,
    );
  }
  const rows = report.hdus.map((h) => [
    String(h.index),
    h.type,
    h.extname ?? "",
    String(h.bitpix),
    h.axes.length === 0 ? "-" : h.axes.join("x"),
    String(h.cards.length),
    String(h.dataSize),
  ]);
  lines.push(
    ...table(
      ["hdu", "type", "extname", "bitpix", "axes", "cards", "data bytes"],
      rows,
    )
      .split("\n")
      .map((l) => `  ${l}`),
  );
  if (report.tags?.instrumentClass !== undefined) {
    lines.push(
      report.tags.error === undefined
        ? `  tags (${report.tags.instrumentClass}): ${report.tags.tags.join(" ")}`
        : `  tags (${report.tags.instrumentClass}): ${report.tags.error}`,
    );
  }
  if (report.descriptors !== undefined && options.descriptors === true) {
    const { values, errors } = report.descriptors;
    const rows = Object.entries(values).map(([name, value]) => [
      name,
      value === null
        ? errors[name] === undefined
          ? ""
          : `(failed: ${errors[name]})`
        : Array.isArray(value)
          ? value.map((v) => (v === null ? "-" : String(v))).join(" | ")
          : String(value),
    ]);
    lines.push(
      ...table(["descriptor", "value"], rows)
        .split("\n")
        .map((l) => `  ${l}`),
    );
  }
  if (report.rows !== undefined) {
    lines.push(...rowLines(report.rows));
  }
  for (const warning of report.warnings) {
    lines.push(`  warning: ${warning}`);
  }
  if (options.cards === true) {
    for (const hdu of report.hdus) {
      lines.push("", `  --- HDU ${hdu.index} (${hdu.type}) ---`);
      lines.push(
        ...hdu.cards
          .flatMap((c) => c.image.split("\n"))
          .map((image) => `  ${image.trimEnd()}`),
      );
    }
  }
  return lines.join("\n");
}

export interface InspectFlags {
  cards?: boolean;
  descriptors?: boolean;
  headersOnly?: boolean;
}

/** `fits inspect`'s action (cli/commands/fits/index.ts loads this module for it). */
export async function inspectAction(
  files: string[],
  flags: InspectFlags,
  command: Command,
): Promise<void> {
  const { output } = commandContext(command);
  const reports: FileReport[] = [];
  for (const { file, empty } of files.flatMap(expand)) {
    reports.push(
      empty === true
        ? emptyDirectory(file)
        : await inspectFile(file, { headersOnly: flags.headersOnly }),
    );
  }
  output.result(reports, (all) =>
    all
      .map((r) =>
        describeFile(r, {
          cards: flags.cards,
          descriptors: flags.descriptors,
        }),
      )
      .join("\n\n"),
  );
  const damaged = reports.filter((r) => !r.ok);
  if (damaged.length > 0) {
    throw new FitsfleetError(
      "fits-damaged",
      EXIT.failed,
      `${damaged.length} of ${reports.length} file(s) could not be read`,
    );
  }
}
