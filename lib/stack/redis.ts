/**
 * A throwaway Redis server on a loopback port, configured as BullMQ needs it:
 * `maxmemory-policy noeviction` (the only policy under which queues stay
 * correct) and an append-only file so a restart keeps queued work.
 * The password lives in a 0600 config file, never on the command line.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { Redis } from "ioredis";

import { EXIT, FitsfleetError } from "../errors.js";
import { processAlive, run, sleep } from "../exec.js";
import { redisServerProgram } from "../programs.js";

export function redisPaths(folder: string): {
  folder: string;
  conf: string;
  pid: string;
  log: string;
} {
  return {
    folder,
    conf: join(folder, "redis.conf"),
    pid: join(folder, "redis.pid"),
    log: join(folder, "redis.log"),
  };
}

export async function startRedis(
  folder: string,
  port: number,
  password: string,
): Promise<void> {
  const paths = redisPaths(folder);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const conf = [
    "bind 127.0.0.1",
    `port ${port}`,
    "protected-mode yes",
    "daemonize yes",
    `pidfile ${paths.pid}`,
    `logfile ${paths.log}`,
    `dir ${folder}`,
    'save ""',
    "appendonly yes",
    "appendfsync everysec",
    "maxmemory-policy noeviction",
    `requirepass ${password}`,
  ];
  writeFileSync(paths.conf, `${conf.join("\n")}\n`, { mode: 0o600 });
  await run(redisServerProgram(), [paths.conf], {
    debianPackage: "redis-server",
    purpose: `start Redis on port ${port}`,
  });
  await waitForRedis(port, password, paths.log);
}

async function waitForRedis(
  port: number,
  password: string,
  log: string,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const client = new Redis({
      host: "127.0.0.1",
      port,
      password,
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        const tail = existsSync(log)
          ? readFileSync(log, "utf8").trim().split("\n").slice(-5).join("\n")
          : "";
        throw new FitsfleetError(
          "redis-start",
          EXIT.failed,
          `Redis did not start on 127.0.0.1:${port}\n${tail}`,
          {
            cause: error,
            suggestion: `see ${log}`,
          },
        );
      }
    } finally {
      client.disconnect();
    }
    await sleep(100);
  }
}

export function redisPid(folder: string): number | undefined {
  const { pid: pidFile } = redisPaths(folder);
  if (!existsSync(pidFile)) {
    return undefined;
  }
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 && processAlive(pid)
    ? pid
    : undefined;
}

/** SIGTERM, then wait up to 15 s for the process to go; SIGKILL after that. */
export async function stopRedis(folder: string): Promise<void> {
  const pid = redisPid(folder);
  if (pid === undefined) {
    return;
  }
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 15_000;
  while (processAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      break;
    }
    await sleep(50);
  }
}
