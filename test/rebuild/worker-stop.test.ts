/**
 * A first SIGTERM always ends a worker that holds no work, even when its
 * Redis has gone away under it (it used to retry the connection forever).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";

import { sleep } from "../../lib/exec.js";
import { packageRoot } from "../../lib/paths.js";
import { testDatabase } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { ownRedis } from "../helpers/redis.js";

describe("stopping a worker", () => {
  for (const redisGone of [false, true]) {
    it(`a first SIGTERM ends an idle worker${redisGone ? " whose Redis went away" : ""}, exit 0`, async (t) => {
      const db = await testDatabase(t);
      const redis = await ownRedis(t);
      const child = spawn(
        process.execPath,
        [
          join(packageRoot(), "dist", "cli", "main.js"),
          "worker",
          "ingest",
          "--name",
          "idle",
          "--queue",
          uniqueQueueName("stop"),
        ],
        {
          env: {
            ...process.env,
            FITSFLEET_DATABASE_URL: db.url,
            FITSFLEET_REDIS_URL: redis.url,
            FITSFLEET_LOG_LEVEL: "info",
            FITSFLEET_LOG_FORMAT: "json",
          },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      t.after(() => child.kill("SIGKILL"));
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      const exit = new Promise<number | null>((resolve) =>
        child.once("exit", (code) => resolve(code)),
      );
      while (!stderr.includes("taking work")) {
        assert.equal(child.exitCode, null, stderr);
        await sleep(20);
      }
      if (redisGone) {
        await redis.stop();
        while (!stderr.includes("queue connection problem")) {
          await sleep(20);
        }
      }
      child.kill("SIGTERM");
      assert.equal(await exit, 0, stderr);
      assert.doesNotMatch(stderr, new RegExp(redis.password));
    });
  }
});
