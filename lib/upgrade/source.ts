/**
 * Where preserved rows come from: a live previous-version database, or a
 * pg_dump archive (custom or directory format). Both give the same catalog
 * shape and the same COPY text rows, so planning, loading and verification do
 * not care which it is.
 */
import type { Readable } from "node:stream";

import { to as copyTo } from "pg-copy-streams";

import { connect, type PgClient } from "../db/connect.js";
import { qualifiedName, quoteIdent } from "../db/sql.js";
import { redactUrl } from "../redact.js";
import { type Catalog, readCatalog } from "./catalog.js";
import {
  type DumpCatalog,
  DumpError,
  readDumpCatalog,
  streamTableData,
} from "./dump.js";
import { makeWorkDir, removeWorkDir } from "./workdir.js";

export interface SourceRows {
  /** COPY text, one row per line, fields in `columns` order. */
  stream: Readable;
  /** The fields each row holds, in order. */
  columns: string[];
  /** Resolves when the source has delivered everything; rejects on a source failure. */
  finished: Promise<void>;
  /**
   * After the consumer failed: stops reading and resolves to the source's own
   * failure, if it had one (a damaged dump can feed garbage to COPY before
   * pg_restore says why), so that the real cause is reported.
   */
  stop(): Promise<Error | undefined>;
}

export interface UpgradeSource {
  /** For messages: a redacted URL or a dump path. */
  readonly origin: string;
  readonly kind: "database" | "dump";
  catalog(): Promise<Catalog>;
  /** Every column of `table`, in table order (a dump cannot select fewer). */
  rows(table: string): Promise<SourceRows>;
  /** Exact row count (a dump is read through to count). */
  count(table: string): Promise<number>;
  /** Row count and the largest value of each of `columns` (integer columns; null when no rows). */
  scan(table: string, columns: readonly string[]): Promise<TableScan>;
  /** Sequences that feed columns but have no value in the source (dumps made with -t can lack them). */
  missingSequenceValues(): string[];
  close(): Promise<void>;
}

export interface TableScan {
  rows: number;
  max: Map<string, bigint | null>;
}

/** Session settings that make COPY text identical on both sides. */
export const COPY_SETTINGS = [
  "SET datestyle TO ISO, YMD",
  "SET intervalstyle TO postgres",
  "SET extra_float_digits TO 3",
  "SET bytea_output TO hex",
  "SET client_encoding TO 'UTF8'",
];

export class DatabaseSource implements UpgradeSource {
  readonly kind = "database";
  readonly origin: string;
  private catalogCache: Catalog | undefined;

  private constructor(
    private readonly url: string,
    private readonly client: PgClient,
    private readonly schema: string,
  ) {
    this.origin = `database ${redactUrl(url)}`;
  }

  static async open(url: string, schema = "public"): Promise<DatabaseSource> {
    const client = await connect(url, {
      applicationName: "fitsfleet upgrade (source)",
    });
    for (const setting of COPY_SETTINGS) {
      await client.query(setting);
    }
    return new DatabaseSource(url, client, schema);
  }

  async catalog(): Promise<Catalog> {
    this.catalogCache ??= await readCatalog(
      this.client,
      this.origin,
      this.schema,
    );
    return this.catalogCache;
  }

  async rows(table: string): Promise<SourceRows> {
    const catalog = await this.catalog();
    const columns = catalog.tables.get(table)?.columns.map((c) => c.name) ?? [];
    // A connection of its own, so a COPY in flight never blocks catalog queries.
    const client = await connect(this.url, {
      applicationName: "fitsfleet upgrade (source copy)",
    });
    for (const setting of COPY_SETTINGS) {
      await client.query(setting);
    }
    const stream = client.query(
      copyTo(
        `COPY (SELECT ${columns.map((c) => quoteIdent(c, "column name")).join(", ")} FROM ${qualifiedName(this.schema, table)}) TO STDOUT`,
      ),
    );
    const finished = new Promise<void>((resolve, reject) => {
      stream.on("end", resolve);
      stream.on("error", reject);
    }).finally(() => client.end().catch(() => undefined));
    finished.catch(() => undefined);
    return {
      stream,
      columns,
      finished,
      stop: async () => {
        stream.destroy();
        await client.end().catch(() => undefined);
        return undefined;
      },
    };
  }

  async count(table: string): Promise<number> {
    const { rows } = await this.client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${qualifiedName(this.schema, table)}`,
    );
    return Number(rows[0]!.n);
  }

  async scan(table: string, columns: readonly string[]): Promise<TableScan> {
    const { rows } = await this.client.query<Record<string, string | null>>(
      `SELECT count(*)::text AS n${columns.map((c, i) => `, max(${quoteIdent(c, "column name")})::text AS m${i}`).join("")} FROM ${qualifiedName(this.schema, table)}`,
    );
    const row = rows[0]!;
    return {
      rows: Number(row.n),
      max: new Map(
        columns.map((c, i) => {
          const value = row[`m${i}`];
          return [
            c,
            value === null || value === undefined ? null : BigInt(value),
          ];
        }),
      ),
    };
  }

  missingSequenceValues(): string[] {
    return [];
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

export class DumpSource implements UpgradeSource {
  readonly kind = "dump";
  readonly origin: string;
  private catalogCache: DumpCatalog | undefined;
  private readonly workDir: string;

  constructor(
    private readonly path: string,
    private readonly schema = "public",
  ) {
    this.origin = path;
    this.workDir = makeWorkDir("fitsfleet-dump-");
  }

  async catalog(): Promise<DumpCatalog> {
    this.catalogCache ??= await readDumpCatalog(
      this.path,
      this.workDir,
      this.schema,
    );
    return this.catalogCache;
  }

  async rows(table: string): Promise<SourceRows> {
    const catalog = await this.catalog();
    const columns = catalog.tables.get(table)?.columns.map((c) => c.name) ?? [];
    const entry = catalog.toc.find(
      (e) =>
        e.kind === "TABLE DATA" && e.schema === this.schema && e.name === table,
    );
    if (entry === undefined) {
      throw new DumpError(
        this.path,
        `the archive defines table ${table} but holds no data for it`,
        "take the dump without --schema-only and without excluding that table's data",
      );
    }
    const data = streamTableData(this.path, this.workDir, entry);
    // The COPY header names the dump's columns; they must be the table's, in order.
    data.stream.once("data", () => {
      const found = data.stream.columns;
      if (found !== undefined && found.join(",") !== columns.join(",")) {
        data.stream.destroy(
          new Error(
            `${this.path}: the data of ${table} has columns (${found.join(", ")}) but its definition has (${columns.join(", ")})`,
          ),
        );
      }
    });
    const finished = Promise.all([
      data.finished,
      new Promise<void>((resolve, reject) => {
        data.stream.on("end", resolve);
        data.stream.on("error", reject);
      }),
    ]).then(() => undefined);
    finished.catch(() => undefined);
    return {
      stream: data.stream,
      columns,
      finished,
      stop: async () => {
        const failure = await data.stop();
        data.stream.destroy();
        return failure;
      },
    };
  }

  async count(table: string): Promise<number> {
    const source = await this.rows(table);
    let rows = 0;
    source.stream.on("data", (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) {
        rows++;
      }
    });
    await source.finished;
    return rows;
  }

  async scan(table: string, columns: readonly string[]): Promise<TableScan> {
    const source = await this.rows(table);
    const fields = columns.map((c) => source.columns.indexOf(c));
    const max = new Map<string, bigint | null>(columns.map((c) => [c, null]));
    let rows = 0;
    let partial = "";
    source.stream.setEncoding("utf8");
    source.stream.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      rows += lines.length;
      if (fields.length === 0) {
        return;
      }
      for (const line of lines) {
        const values = line.split("\t");
        fields.forEach((f, i) => {
          const text = values[f];
          // COPY text: \N is NULL; an integer column's value is its decimal digits.
          if (text === undefined || !/^-?\d+$/.test(text)) {
            return;
          }
          const value = BigInt(text);
          const name = columns[i]!;
          const current = max.get(name) ?? null;
          if (current === null || value > current) {
            max.set(name, value);
          }
        });
      }
    });
    await source.finished;
    return { rows, max };
  }

  missingSequenceValues(): string[] {
    return this.catalogCache?.missingSequenceValues ?? [];
  }

  async close(): Promise<void> {
    removeWorkDir(this.workDir);
  }
}
