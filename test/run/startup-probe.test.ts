/**
 * What `rebuild plan` times as a local worker's start-up: the real
 * `worker ingest` with --startup-probe, which loads what a worker loads,
 * connects to the database and Redis it is given and exits; a probe that
 * cannot connect fails the way the run's workers would, naming why.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ExternalServiceError } from "../../lib/errors.js";
import { localStartup } from "../../lib/run/plan.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";

/** Nothing listens on port 1. */
const NOWHERE_DB = "postgres://nobody:hunter2secret@127.0.0.1:1/nothing";

describe("worker start-up probe", () => {
  it("connects to the database and Redis it is given, then exits", async (t) => {
    const db = await testDatabase(t);
    const both = await runCli(
      ["--json", "worker", "ingest", "--name", "probe", "--startup-probe"],
      {
        FITSFLEET_DATABASE_URL: db.url,
        FITSFLEET_REDIS_URL: testEnv().redisUrl,
      },
    );
    assert.equal(both.code, 0, both.stderr);
    assert.deepEqual(JSON.parse(both.stdout), { database: true, redis: true });

    const noRedis = await runCli(
      ["worker", "ingest", "--name", "probe", "--startup-probe"],
      { FITSFLEET_DATABASE_URL: db.url },
    );
    assert.equal(noRedis.code, 0, noRedis.stderr);
    assert.match(noRedis.stdout, /database reached, redis not configured/);

    const down = await runCli(
      ["worker", "ingest", "--name", "probe", "--startup-probe"],
      { FITSFLEET_DATABASE_URL: NOWHERE_DB },
    );
    assert.notEqual(down.code, 0, "a database it cannot reach fails the probe");
    assert.equal(down.code, 4, "an external service's exit code");
    assert.match(
      down.stderr,
      /cannot connect to PostgreSQL at .*connection refused/,
    );
    assert.ok(!down.stderr.includes("hunter2secret"));
  });

  it("is what the plan times: every worker probed at once, and a failing probe is the plan's error", async (t) => {
    const db = await testDatabase(t);
    const seconds = await localStartup(2, {
      databaseUrl: db.url,
      redisUrl: testEnv().redisUrl,
    });
    assert.ok(
      seconds > 1,
      "the drain's first look (1 s) plus the workers' start",
    );
    await assert.rejects(
      localStartup(2, { databaseUrl: NOWHERE_DB }),
      (e: unknown) =>
        e instanceof ExternalServiceError &&
        /worker ingest --startup-probe` failed \(cannot connect to PostgreSQL at .*connection refused\)/.test(
          e.message,
        ) &&
        !e.message.includes("hunter2secret"),
    );
  });
});
