/**
 * Finds the system's PostgreSQL and Redis programs. Both the embedded stack
 * and anything that runs pg_dump or pg_restore against any server need them,
 * so they belong to neither lib/stack nor lib/db. Debian keeps the server
 * programs of PostgreSQL in /usr/lib/postgresql/<major>/bin, off PATH, so we
 * look on PATH first and then there (newest major first). All server programs
 * come from one directory, so initdb and pg_ctl always match. Debian puts
 * pgbouncer in /usr/sbin, which is not on a normal user's PATH.
 */
import {
  accessSync,
  constants,
  existsSync,
  readdirSync,
  realpathSync,
} from "node:fs";
import { delimiter, dirname, join } from "node:path";

import { MissingDependencyError } from "./errors.js";

function onPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") {
      continue;
    }
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The directory holding initdb, pg_ctl, postgres, pg_dump and pg_restore of one version. */
export function postgresBinDir(base = "/usr/lib/postgresql"): string {
  const initdb = onPath("initdb");
  if (initdb !== undefined) {
    return dirname(realpathSync(initdb));
  }
  const majors = existsSync(base)
    ? readdirSync(base)
        .filter(
          (v) => /^\d+$/.test(v) && existsSync(join(base, v, "bin", "initdb")),
        )
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = majors[0];
  if (newest === undefined) {
    throw new MissingDependencyError("initdb", "postgresql", {
      context: { searched: ["PATH", `${base}/*/bin`] },
    });
  }
  return join(base, newest, "bin");
}

export function postgresProgram(
  program: "initdb" | "pg_ctl" | "postgres" | "pg_dump" | "pg_restore" | "psql",
): string {
  const path = join(postgresBinDir(), program);
  if (!existsSync(path)) {
    throw new MissingDependencyError(
      program,
      program === "psql" ? "postgresql-client" : "postgresql",
    );
  }
  return path;
}

/** Throws MissingDependencyError before anything is started if a server program is missing. */
export function checkServerPrograms(): void {
  postgresProgram("initdb");
  postgresProgram("pg_ctl");
  redisServerProgram();
}

export function redisServerProgram(): string {
  const found = onPath("redis-server");
  if (found === undefined) {
    throw new MissingDependencyError("redis-server", "redis-server");
  }
  return found;
}

export function pgbouncerProgram(): string {
  const found =
    onPath("pgbouncer") ??
    (existsSync("/usr/sbin/pgbouncer") ? "/usr/sbin/pgbouncer" : undefined);
  if (found === undefined) {
    throw new MissingDependencyError("pgbouncer", "pgbouncer");
  }
  return found;
}
