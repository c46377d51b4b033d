/**
 * A connection pooler in front of a PostgreSQL server: Debian's pgbouncer on
 * a loopback port, with its ini, user list, pid file and log in a folder of
 * ours. In transaction pooling a fleet of hundreds of workers, each holding
 * a connection only to claim and to write, reaches the server through at
 * most `defaultPoolSize` backends per database.
 *
 * Transaction pooling hands a client's next transaction to whichever server
 * connection is free, so nothing may outlive a transaction: no session-level
 * advisory lock, SET, temporary table, LISTEN or named prepared statement.
 * The ingest and preview workers keep none (transaction-level locks, the
 * driver's unnamed statements); `db init` (a session lock around a
 * no-transaction migration) and `rebuild enqueue` (a session's temporary
 * table) connect to the server itself (docs/BENCHMARKS.md, "The central
 * database at fleet scale").
 *
 * pgbouncer refuses to run as root, so as root it runs as the postgres user,
 * as the cluster does, and its folder belongs to that user.
 */
import {
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";

import { EXIT, FitsfleetError, PreconditionError } from "../errors.js";
import { processAlive, run, sleep } from "../exec.js";
import { pgbouncerProgram } from "../programs.js";
import { serverOwner } from "./postgres.js";

export interface PgbouncerOptions {
  /** Created if missing; the parent folders must let the postgres user through when we are root. */
  folder: string;
  /** On 127.0.0.1. */
  port: number;
  /** Where server connections go; the password is also what clients log in with. */
  server: { host: string; port: number; user: string; password: string };
  poolMode?: "session" | "transaction" | "statement";
  /** Server connections per database and user. */
  defaultPoolSize?: number;
  maxClientConn?: number;
}

export function pgbouncerPaths(folder: string): {
  ini: string;
  users: string;
  pid: string;
  log: string;
} {
  return {
    ini: join(folder, "pgbouncer.ini"),
    users: join(folder, "userlist.txt"),
    pid: join(folder, "pgbouncer.pid"),
    log: join(folder, "pgbouncer.log"),
  };
}

/** A URL for `database` through the pooler (the admin console is the database `pgbouncer`). */
export function pgbouncerUrl(
  options: Pick<PgbouncerOptions, "port" | "server">,
  database: string,
): string {
  const { user, password } = options.server;
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${encodeURIComponent(database)}`;
}

/** Starts pgbouncer as a daemon and waits until it accepts connections; returns its pid. */
export async function startPgbouncer(
  options: PgbouncerOptions,
): Promise<number> {
  const program = pgbouncerProgram(); // before anything is written
  const paths = pgbouncerPaths(options.folder);
  const { server } = options;
  mkdirSync(options.folder, { recursive: true, mode: 0o700 });
  // Every database name falls through to the server: a benchmark or a
  // test makes databases as it goes.
  const ini = [
    "[databases]",
    `* = host=${server.host} port=${server.port}`,
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${options.port}`,
    "unix_socket_dir =",
    "auth_type = scram-sha-256",
    `auth_file = ${paths.users}`,
    `admin_users = ${server.user}`,
    `pidfile = ${paths.pid}`,
    `logfile = ${paths.log}`,
    `pool_mode = ${options.poolMode ?? "transaction"}`,
    `default_pool_size = ${options.defaultPoolSize ?? 8}`,
    `max_client_conn = ${options.maxClientConn ?? 1000}`,
    // A fleet connects and disconnects all the time (its pools close idle
    // connections): a log line for each would be most of the log.
    "log_connections = 0",
    "log_disconnections = 0",
  ];
  const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
  const owner = serverOwner();
  for (const [file, text] of [
    [paths.ini, `${ini.join("\n")}\n`],
    // A plain password here lets pgbouncer log in to the server with SCRAM too.
    [paths.users, `${quote(server.user)} ${quote(server.password)}\n`],
  ] as const) {
    writeFileSync(file, text, { mode: 0o600 });
  }
  if (owner !== undefined) {
    for (const path of [options.folder, paths.ini, paths.users]) {
      chownSync(path, owner.uid, owner.gid);
    }
  }
  const args = ["-d", paths.ini];
  try {
    await (owner === undefined
      ? run(program, args, {
          debianPackage: "pgbouncer",
          purpose: `start pgbouncer on port ${options.port}`,
        })
      : run("runuser", ["-u", "postgres", "--", program, ...args], {
          debianPackage: "util-linux",
          purpose: `start pgbouncer on port ${options.port}`,
        }));
  } catch (error) {
    if (owner !== undefined && !existsSync(paths.log)) {
      throw new PreconditionError(
        `pgbouncer runs as user postgres and cannot use ${options.folder}`,
        {
          cause: error,
          suggestion:
            "choose a folder whose parent folders the postgres user can enter (0711 or wider)",
        },
      );
    }
    throw error;
  }
  const deadline = Date.now() + 15_000;
  for (;;) {
    const pid = pgbouncerPid(options.folder);
    if (pid !== undefined && (await accepts(options.port))) {
      return pid;
    }
    if (Date.now() > deadline) {
      const tail = existsSync(paths.log)
        ? readFileSync(paths.log, "utf8")
            .trim()
            .split("\n")
            .slice(-5)
            .join("\n")
        : "";
      throw new FitsfleetError(
        "pgbouncer-start",
        EXIT.failed,
        `pgbouncer did not start on 127.0.0.1:${options.port}\n${tail}`,
        { suggestion: `see ${paths.log}` },
      );
    }
    await sleep(50);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export function pgbouncerPid(folder: string): number | undefined {
  const file = pgbouncerPaths(folder).pid;
  if (!existsSync(file)) {
    return undefined;
  }
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 && processAlive(pid)
    ? pid
    : undefined;
}

/**
 * Immediate shutdown (SIGTERM: clients are disconnected, open transactions
 * roll back on the server), then up to 10 s for the process to go; SIGKILL
 * after that.
 */
export async function stopPgbouncer(folder: string): Promise<void> {
  const pid = pgbouncerPid(folder);
  if (pid === undefined) {
    return;
  }
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 10_000;
  while (processAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      break;
    }
    await sleep(20);
  }
}
