/**
 * A throwaway PostgreSQL cluster in a folder of ours, on a loopback port.
 *
 * initdb and postgres refuse to run as root, so as root every server program
 * runs through `runuser -u postgres` and the cluster folder belongs to that user.
 * Access is by password (scram-sha-256) over TCP on 127.0.0.1 only.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

import {
  EXIT,
  FitsfleetError,
  MissingDependencyError,
  PreconditionError,
} from "../errors.js";
import { processAlive, run, sleep } from "../exec.js";
import { postgresProgram } from "../programs.js";

export const SUPERUSER = "fitsfleet";

export interface PostgresSettings {
  /** Trade durability for speed (fsync off): for tests and benchmarks' scratch data only. */
  unsafeFast?: boolean;
  /** Load pg_stat_statements, so a benchmark can count the statements (round trips) a run makes. */
  statementStats?: boolean;
}

export interface Owner {
  uid: number;
  gid: number;
}

/** The system user postgres when we are root (servers refuse to run as root), else undefined. */
export function serverOwner(): Owner | undefined {
  if (process.getuid?.() !== 0) {
    return undefined;
  }
  try {
    const uid = Number(
      execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim(),
    );
    const gid = Number(
      execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim(),
    );
    return { uid, gid };
  } catch {
    throw new MissingDependencyError("user postgres", "postgresql", {
      suggestion:
        "as root the server must run as the system user postgres, which Debian's postgresql package creates: `apt-get install postgresql`",
    });
  }
}

/** Runs a server program, as user postgres when we are root. */
function runServerProgram(
  program: string,
  args: string[],
  purpose: string,
): Promise<unknown> {
  const owner = serverOwner();
  return owner === undefined
    ? run(program, args, { debianPackage: "postgresql", purpose })
    : run("runuser", ["-u", "postgres", "--", program, ...args], {
        debianPackage: "util-linux",
        purpose,
      });
}

export function postgresPaths(folder: string): {
  folder: string;
  data: string;
  log: string;
} {
  return {
    folder,
    data: join(folder, "data"),
    log: join(folder, "postgres.log"),
  };
}

/** Creates the cluster with a superuser and password; settings that never change go into postgresql.conf. */
export async function initCluster(
  folder: string,
  password: string,
  settings: PostgresSettings = {},
): Promise<void> {
  const paths = postgresPaths(folder);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const owner = serverOwner();
  if (owner !== undefined) {
    chownSync(folder, owner.uid, owner.gid);
    try {
      await run("runuser", ["-u", "postgres", "--", "test", "-w", folder]);
    } catch {
      throw new PreconditionError(
        `PostgreSQL runs as user postgres and cannot write to ${folder}`,
        {
          suggestion:
            "choose a --stack-dir whose parent folders the postgres user can enter (the default under /tmp works)",
        },
      );
    }
  }
  const pwfile = join(folder, ".pwfile");
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner !== undefined) {
    chownSync(pwfile, owner.uid, owner.gid);
  }
  try {
    await runServerProgram(
      postgresProgram("initdb"),
      [
        "-D",
        paths.data,
        "-U",
        SUPERUSER,
        `--pwfile=${pwfile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
      ],
      "initialise the PostgreSQL cluster",
    );
  } finally {
    rmSync(pwfile, { force: true });
  }
  const conf = [
    "# fitsfleet embedded stack",
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${folder}'`,
    "max_connections = 200",
    "shared_buffers = 256MB",
    "log_min_messages = warning",
    ...(settings.unsafeFast === true
      ? ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
      : []),
    ...(settings.statementStats === true
      ? [
          "shared_preload_libraries = 'pg_stat_statements'",
          "pg_stat_statements.track = top",
          "pg_stat_statements.track_utility = on",
        ]
      : []),
  ];
  writeFileSync(join(paths.data, "postgresql.conf"), `\n${conf.join("\n")}\n`, {
    flag: "a",
  });
}

export async function startCluster(
  folder: string,
  port: number,
): Promise<void> {
  const paths = postgresPaths(folder);
  try {
    await runServerProgram(
      postgresProgram("pg_ctl"),
      [
        "-D",
        paths.data,
        "-l",
        paths.log,
        "-w",
        "-t",
        "60",
        "-o",
        `-p ${port}`,
        "start",
      ],
      `start PostgreSQL on port ${port}`,
    );
  } catch (error) {
    const log = existsSync(paths.log)
      ? readFileSync(paths.log, "utf8").trim().split("\n").slice(-5).join("\n")
      : "";
    throw new FitsfleetError(
      "postgres-start",
      EXIT.failed,
      `PostgreSQL did not start on 127.0.0.1:${port}\n${log}`,
      {
        cause: error,
        suggestion: `see ${paths.log}`,
      },
    );
  }
}

export async function stopCluster(folder: string): Promise<void> {
  const pid = clusterPid(folder);
  if (pid === undefined) {
    return;
  }
  await runServerProgram(
    postgresProgram("pg_ctl"),
    ["-D", postgresPaths(folder).data, "-m", "fast", "-w", "-t", "60", "stop"],
    "stop PostgreSQL",
  );
  // pg_ctl returns when postmaster.pid is gone, a moment before the process exits.
  const deadline = Date.now() + 10_000;
  while (processAlive(pid) && Date.now() < deadline) {
    await sleep(20);
  }
}

/** The postmaster's pid if it is running, from postmaster.pid. */
export function clusterPid(folder: string): number | undefined {
  const pidFile = join(postgresPaths(folder).data, "postmaster.pid");
  if (!existsSync(pidFile)) {
    return undefined;
  }
  const pid = Number(readFileSync(pidFile, "utf8").split("\n", 1)[0]);
  return Number.isInteger(pid) && pid > 0 && processAlive(pid)
    ? pid
    : undefined;
}

/** Keeps the cluster folder private to its owner. */
export function protectFolder(folder: string): void {
  if (existsSync(folder)) {
    chmodSync(folder, 0o700);
  }
}
