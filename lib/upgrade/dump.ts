/**
 * Reading a pg_dump archive (custom or directory format) without restoring it:
 * the table of contents from `pg_restore --list`, table and sequence
 * definitions from the schema-only SQL, sequence positions from the SEQUENCE
 * SET entries, and each table's rows as a COPY text stream from one selected
 * TABLE DATA entry. Nothing is held in memory beyond a chunk.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createReadStream, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Transform, type TransformCallback } from "node:stream";

import { EXIT, FitsfleetError, MissingDependencyError } from "../errors.js";
import { run } from "../exec.js";
import { postgresProgram } from "../programs.js";
import {
  type Catalog,
  type CatalogColumn,
  type CatalogTable,
  sequencePosition,
  sequenceTypeMax,
} from "./catalog.js";

export interface TocEntry {
  id: number;
  /** "TABLE", "TABLE DATA", "SEQUENCE SET", "DEFAULT", … */
  kind: string;
  schema: string;
  name: string;
  /** The line as pg_restore printed it, for -L lists. */
  line: string;
}

// Longest first, so "TABLE DATA" is not read as "TABLE".
const KINDS = [
  "SEQUENCE OWNED BY",
  "SEQUENCE SET",
  "TABLE DATA",
  "FK CONSTRAINT",
  "DEFAULT ACL",
  "SEQUENCE",
  "TABLE",
  "DEFAULT",
  "CONSTRAINT",
  "INDEX",
  "TYPE",
  "SCHEMA",
  "EXTENSION",
  "COMMENT",
  "FUNCTION",
  "VIEW",
  "ACL",
];

export class DumpError extends FitsfleetError {
  constructor(path: string, message: string, suggestion: string) {
    super("dump", EXIT.failed, `${path}: ${message}`, { suggestion });
  }
}

/** What pg_restore says when the compressed data it reads is not what was written (zlib, lz4, zstd). */
const DAMAGED =
  /could not (?:uncompress|decompress|decode)|incorrect (?:data|header) check|invalid (?:distance|code lengths?|literal|block type|stored block|bit length|window size)|(?:zlib|lz4|zstd|gzip)[^\n]*error|corrupt(?:ed)? (?:data|input|block|frame)|too many length or distance symbols/i;

/** What pg_restore says when the archive stops before its table of contents says it should. */
const CUT_SHORT =
  /end of file|unexpected end|could not read from input file|could not find block ID|file appears to be truncated/i;

/**
 * pg_restore failed reading `what` of `path`: says whether the dump is
 * damaged (its compressed data does not decompress), cut short, or something
 * else, from pg_restore's own words.
 */
export function restoreFailure(
  path: string,
  what: string,
  stderr: string,
  exit: string,
): DumpError {
  const lines = stderr
    .split("\n")
    .map((l) => l.replace(/^pg_restore: (?:error: )?/, "").trim())
    .filter((l) => l !== "");
  const damaged = lines.find((l) => DAMAGED.test(l));
  if (damaged !== undefined) {
    return new DumpError(
      path,
      `the dump is damaged: pg_restore could not decompress ${what} (${damaged}); its bytes are not the ones pg_dump wrote`,
      `make the dump again from the previous database (pg_dump -Fc), or copy it again from a good original; \`fitsfleet upgrade manifest --verify ${path}\` checks a copy against the manifest written beside the original`,
    );
  }
  const cut = lines.find((l) => CUT_SHORT.test(l));
  if (cut !== undefined) {
    return new DumpError(
      path,
      `the dump ends early: pg_restore could not read ${what} (${cut}); it is truncated, most likely not copied completely`,
      `copy it again from the original, or make the dump again (pg_dump -Fc); \`fitsfleet upgrade manifest --verify ${path}\` checks a copy against the manifest written beside the original`,
    );
  }
  return new DumpError(
    path,
    `cannot read ${what}: ${lines.slice(-3).join("; ") || `pg_restore exited with ${exit}`}`,
    "the archive is damaged or truncated; take the dump again or use its verified copy",
  );
}

const FULL_DUMP_SUGGESTION =
  "make a full custom-format dump of the previous database, `pg_dump -Fc -f FILE postgres://…` (schema and data, no --data-only; -t is not needed), or read the live database with `--from postgres://…`";

/**
 * A dump made with --data-only, as the reference's promotion checklist makes
 * them: rows without the CREATE TABLE statements the plan maps columns and
 * finds sequences from.
 */
function dataOnlyDump(path: string, holds: string): DumpError {
  return new DumpError(
    path,
    `a data-only dump (pg_dump --data-only): it holds ${holds} but no table definitions, which the upgrade needs to map the columns and find the sequences`,
    FULL_DUMP_SUGGESTION,
  );
}

/**
 * What a plain-SQL dump (pg_dump -Fp, which pg_restore cannot read) is: a
 * full one has its CREATE TABLEs before the first COPY, a data-only one has
 * none. Reads only up to whichever comes first.
 */
async function describePlainDump(path: string): Promise<DumpError> {
  const lines = createInterface({
    input: createReadStream(path, { encoding: "utf8" }),
    crlfDelay: Infinity,
  });
  let dataOnly = false;
  try {
    for await (const line of lines) {
      if (/^CREATE (?:UNLOGGED )?TABLE /.test(line)) {
        break;
      }
      if (/^COPY \S+ .*FROM stdin;$/.test(line)) {
        dataOnly = true;
        break;
      }
    }
  } finally {
    lines.close();
  }
  return dataOnly
    ? dataOnlyDump(path, "table rows as plain SQL (pg_dump -Fp)")
    : new DumpError(
        path,
        "a plain-SQL dump (pg_dump -Fp), which pg_restore cannot read, so its tables cannot be streamed one at a time",
        FULL_DUMP_SUGGESTION,
      );
}

export function dumpFormat(path: string): "custom" | "directory" {
  return statSync(path).isDirectory() ? "directory" : "custom";
}

/** The archive's TOC. A file that is not a pg_dump archive is a DumpError. */
export async function listDump(path: string): Promise<TocEntry[]> {
  let stdout: string;
  try {
    ({ stdout } = await run(postgresProgram("pg_restore"), ["--list", path], {
      purpose: `read the table of contents of ${path}`,
      debianPackage: "postgresql-client",
    }));
  } catch (error) {
    if (error instanceof MissingDependencyError) {
      throw error;
    }
    if (/appears to be a text format dump/.test((error as Error).message)) {
      throw await describePlainDump(path);
    }
    throw new DumpError(
      path,
      `not a readable pg_dump archive (${(error as Error).message.split("\n").slice(-1)[0]})`,
      "give a custom-format (pg_dump -Fc) file or a directory-format (pg_dump -Fd) folder, and check it was copied completely",
    );
  }
  const entries: TocEntry[] = [];
  for (const line of stdout.split("\n")) {
    const match = /^(\d+); \d+ \d+ (.*)$/.exec(line);
    if (match === null) {
      continue;
    }
    const rest = match[2]!;
    const kind = KINDS.find((k) => rest.startsWith(`${k} `));
    if (kind === undefined) {
      continue;
    }
    const [schema = "", name = ""] = rest.slice(kind.length + 1).split(" ");
    entries.push({ id: Number(match[1]), kind, schema, name, line });
  }
  return entries;
}

function listFile(dir: string, entries: TocEntry[], name: string): string {
  const path = join(dir, name);
  writeFileSync(path, entries.map((e) => e.line).join("\n") + "\n", {
    mode: 0o600,
  });
  return path;
}

/** SQL text that pg_restore prints for the selected entries. */
async function restoreText(
  path: string,
  workDir: string,
  entries: TocEntry[],
  what: string,
): Promise<string> {
  if (entries.length === 0) {
    return "";
  }
  const list = listFile(workDir, entries, `${what}.list`);
  try {
    const { stdout } = await run(
      postgresProgram("pg_restore"),
      ["--use-list", list, "--file", "-", path],
      { purpose: `read the ${what} of ${path}` },
    );
    return stdout;
  } catch (error) {
    // The first line is exec's "could not …: pg_restore failed"; pg_restore's own words follow.
    throw restoreFailure(
      path,
      `the ${what}`,
      (error as Error).message.split("\n").slice(1).join("\n"),
      "an error",
    );
  }
}

/** Splits `a, "b c", d` at top-level commas (outside quotes and parentheses). */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote !== undefined) {
      if (ch === quote) {
        quote = undefined;
      }
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === "(") {
      depth++;
    } else if (ch === ")") {
      depth--;
    } else if (ch === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

/** `"Mixed Case"` → `Mixed Case`; `plain` → `plain`. */
function unquote(identifier: string): string {
  return identifier.startsWith('"')
    ? identifier.slice(1, -1).replaceAll('""', '"')
    : identifier;
}

const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const QUALIFIED = String.raw`(${IDENT})\.(${IDENT})`;

/** One column line of a CREATE TABLE that pg_dump wrote. */
function parseColumn(line: string): CatalogColumn | undefined {
  const nameMatch = new RegExp(`^(${IDENT}) (.*)$`).exec(line);
  if (nameMatch === null || /^(CONSTRAINT|CHECK) /.test(line)) {
    return undefined;
  }
  let rest = nameMatch[2]!;
  const notNull = / NOT NULL$/.test(rest);
  rest = rest.replace(/ NOT NULL$/, "");
  let defaultValue: string | null = null;
  const defaultAt = rest.indexOf(" DEFAULT ");
  if (defaultAt >= 0) {
    defaultValue = rest.slice(defaultAt + " DEFAULT ".length);
    rest = rest.slice(0, defaultAt);
  }
  const type = rest.replace(/ COLLATE .*$/, "").replace(/^public\./, "");
  return {
    name: unquote(nameMatch[1]!),
    type,
    notNull,
    default: defaultValue,
  };
}

/** Tables, columns and sequence links from pg_dump's schema SQL. */
export function parseSchemaSql(
  sql: string,
  origin: string,
): Map<string, CatalogTable> {
  const tables = new Map<string, CatalogTable>();
  const create = new RegExp(
    String.raw`^CREATE (?:UNLOGGED )?TABLE ${QUALIFIED} \(\n([\s\S]*?)\n\);$`,
    "gm",
  );
  for (const m of sql.matchAll(create)) {
    const schema = unquote(m[1]!);
    const name = unquote(m[2]!);
    const columns = splitTopLevel(m[3]!.replace(/\n/g, " "))
      .map(parseColumn)
      .filter((c): c is CatalogColumn => c !== undefined);
    tables.set(name, { schema, name, columns, sequences: {} });
  }
  const link = (
    table: string,
    column: string,
    sequence: string,
    kind: "owned" | "identity" | "default",
  ) => {
    const t = tables.get(unquote(table));
    if (t === undefined) {
      return;
    }
    const existing = t.sequences[unquote(column)];
    const rank = { identity: 0, owned: 1, default: 2 };
    if (existing === undefined || rank[kind] < rank[existing.link]) {
      t.sequences[unquote(column)] = {
        name: sequence,
        link: kind,
        lastValue: 1n,
        isCalled: false,
        position: null,
      };
    }
  };
  const qualifiedText = (s: string, n: string) => `${s}.${n}`;
  for (const m of sql.matchAll(
    new RegExp(
      String.raw`^ALTER SEQUENCE ${QUALIFIED} OWNED BY ${QUALIFIED}\.(${IDENT});$`,
      "gm",
    ),
  )) {
    link(m[4]!, m[5]!, qualifiedText(m[1]!, m[2]!), "owned");
  }
  for (const m of sql.matchAll(
    new RegExp(
      String.raw`^ALTER TABLE (?:ONLY )?${QUALIFIED} ALTER COLUMN (${IDENT}) SET DEFAULT nextval\('(.+?)'::regclass\);$`,
      "gm",
    ),
  )) {
    const target = m[4]!.includes(".") ? m[4]! : `public.${m[4]!}`;
    link(m[2]!, m[3]!, target, "default");
    const column = tables
      .get(unquote(m[2]!))
      ?.columns.find((c) => c.name === unquote(m[3]!));
    if (column !== undefined) {
      column.default = `nextval('${m[4]!}'::regclass)`;
    }
  }
  for (const m of sql.matchAll(
    new RegExp(
      String.raw`^ALTER TABLE (?:ONLY )?${QUALIFIED} ALTER COLUMN (${IDENT}) ADD GENERATED (?:ALWAYS|BY DEFAULT) AS IDENTITY \(\n\s+SEQUENCE NAME ${QUALIFIED}`,
      "gm",
    ),
  )) {
    link(m[2]!, m[3]!, qualifiedText(m[4]!, m[5]!), "identity");
  }
  // pg_dump leaves out "AS bigint" and "NO MAXVALUE": those are the defaults.
  const kinds = new Map<string, { type: string; maxValue: bigint }>();
  for (const m of sql.matchAll(
    new RegExp(
      String.raw`^CREATE SEQUENCE ${QUALIFIED}
([\s\S]*?);$`,
      "gm",
    ),
  )) {
    const type = /^\s+AS (smallint|integer|bigint)$/m.exec(m[3]!)?.[1];
    const max = /^\s+MAXVALUE (\d+)$/m.exec(m[3]!)?.[1];
    const resolved = type ?? "bigint";
    kinds.set(qualifiedText(m[1]!, m[2]!), {
      type: resolved,
      maxValue: max === undefined ? sequenceTypeMax(resolved) : BigInt(max),
    });
  }
  // A sequence no column owns keeps its DEFAULT inside CREATE TABLE.
  for (const table of tables.values()) {
    for (const column of table.columns) {
      const inline = /^nextval\('(.+?)'::regclass\)$/.exec(
        column.default ?? "",
      );
      if (inline !== null) {
        const sequence = inline[1]!.includes(".")
          ? inline[1]!
          : `public.${inline[1]!}`;
        link(table.name, column.name, sequence, "default");
      }
    }
  }
  for (const table of tables.values()) {
    for (const [column, sequence] of Object.entries(table.sequences)) {
      const kind =
        kinds.get(sequence.name) ?? kinds.get(unquoteQualified(sequence.name));
      // An identity column's sequence has the column's type.
      const type =
        kind?.type ??
        (sequence.link === "identity"
          ? table.columns.find((c) => c.name === column)?.type
          : undefined);
      if (type !== undefined) {
        sequence.type = type;
        sequence.maxValue = kind?.maxValue ?? sequenceTypeMax(type);
      }
    }
  }
  if (tables.size === 0 && sql.trim() !== "") {
    throw new DumpError(
      origin,
      "no table definitions found in the archive's schema",
      "give a dump made with pg_dump of the whole database (schema and data), not --data-only",
    );
  }
  return tables;
}

/** `SELECT pg_catalog.setval('public.x_id_seq', 42, true);` lines → positions. */
export function parseSequenceValues(
  sql: string,
): Map<string, { lastValue: bigint; isCalled: boolean }> {
  const values = new Map<string, { lastValue: bigint; isCalled: boolean }>();
  for (const m of sql.matchAll(
    /^SELECT pg_catalog\.setval\('(.+?)', (\d+), (true|false)\);$/gm,
  )) {
    const name = m[1]!.includes(".") ? m[1]! : `public.${m[1]!}`;
    values.set(name, { lastValue: BigInt(m[2]!), isCalled: m[3] === "true" });
  }
  return values;
}

export interface DumpCatalog extends Catalog {
  toc: TocEntry[];
  /** Sequences a preserved column uses but the dump holds no value for. */
  missingSequenceValues: string[];
}

/** The catalog of a dump, in the same shape as a live database's. */
export async function readDumpCatalog(
  path: string,
  workDir: string,
  schema = "public",
): Promise<DumpCatalog> {
  const toc = await listDump(path);
  const inSchema = toc.filter((e) => e.schema === schema);
  const data = inSchema.filter((e) => e.kind === "TABLE DATA");
  if (data.length > 0 && !inSchema.some((e) => e.kind === "TABLE")) {
    throw dataOnlyDump(path, `the rows of ${data.length} table(s)`);
  }
  const schemaSql = await restoreText(
    path,
    workDir,
    inSchema.filter((e) =>
      ["TABLE", "SEQUENCE", "SEQUENCE OWNED BY", "DEFAULT"].includes(e.kind),
    ),
    "schema",
  );
  const tables = parseSchemaSql(schemaSql, path);
  const values = parseSequenceValues(
    await restoreText(
      path,
      workDir,
      toc.filter((e) => e.kind === "SEQUENCE SET"),
      "sequence values",
    ),
  );
  const missing = new Set<string>();
  for (const table of tables.values()) {
    for (const sequence of Object.values(table.sequences)) {
      const value =
        values.get(sequence.name) ??
        values.get(unquoteQualified(sequence.name));
      if (value === undefined) {
        missing.add(sequence.name);
        continue;
      }
      sequence.lastValue = value.lastValue;
      sequence.isCalled = value.isCalled;
      sequence.position = sequencePosition(value.lastValue, value.isCalled);
    }
  }
  return {
    origin: path,
    tables,
    toc,
    missingSequenceValues: [...missing].sort(),
  };
}

function unquoteQualified(name: string): string {
  return name
    .split(".")
    .map((p) => unquote(p))
    .join(".");
}

/**
 * Strips pg_restore's SQL around one table's COPY data: everything up to the
 * `COPY … FROM stdin;` line and from the `\.` terminator on. Rows pass through
 * in chunks; a stream that ends without the terminator was cut short.
 */
export class CopyDataExtractor extends Transform {
  private state: "before" | "data" | "after" = "before";
  private pending: Buffer = Buffer.alloc(0);
  /** The column list of the COPY header, in dump order. */
  columns: string[] | undefined;

  /**
   * `explain`, when given, is asked why the data stopped before its
   * terminator: the producer (pg_restore) usually knows better than a cut
   * stream does, e.g. that a compressed block did not decompress.
   */
  constructor(
    private readonly origin: string,
    private readonly explain?: () => Promise<Error | undefined>,
  ) {
    super();
  }

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: TransformCallback,
  ): void {
    let buffer =
      this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    if (this.state === "before") {
      let at = 0;
      for (;;) {
        const end = buffer.indexOf(10, at);
        if (end < 0) {
          this.pending = buffer.subarray(at);
          done();
          return;
        }
        const line = buffer.toString("utf8", at, end);
        at = end + 1;
        const header = /^COPY \S+ \((.*)\) FROM stdin;$/.exec(line);
        if (header !== null) {
          this.columns = splitTopLevel(header[1]!).map(unquote);
          this.state = "data";
          break;
        }
      }
      buffer = buffer.subarray(at);
    }
    if (this.state === "data") {
      // The terminator is a line of its own; keep a partial last line for the next chunk.
      const lastNewline = buffer.lastIndexOf(10);
      if (lastNewline < 0) {
        this.pending = buffer;
        done();
        return;
      }
      const complete = buffer.subarray(0, lastNewline + 1);
      this.pending = buffer.subarray(lastNewline + 1);
      const terminator =
        complete[0] === 92 && complete[1] === 46 && complete[2] === 10
          ? 0
          : complete.indexOf("\n\\.\n");
      if (terminator >= 0) {
        this.push(complete.subarray(0, terminator === 0 ? 0 : terminator + 1));
        this.state = "after";
        this.pending = Buffer.alloc(0);
      } else {
        this.push(complete);
      }
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.state === "after") {
      done();
      return;
    }
    const own = new DumpError(
      this.origin,
      this.state === "before"
        ? "the table's data section is missing"
        : "the table's data ends early (the archive is truncated)",
      "the archive is damaged; take the dump again or use its verified copy",
    );
    if (this.explain === undefined) {
      done(own);
      return;
    }
    this.explain().then(
      (better) => done(better ?? own),
      () => done(own),
    );
  }
}

export interface TableDataStream {
  stream: CopyDataExtractor;
  child: ChildProcess;
  /** Resolves when pg_restore exits 0; rejects with its stderr otherwise. */
  finished: Promise<void>;
  /**
   * Stops reading and waits for pg_restore to exit; resolves to its failure
   * (a damaged or truncated dump), or undefined when it had none. The rest
   * of the entry is read and discarded rather than cut off, so that a bad
   * block that already fed garbage downstream is still reported as such.
   */
  stop(): Promise<DumpError | undefined>;
}

/** One TABLE DATA entry's rows, as COPY text, streamed from pg_restore. */
export function streamTableData(
  path: string,
  workDir: string,
  entry: TocEntry,
): TableDataStream {
  const list = listFile(workDir, [entry], `data-${entry.id}.list`);
  const child = spawn(
    postgresProgram("pg_restore"),
    ["--data-only", "--use-list", list, "--file", "-", path],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  const exited = new Promise<DumpError | undefined>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      resolve(
        code === 0
          ? undefined
          : restoreFailure(
              path,
              `the data of table ${entry.name}`,
              stderr,
              String(code ?? signal),
            ),
      );
    });
  });
  const stream = new CopyDataExtractor(
    `${path} (table ${entry.name})`,
    () => exited,
  );
  const finished = exited.then((failure) => {
    if (failure !== undefined) {
      stream.destroy(failure);
      throw failure;
    }
  });
  child.stdout!.pipe(stream);
  return {
    stream,
    child,
    finished,
    stop: async () => {
      child.stdout!.unpipe(stream);
      child.stdout!.resume();
      return exited.catch(() => undefined);
    },
  };
}
