/**
 * A Redis of one test's own, for drills that stop it or lose its data: the
 * shared test Redis must not see that. Stopped, then its folder removed, in
 * one hook and in that order (stopping needs the pid file the folder holds).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

import { freePort } from "../../lib/stack/index.js";
import { startRedis, stopRedis } from "../../lib/stack/redis.js";

export interface OwnRedis {
  url: string;
  password: string;
  stop(): Promise<void>;
  /** Starts it again on the same port; `empty` first deletes what it stored. */
  start(options?: { empty?: boolean }): Promise<void>;
}

export async function ownRedis(
  t: Pick<TestContext, "after">,
): Promise<OwnRedis> {
  const folder = mkdtempSync(join(tmpdir(), "ff-redis-"));
  t.after(async () => {
    await stopRedis(folder);
    rmSync(folder, { recursive: true, force: true });
  });
  const port = await freePort();
  const password = randomBytes(12).toString("hex");
  await startRedis(folder, port, password);
  return {
    url: `redis://default:${password}@127.0.0.1:${port}`,
    password,
    stop: () => stopRedis(folder),
    async start(options = {}) {
      if (options.empty === true) {
        for (const file of ["appendonlydir", "appendonly.aof", "dump.rdb"]) {
          rmSync(join(folder, file), { recursive: true, force: true });
        }
      }
      await startRedis(folder, port, password);
    },
  };
}
