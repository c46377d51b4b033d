/**
 * Only one run acts on a database at a time: its coordinator's connection
 * holds a session advisory lock (RUN_LOCK_KEY) for as long as it lives, so
 * a killed coordinator frees it at once. The connection's application_name
 * carries the run's id, which is how a second run names the one in its way.
 */
import type { AnyClient } from "../db/connect.js";
import { RUN_LOCK_KEY } from "../db/locks.js";
import { PreconditionError } from "../errors.js";

export const RUN_APPLICATION_PREFIX = "fitsfleet rebuild run ";

export interface LockHolder {
  runId: string | undefined;
  pid: number;
  since: string | null;
  host: string | null;
}

/** Who holds the run lock on this database, if anyone. */
export async function runLockHolder(
  client: AnyClient,
): Promise<LockHolder | undefined> {
  const { rows } = await client.query<{
    pid: number;
    application_name: string;
    backend_start: Date | null;
    client_addr: string | null;
  }>(
    `SELECT a.pid, a.application_name, a.backend_start, a.client_addr::text
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint
        AND a.pid <> pg_backend_pid()`,
    [RUN_LOCK_KEY],
  );
  const r = rows[0];
  if (r === undefined) {
    return undefined;
  }
  return {
    runId: r.application_name.startsWith(RUN_APPLICATION_PREFIX)
      ? r.application_name.slice(RUN_APPLICATION_PREFIX.length)
      : undefined,
    pid: r.pid,
    since: r.backend_start?.toISOString() ?? null,
    host: r.client_addr,
  };
}

/** Takes the run lock for this session, or refuses naming the run that holds it. */
export async function takeRunLock(client: AnyClient): Promise<void> {
  const { rows } = await client.query<{ ok: boolean }>(
    "SELECT pg_try_advisory_lock($1::bigint) AS ok",
    [RUN_LOCK_KEY],
  );
  if (rows[0]?.ok === true) {
    return;
  }
  const holder = await runLockHolder(client);
  throw new PreconditionError(
    holder === undefined
      ? "another rebuild run is acting on this database (it has just ended, or its holder is not visible to this user)"
      : `run ${holder.runId ?? "(unnamed)"} is acting on this database (backend pid ${holder.pid}, connected since ${holder.since ?? "unknown"})`,
    {
      suggestion:
        "only one run may act on a database at a time: wait for it (`fitsfleet rebuild runs show RUN`), or stop it and continue it with `fitsfleet rebuild run --resume RUN`",
      context: { activeRun: holder?.runId },
    },
  );
}

export async function releaseRunLock(client: AnyClient): Promise<void> {
  await client.query("SELECT pg_advisory_unlock($1::bigint)", [RUN_LOCK_KEY]);
}
