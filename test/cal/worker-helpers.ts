/** What the calcache worker's tests share: a worker run, the queue, the cache against the evaluator. */
import { NOT_FAILED } from "../../lib/archive-writer.js";
import { calcacheRows, evaluateFrame } from "../../lib/cal/evaluate.js";
import type { AnyClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import { createLogger } from "../../lib/logger.js";
import { sortKey } from "../../lib/rebuild/names.js";
import { runCalcacheWorker } from "../../worker/calcache.js";
import type { IngestedFrame } from "../helpers/cal-archive.js";

export const logger = createLogger({ level: "error" });
export const PER_INSTRUMENT = 40;

export function worker(
  url: string,
  name: string,
  extra: { dependents?: boolean; batchSize?: number } = {},
) {
  return runCalcacheWorker({
    name,
    databaseUrl: url,
    concurrency: 1,
    empty: true,
    logger,
    idleMs: 50,
    ...extra,
  });
}

/** Queues every frame, as add_to_calcache_queue --all (without its filters) does. */
export async function queueAll(c: AnyClient): Promise<number[]> {
  const { rows } = await c.query<{ id: number; filename: string }>(
    `SELECT h.id, d.filename FROM header h JOIN diskfile d ON d.id = h.diskfile_id ORDER BY h.id`,
  );
  await c.query(
    `INSERT INTO calcachequeue (obs_hid, inprogress, fail_dt, added, sortkey, filename)
     SELECT id, false, $1, now(), sortkey, filename
       FROM unnest($2::int[], $3::text[], $4::text[]) AS q(id, filename, sortkey)`,
    [
      NOT_FAILED,
      rows.map((r) => r.id),
      rows.map((r) => r.filename),
      rows.map((r) => sortKey(r.filename)),
    ],
  );
  return rows.map((r) => r.id);
}

export type Rows = Map<number, string[]>;

/** calcache by frame: "caltype rank cal_hid", sorted. */
export async function cacheOf(c: AnyClient): Promise<Rows> {
  const { rows } = await c.query<{
    obs_hid: number;
    caltype: string;
    rank: number;
    cal_hid: number;
  }>("SELECT obs_hid, caltype::text AS caltype, rank, cal_hid FROM calcache");
  const out: Rows = new Map();
  for (const r of rows) {
    const list = out.get(r.obs_hid) ?? [];
    list.push(`${r.caltype} ${r.rank} ${r.cal_hid}`);
    out.set(r.obs_hid, list);
  }
  for (const list of out.values()) {
    list.sort();
  }
  return out;
}

/** The calcache row ids by frame (to tell a rewritten frame from an untouched one). */
export async function rowIdsOf(c: AnyClient): Promise<Map<number, string>> {
  const { rows } = await c.query<{ obs_hid: number; ids: string }>(
    "SELECT obs_hid, string_agg(id::text, ',' ORDER BY id) AS ids FROM calcache GROUP BY obs_hid",
  );
  return new Map(rows.map((r) => [r.obs_hid, r.ids]));
}

/** What evaluateFrame gives for every frame, as cacheOf shows it. */
export async function expectedOf(c: AnyClient): Promise<Rows> {
  const { rows } = await c.query<{ id: number }>(
    "SELECT id FROM header ORDER BY id",
  );
  return expectedFor(c, rows);
}

/**
 * The canonical frames' rows only: after ingest, an older version's rows
 * are left as they were (nothing reads them; dependents skip them).
 */
export async function canonicalOnly(c: AnyClient, rows: Rows): Promise<Rows> {
  const { rows: ids } = await c.query<{ id: number }>(
    "SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id WHERE d.canonical",
  );
  const keep = new Set(ids.map((r) => r.id));
  return new Map([...rows].filter(([id]) => keep.has(id)));
}

export async function expectedFor(
  c: AnyClient,
  rows: { id: number }[],
): Promise<Rows> {
  const out: Rows = new Map();
  for (const { id } of rows) {
    const evaluation = await evaluateFrame(c, id);
    const list = calcacheRows(evaluation)
      .map((r) => `${r.caltype} ${r.rank} ${r.calHid}`)
      .sort();
    if (list.length > 0) {
      out.set(id, list);
    }
  }
  return out;
}

export function differing(a: Rows, b: Rows): number[] {
  const ids = new Set([...a.keys(), ...b.keys()]);
  return [...ids]
    .filter((id) => (a.get(id) ?? []).join("|") !== (b.get(id) ?? []).join("|"))
    .sort((x, y) => x - y);
}

export async function queueState(c: AnyClient) {
  const { rows } = await c.query<{
    obs_hid: number;
    failed: boolean;
    inprogress: boolean | null;
    error: string | null;
  }>(
    `SELECT obs_hid, fail_dt <> $1 AS failed, inprogress, error
       FROM calcachequeue ORDER BY obs_hid, id`,
    [NOT_FAILED],
  );
  return rows;
}

/** A copy of a calibration frame's rows, to ingest again as a new file at another time. */
export async function copyOf(
  c: AnyClient,
  headerId: number,
  name: string,
  ut: string,
): Promise<IngestedFrame> {
  const { rows } = await c.query<{
    h: Record<string, string | number | boolean | null>;
    g: Record<string, string | number | boolean | null> | null;
  }>(
    `SELECT row_to_json(h) AS h, (SELECT row_to_json(g) FROM gmos g WHERE g.header_id = h.id ORDER BY g.id LIMIT 1) AS g
       FROM header h WHERE h.id = $1`,
    [headerId],
  );
  const {
    id: _id,
    diskfile_id: _d,
    ut_datetime_secs: _s,
    ...header
  } = rows[0]!.h;
  const inst = rows[0]!.g;
  if (inst !== null) {
    delete inst.id;
    delete inst.header_id;
  }
  return { name, table: "gmos", header: { ...header, ut_datetime: ut }, inst };
}

export async function until<T>(
  probe: () => Promise<T | undefined>,
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > end) {
      throw new Error("gave up waiting");
    }
    await sleep(50);
  }
}
