/**
 * Hand-made calibration scenarios: minimal file/diskfile/header/instrument
 * rows with only the columns the rules read, each frame under a label so a
 * test states its expected associations by name. A scene lives in one
 * transaction that is rolled back when the test ends, so the tests of a file
 * share one database.
 */
import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";

import { evaluateFrame, type FrameEvaluation } from "../../lib/cal/evaluate.js";
import type { CalType } from "../../lib/cal/rules/common.js";
import { connect, type PgClient, withClient } from "../../lib/db/connect.js";
import { utDatetimeSecs } from "../../lib/gemini/rows.js";
import { typesText } from "../../lib/gemini/tags.js";
import { databaseUrl, testEnv } from "./db.js";

export type Cell = string | number | boolean | null;

export interface FrameSpec {
  /** header columns; ut_datetime as 'YYYY-MM-DDTHH:MM:SS[.ffffff]'. */
  header?: Record<string, Cell>;
  /** The instrument row's columns; `null` for no instrument row at all. */
  inst?: Record<string, Cell> | null;
  /** Written to header.types as the reference's set repr, unless header.types is given. */
  tags?: string[];
  /** false: an older version of the file (not canonical). */
  canonical?: boolean;
  /** Defaults to an increasing clock, so later frames are newer. */
  entrytime?: string;
}

export type InstrumentTable = "gmos" | "niri" | "f2" | "gnirs";

export interface SceneDatabase {
  client: PgClient;
  close(): Promise<void>;
}

/**
 * One database per test file (cloned from the template), with one
 * connection; every scene is a transaction on it. Open in `before`, close in
 * `after`.
 */
export async function openSceneDatabase(): Promise<SceneDatabase> {
  const env = testEnv();
  const name = `t_${randomBytes(6).toString("hex")}`;
  await withClient(env.adminUrl, (c) =>
    c.query(`CREATE DATABASE ${name} TEMPLATE ${env.template}`),
  );
  const client = await connect(databaseUrl(name));
  return {
    client,
    close: async () => {
      await client.end();
      await withClient(env.adminUrl, (c) =>
        c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
      );
    },
  };
}

export class Scene {
  private readonly labels = new Map<number, string>();
  private readonly ids = new Map<string, number>();
  private clock = 0;

  constructor(readonly client: PgClient) {}

  /** Inserts a frame and returns its header id. */
  async add(
    label: string,
    table: InstrumentTable,
    base: FrameSpec,
    spec: FrameSpec = {},
  ): Promise<number> {
    if (this.ids.has(label)) {
      throw new Error(`label ${label} used twice`);
    }
    const header: Record<string, Cell> = {
      processing: "Raw",
      qa_state: "Pass",
      engineering: false,
      reduction: "RAW",
      ...base.header,
      ...spec.header,
    };
    const tags = spec.tags ?? base.tags ?? [];
    if (!("types" in header)) {
      header.types = typesText(new Set(tags));
    }
    const ut = header.ut_datetime;
    if (typeof ut === "string" && !("ut_datetime_secs" in header)) {
      header.ut_datetime_secs = utDatetimeSecs(ut);
    }
    this.clock += 1;
    const entrytime =
      spec.entrytime ??
      new Date(Date.UTC(2024, 0, 1) + this.clock * 1000).toISOString();
    const { rows: file } = await this.client.query<{ id: number }>(
      "INSERT INTO file (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
      [`${label}.fits`],
    );
    const { rows: disk } = await this.client.query<{ id: number }>(
      `INSERT INTO diskfile (file_id, filename, path, present, canonical, entrytime)
       VALUES ($1, $2, '', $3, $3, $4) RETURNING id`,
      [file[0]!.id, `${label}.fits`, spec.canonical ?? true, entrytime],
    );
    const hid = await this.insertRow("header", {
      diskfile_id: disk[0]!.id,
      ...header,
    });
    const inst =
      spec.inst === null || base.inst === null
        ? null
        : { ...base.inst, ...spec.inst };
    if (inst !== null) {
      await this.insertRow(table, { header_id: hid, ...inst });
    }
    this.ids.set(label, hid);
    this.labels.set(hid, label);
    return hid;
  }

  private async insertRow(
    table: string,
    row: Record<string, Cell>,
  ): Promise<number> {
    const columns = Object.keys(row);
    const { rows } = await this.client.query<{ id: number }>(
      `INSERT INTO ${table} (${columns.join(", ")})
       VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")}) RETURNING id`,
      Object.values(row),
    );
    return rows[0]!.id;
  }

  async processingTag(
    tag: string,
    priority: number,
    published: boolean | null,
  ): Promise<void> {
    await this.client.query(
      "INSERT INTO processingtag (tag, domain, priority, published) VALUES ($1, 'archive', $2, $3)",
      [tag, priority, published],
    );
  }

  id(label: string): number {
    const id = this.ids.get(label);
    if (id === undefined) {
      throw new Error(`no frame labelled ${label}`);
    }
    return id;
  }

  label(id: number): string {
    return this.labels.get(id) ?? `#${id}`;
  }

  async evaluate(label: string): Promise<FrameEvaluation> {
    return evaluateFrame(this.client, this.id(label));
  }

  /** The frame's associations by caltype, as labels in rank order. */
  async associations(
    label: string,
  ): Promise<Partial<Record<CalType, string[]>>> {
    const evaluation = await this.evaluate(label);
    if (evaluation.outcome !== "associated") {
      throw new Error(
        `${label}: ${evaluation.outcome} (${evaluation.reason ?? ""})`,
      );
    }
    return Object.fromEntries(
      evaluation.caltypes.map((c) => [
        c.caltype,
        c.calHids.map((id) => this.label(id)),
      ]),
    );
  }

  /** One caltype's associations, as labels in rank order. */
  async of(label: string, caltype: CalType): Promise<string[]> {
    const all = await this.associations(label);
    const found = all[caltype];
    if (found === undefined) {
      throw new Error(`${caltype} does not apply to ${label}`);
    }
    return found;
  }
}

/** A scene in its own transaction on `client`, rolled back after the test. */
export async function scene(t: TestContext, client: PgClient): Promise<Scene> {
  await client.query("BEGIN");
  t.after(() => client.query("ROLLBACK"));
  return new Scene(client);
}

/** A timestamp `days` (fractional allowed) after `iso`, in the same format. */
export function plusDays(iso: string, days: number): string {
  const [whole, fraction = ""] = iso.split(".");
  const ms = Date.parse(`${whole}Z`) + Math.round(days * 86_400_000);
  const base = new Date(ms).toISOString().slice(0, 19);
  return fraction === "" ? base : `${base}.${fraction}`;
}

/** `base` with `over`'s header and instrument columns on top (tags replace). */
export function like(base: FrameSpec, over: FrameSpec): FrameSpec {
  return {
    ...base,
    ...over,
    header: { ...base.header, ...over.header },
    inst:
      over.inst === null || base.inst === null
        ? null
        : { ...base.inst, ...over.inst },
  };
}
