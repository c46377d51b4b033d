/**
 * The rebuild's own tables and how its result replaces the cache.
 *
 * Work happens in the `fitsfleet` schema, so a rebuild that dies leaves
 * nothing in `public` for `db diff` to trip on (the next rebuild drops it):
 * - `calcache_frames`: the frames this rebuild covers, fixed when it starts;
 * - `calcache_work` (unlogged): each search's ranked candidates;
 * - `calcache_new`: the new cache, built like `public.calcache` with the
 *   schema's index and constraint names (they are free in this schema);
 * - `calcache_cand_<instrument table>` (unlogged): the base query's join
 *   and its constant clauses, done once (see `buildCandidateTable`).
 *
 * Replacing, in one transaction either way:
 * - swap (a full rebuild): the rows of frames the rebuild does not cover are
 *   copied into `calcache_new` under an EXCLUSIVE lock (writers wait,
 *   readers go on), the old table is dropped and the new one moved to
 *   `public` and renamed `calcache`; the id sequence is handed over.
 *   A reader waiting for the old table's lock resolves the name again and
 *   reads the new table.
 * - in place (`--instrument`, `--since`): the covered frames' rows are
 *   deleted and the new ones inserted, so every other frame's rows are
 *   untouched, and readers see the old rows until the commit.
 * Either way the covered frames' calcachequeue entries that were pending
 * when the rebuild started are deleted in the same transaction.
 */
import { NOT_FAILED } from "../../archive-writer.js";
import { type AnyClient, connect } from "../../db/connect.js";
import { quoteIdent } from "../../db/sql.js";
import { BASE_CLAUSES, baseFrom } from "../core/query.js";
import { INSTRUMENT_RULES } from "../rules/index.js";
import { eachOn } from "./spread.js";

/**
 * A calcachequeue entry (alias q) still waiting: ingest and the workers
 * mark "not failed" with the reference's far-future fail_dt; NULL is taken
 * as waiting too.
 */
export const PENDING_ENTRY = `(q.fail_dt IS NULL OR q.fail_dt = '${NOT_FAILED}'::timestamp)`;

/** A connection of the rebuild's, named so that `pg_stat_activity` shows whose it is. */
export function rebuildConnection(url: string): Promise<AnyClient> {
  return connect(url, { applicationName: "fitsfleet rebuild calcache" });
}

export const WORK_SCHEMA = "fitsfleet";
export const FRAMES_TABLE = `${WORK_SCHEMA}.calcache_frames`;
export const WORK_TABLE = `${WORK_SCHEMA}.calcache_work`;
export const NEW_TABLE = `${WORK_SCHEMA}.calcache_new`;

/** The pre-joined candidates of one instrument table. */
export function candidateTable(table: string): string {
  return `${WORK_SCHEMA}.${quoteIdent(`calcache_cand_${table}`, "instrument table")}`;
}

export async function dropWorkTables(client: AnyClient): Promise<void> {
  const candidates = INSTRUMENT_RULES.map((r) => candidateTable(r.table));
  await client.query(
    `DROP TABLE IF EXISTS ${[FRAMES_TABLE, WORK_TABLE, NEW_TABLE, ...candidates].join(", ")}`,
  );
}

/**
 * Every search of an instrument reads the same join (instrument table,
 * header, diskfile, processingtag) under the same three clauses
 * (`BASE_CLAUSES`); done in each of a rebuild's statements, it was more
 * than half of their time (a time-range scan of all of header for a few
 * hundred rows). Done once here, with every column of the four tables
 * named `"alias.column"`, so a statement's clauses read the same columns
 * (`shapeStatement`'s `candidates`). Stored in the order of the commonest
 * constant clauses (reduction, observation type, then time) and indexed
 * on them, so a statement reads only its own rows.
 */
export async function buildCandidateTable(
  client: AnyClient,
  table: string,
): Promise<void> {
  const target = candidateTable(table);
  const { rows } = await client.query<{ alias: string; name: string }>(
    `SELECT v.alias, a.attname AS name
       FROM (VALUES ('i', $1::regclass, 1), ('h', 'public.header'::regclass, 2),
                    ('d', 'public.diskfile'::regclass, 3),
                    ('pt', 'public.processingtag'::regclass, 4)) AS v(alias, rel, n)
       JOIN pg_attribute a ON a.attrelid = v.rel AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY v.n, a.attnum`,
    [`public.${quoteIdent(table, "instrument table")}`],
  );
  const columns = rows.map(
    ({ alias, name }) =>
      `${alias}.${quoteIdent(name, "column name")} AS "${alias}.${name}"`,
  );
  await client.query(`DROP TABLE IF EXISTS ${target}`);
  await client.query(
    `CREATE UNLOGGED TABLE ${target} AS
     SELECT ${columns.join(", ")}
       FROM ${baseFrom(table)}
      WHERE ${BASE_CLAUSES.join(" AND ")}
      ORDER BY h.reduction, h.observation_type, h.ut_datetime`,
  );
  await client.query(
    `CREATE INDEX ON ${target} ("h.reduction", "h.observation_type", "h.ut_datetime")`,
  );
  await client.query(
    `CREATE INDEX ON ${target} ("h.observation_type", "h.ut_datetime")`,
  );
  await client.query(`ANALYZE ${target}`);
}

export async function createWorkTables(client: AnyClient): Promise<void> {
  await dropWorkTables(client);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${WORK_SCHEMA}`);
  await client.query(
    `CREATE UNLOGGED TABLE ${FRAMES_TABLE} (hid integer PRIMARY KEY, instrument text)`,
  );
  await client.query(
    `CREATE UNLOGGED TABLE ${WORK_TABLE} (
       obs_hid integer NOT NULL,
       caltype caltype NOT NULL,
       part smallint NOT NULL,
       rn bigint NOT NULL,
       cal_hid integer NOT NULL,
       weave_limit integer)`,
  );
}

/**
 * Turns the work rows into calcache rows, as `calcacheRows` does: an
 * interleave woven (first of each part in turn) and cut, duplicates
 * dropped with the first kept, ranks 0…, processed_bpm at −1. The frames
 * are split between the clients (by obs_hid), one statement each, at once.
 */
export async function buildNewTable(clients: AnyClient[]): Promise<number> {
  await clients[0]!.query(
    `CREATE TABLE ${NEW_TABLE} (
       id bigint NOT NULL DEFAULT nextval('public.calcache_id_seq'::regclass),
       obs_hid integer NOT NULL,
       cal_hid integer NOT NULL,
       rank smallint NOT NULL,
       caltype public.caltype)`,
  );
  let written = 0;
  const parts = clients.map((_, j) => j);
  await eachOn(clients, parts, async (client, part) => {
    const result = await client.query(
      `INSERT INTO ${NEW_TABLE} (obs_hid, cal_hid, rank, caltype)
       SELECT obs_hid, cal_hid,
              CASE WHEN caltype = 'processed_bpm' THEN -1
                   ELSE row_number() OVER (PARTITION BY obs_hid, caltype ORDER BY first_pos) - 1 END,
              caltype
         FROM (SELECT obs_hid, caltype, cal_hid, min(pos) AS first_pos
                 FROM (SELECT obs_hid, caltype, cal_hid, weave_limit,
                              row_number() OVER (PARTITION BY obs_hid, caltype ORDER BY rn, part) AS pos
                         FROM ${WORK_TABLE}
                        WHERE obs_hid % $1 = $2) woven
                WHERE weave_limit IS NULL OR pos <= weave_limit
                GROUP BY obs_hid, caltype, cal_hid) deduplicated
        ORDER BY obs_hid, caltype, first_pos`,
      [parts.length, part],
    );
    written += result.rowCount ?? 0;
  });
  return written;
}

/**
 * The schema's indexes and constraints, named as the schema names them.
 * The five indexes are built at once, one per connection (CREATE INDEX
 * takes a SHARE lock, which does not conflict with itself); the primary
 * key then takes its index as it is, and the foreign keys, whose locks
 * conflict with each other, are checked one after the other.
 */
export async function indexNewTable(clients: AnyClient[]): Promise<void> {
  const indexes = [
    `CREATE UNIQUE INDEX calcache_pkey ON ${NEW_TABLE} USING btree (id)`,
    `CREATE INDEX ix_calcache_cal_hid ON ${NEW_TABLE} USING btree (cal_hid)`,
    `CREATE INDEX ix_calcache_obs_hid ON ${NEW_TABLE} USING btree (obs_hid)`,
    `CREATE INDEX ix_calcache_caltype ON ${NEW_TABLE} USING btree (caltype)`,
    `CREATE INDEX ix_calcache_rank ON ${NEW_TABLE} USING btree (rank)`,
  ];
  await eachOn(clients, indexes, async (client, statement) => {
    await client.query(statement);
  });
  const main = clients[0]!;
  for (const statement of [
    `ALTER TABLE ${NEW_TABLE} ADD CONSTRAINT calcache_pkey PRIMARY KEY USING INDEX calcache_pkey`,
    `ALTER TABLE ${NEW_TABLE} ADD CONSTRAINT calcache_cal_hid_fkey FOREIGN KEY (cal_hid) REFERENCES public.header(id)`,
    `ALTER TABLE ${NEW_TABLE} ADD CONSTRAINT calcache_obs_hid_fkey FOREIGN KEY (obs_hid) REFERENCES public.header(id)`,
  ]) {
    await main.query(statement);
  }
}

/**
 * Called inside the replacing transaction: `locked` once the cache is
 * locked against writers (readers still read the old rows), `replaced`
 * just before the commit. Tests hold the transaction there.
 */
export type ReplaceHook = (stage: "locked" | "replaced") => Promise<void>;

export interface ReplaceResult {
  deleted: number;
  kept: number;
  queueCleared: number;
}

/** Pending queue entries of covered frames, queued before the rebuild began. */
async function clearQueue(
  client: AnyClient,
  queueHighWater: number,
): Promise<number> {
  const result = await client.query(
    `DELETE FROM public.calcachequeue q
      USING ${FRAMES_TABLE} f
      WHERE q.obs_hid = f.hid AND q.id <= $1 AND ${PENDING_ENTRY}`,
    [queueHighWater],
  );
  return result.rowCount ?? 0;
}

export async function swapIn(
  client: AnyClient,
  queueHighWater: number,
  hook?: ReplaceHook,
): Promise<ReplaceResult> {
  await client.query("LOCK TABLE public.calcache IN EXCLUSIVE MODE");
  await hook?.("locked");
  const deleted = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM public.calcache c
      WHERE EXISTS (SELECT 1 FROM ${FRAMES_TABLE} f WHERE f.hid = c.obs_hid)`,
  );
  const kept = await client.query(
    `INSERT INTO ${NEW_TABLE} (id, obs_hid, cal_hid, rank, caltype)
     SELECT c.id, c.obs_hid, c.cal_hid, c.rank, c.caltype
       FROM public.calcache c
      WHERE NOT EXISTS (SELECT 1 FROM ${FRAMES_TABLE} f WHERE f.hid = c.obs_hid)`,
  );
  const queueCleared = await clearQueue(client, queueHighWater);
  await client.query("ALTER SEQUENCE public.calcache_id_seq OWNED BY NONE");
  await client.query("DROP TABLE public.calcache");
  await client.query(`ALTER TABLE ${NEW_TABLE} SET SCHEMA public`);
  await client.query("ALTER TABLE public.calcache_new RENAME TO calcache");
  await client.query(
    "ALTER SEQUENCE public.calcache_id_seq OWNED BY public.calcache.id",
  );
  await hook?.("replaced");
  return {
    deleted: Number(deleted.rows[0]!.n),
    kept: kept.rowCount ?? 0,
    queueCleared,
  };
}

export async function replaceInPlace(
  client: AnyClient,
  queueHighWater: number,
  hook?: ReplaceHook,
): Promise<ReplaceResult> {
  await client.query("LOCK TABLE public.calcache IN EXCLUSIVE MODE");
  await hook?.("locked");
  const deleted = await client.query(
    `DELETE FROM public.calcache c USING ${FRAMES_TABLE} f WHERE c.obs_hid = f.hid`,
  );
  await client.query(
    `INSERT INTO public.calcache (obs_hid, cal_hid, rank, caltype)
     SELECT obs_hid, cal_hid, rank, caltype FROM ${NEW_TABLE} ORDER BY id`,
  );
  const queueCleared = await clearQueue(client, queueHighWater);
  await hook?.("replaced");
  return { deleted: deleted.rowCount ?? 0, kept: 0, queueCleared };
}
