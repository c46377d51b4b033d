/**
 * The embedded local stack: one PostgreSQL cluster and one Redis server from the
 * system's binaries, on free loopback ports, under one state folder. `stack up`,
 * `demo` and the test suite all use this code.
 *
 * Layout of the state folder (0711: the postgres user may pass through, nobody may list):
 *   stack.json   ports, generated passwords (0600)
 *   pgpass       libpq password file for psql (0600)
 *   postgres/    cluster folder, owned by the server's user (0700)
 *   redis/       config, append-only file, log (0700)
 */
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";

import { withClient } from "../db/connect.js";
import { PreconditionError } from "../errors.js";
import { processAlive } from "../exec.js";
import type { Logger } from "../logger.js";
import { checkServerPrograms } from "../programs.js";
import { registerSecret } from "../redact.js";
import {
  clusterPid,
  initCluster,
  startCluster,
  stopCluster,
  SUPERUSER,
} from "./postgres.js";
import { redisPid, startRedis, stopRedis } from "./redis.js";

export const STACK_DATABASE = "fitsfleet";

export interface StackState {
  version: 1;
  dir: string;
  createdAt: string;
  unsafeFast: boolean;
  postgres: { port: number; user: string; password: string; database: string };
  redis: { port: number; password: string };
}

export interface StackUrls {
  /** The archive database. */
  databaseUrl: string;
  /** The cluster's maintenance database, for creating and dropping databases. */
  adminUrl: string;
  redisUrl: string;
}

export interface ServiceHealth {
  running: boolean;
  pid: number | undefined;
  port: number;
}

export interface StackStatus {
  dir: string;
  exists: boolean;
  postgres: ServiceHealth | undefined;
  redis: ServiceHealth | undefined;
}

export interface StackUpOptions {
  unsafeFast?: boolean;
  /** Benchmarks only: load pg_stat_statements (set when the stack is created). */
  statementStats?: boolean;
  logger?: Logger;
}

const paths = (dir: string) => ({
  state: join(dir, "stack.json"),
  lock: join(dir, ".lock"),
  pgpass: join(dir, "pgpass"),
  postgres: join(dir, "postgres"),
  redis: join(dir, "redis"),
});

export function stackUrls(state: StackState): StackUrls {
  const pg = state.postgres;
  const pgBase = `postgres://${pg.user}:${encodeURIComponent(pg.password)}@127.0.0.1:${pg.port}`;
  return {
    databaseUrl: `${pgBase}/${pg.database}`,
    adminUrl: `${pgBase}/postgres`,
    redisUrl: `redis://default:${encodeURIComponent(state.redis.password)}@127.0.0.1:${state.redis.port}`,
  };
}

export function readStack(dir: string): StackState | undefined {
  const file = paths(dir).state;
  if (!existsSync(file)) {
    return undefined;
  }
  let state: StackState;
  try {
    state = JSON.parse(readFileSync(file, "utf8")) as StackState;
  } catch (error) {
    throw new PreconditionError(`the stack state file ${file} is unreadable`, {
      cause: error,
      suggestion: `remove ${dir} to start over (\`fitsfleet stack down --purge\`)`,
    });
  }
  registerSecret(state.postgres.password);
  registerSecret(state.redis.password);
  return state;
}

export function stackStatus(dir: string): StackStatus {
  const state = readStack(dir);
  if (state === undefined) {
    return { dir, exists: false, postgres: undefined, redis: undefined };
  }
  const pgPid = clusterPid(paths(dir).postgres);
  const rPid = redisPid(paths(dir).redis);
  return {
    dir,
    exists: true,
    postgres: {
      running: pgPid !== undefined,
      pid: pgPid,
      port: state.postgres.port,
    },
    redis: { running: rPid !== undefined, pid: rPid, port: state.redis.port },
  };
}

/** The stack's URLs if both its servers are running, else undefined. */
export function runningStackUrls(dir: string): StackUrls | undefined {
  const status = stackStatus(dir);
  const state = readStack(dir);
  if (
    state === undefined ||
    status.postgres?.running !== true ||
    status.redis?.running !== true
  ) {
    return undefined;
  }
  return stackUrls(state);
}

/**
 * Starts the stack, creating it on first use. Idempotent: servers already
 * running are left alone; a stopped stack restarts on its old data.
 */
export async function stackUp(
  dir: string,
  options: StackUpOptions = {},
): Promise<{ state: StackState; created: boolean; started: string[] }> {
  const p = paths(dir);
  if (!existsSync(p.state)) {
    checkServerPrograms(); // before anything is created
  }
  mkdirSync(dir, { recursive: true });
  // The server's user must pass through to its own folder; nobody may list ours.
  chmodSync(dir, 0o711);
  return withLock(p.lock, async () => {
    const existing = readStack(dir);
    if (existing === undefined) {
      const state = await create(dir, options);
      return { state, created: true, started: ["postgres", "redis"] };
    }
    const started: string[] = [];
    if (
      clusterPid(p.postgres) === undefined ||
      redisPid(p.redis) === undefined
    ) {
      checkServerPrograms();
    }
    const state = {
      ...existing,
      postgres: { ...existing.postgres },
      redis: { ...existing.redis },
    };
    if (clusterPid(p.postgres) === undefined) {
      state.postgres.port = await portOrFree(state.postgres.port);
      options.logger?.info("starting PostgreSQL", {
        port: state.postgres.port,
      });
      await startCluster(p.postgres, state.postgres.port);
      started.push("postgres");
    }
    if (redisPid(p.redis) === undefined) {
      state.redis.port = await portOrFree(state.redis.port);
      options.logger?.info("starting Redis", { port: state.redis.port });
      await startRedis(p.redis, state.redis.port, state.redis.password);
      started.push("redis");
    }
    writeState(dir, state);
    return { state, created: false, started };
  });
}

async function create(
  dir: string,
  options: StackUpOptions,
): Promise<StackState> {
  const p = paths(dir);
  const state: StackState = {
    version: 1,
    dir,
    createdAt: new Date().toISOString(),
    unsafeFast: options.unsafeFast === true,
    postgres: {
      port: await freePort(),
      user: SUPERUSER,
      password: secret(),
      database: STACK_DATABASE,
    },
    redis: { port: await freePort(), password: secret() },
  };
  registerSecret(state.postgres.password);
  registerSecret(state.redis.password);
  try {
    options.logger?.info("initialising PostgreSQL cluster", {
      folder: p.postgres,
    });
    await initCluster(p.postgres, state.postgres.password, {
      unsafeFast: state.unsafeFast,
      statementStats: options.statementStats === true,
    });
    options.logger?.info("starting PostgreSQL", { port: state.postgres.port });
    await startCluster(p.postgres, state.postgres.port);
    await withClient(stackUrls(state).adminUrl, (client) =>
      client.query(`CREATE DATABASE ${STACK_DATABASE}`),
    );
    options.logger?.info("starting Redis", { port: state.redis.port });
    await startRedis(p.redis, state.redis.port, state.redis.password);
    writeState(dir, state);
    return state;
  } catch (error) {
    // Leave nothing half-made: a later `stack up` starts clean.
    await stopRedis(p.redis).catch(() => undefined);
    await stopCluster(p.postgres).catch(() => undefined);
    rmSync(p.postgres, { recursive: true, force: true });
    rmSync(p.redis, { recursive: true, force: true });
    throw error;
  }
}

/** Stops both servers; with `purge`, deletes the state folder and all data. */
export async function stackDown(
  dir: string,
  options: { purge?: boolean } = {},
): Promise<{ stopped: string[]; purged: boolean }> {
  const p = paths(dir);
  if (!existsSync(dir)) {
    return { stopped: [], purged: false };
  }
  const stopped = await withLock(p.lock, async () => {
    const names: string[] = [];
    if (redisPid(p.redis) !== undefined) {
      await stopRedis(p.redis);
      names.push("redis");
    }
    if (clusterPid(p.postgres) !== undefined) {
      await stopCluster(p.postgres);
      names.push("postgres");
    }
    return names;
  });
  if (options.purge === true) {
    rmSync(dir, { recursive: true, force: true });
  }
  return { stopped, purged: options.purge === true };
}

/** The libpq password file for the stack, so psql works without a password in the URL. */
export function pgpassFile(dir: string): string {
  return paths(dir).pgpass;
}

function writeState(dir: string, state: StackState): void {
  const p = paths(dir);
  // temp file then rename: a crash never leaves a half-written state file
  const tmp = `${p.state}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, p.state);
  const pg = state.postgres;
  writeFileSync(
    p.pgpass,
    `127.0.0.1:${pg.port}:*:${pg.user}:${pg.password.replaceAll("\\", "\\\\").replaceAll(":", "\\:")}\n`,
    { mode: 0o600 },
  );
}

function secret(): string {
  return randomBytes(24).toString("base64url");
}

/** A port the kernel reports free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") {
          resolve(address.port);
        } else {
          reject(new Error("no port"));
        }
      });
    });
  });
}

async function portOrFree(port: number): Promise<number> {
  const free = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
  return free ? port : freePort();
}

/** An exclusive lock file holding our pid; a lock left by a dead process is taken over. */
async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (error) {
      const holder =
        (error as NodeJS.ErrnoException).code === "EEXIST"
          ? Number(readFileSync(file, "utf8"))
          : NaN;
      if (
        attempt > 0 ||
        !Number.isInteger(holder) ||
        (holder > 0 && processAlive(holder))
      ) {
        throw new PreconditionError(
          `another fitsfleet stack command (pid ${holder}) is working on ${dirname(file)}`,
          { cause: error, suggestion: "wait for it to finish, then try again" },
        );
      }
      rmSync(file, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}
