/**
 * `rebuild launch-fleet --provider local`: the same fleet, guard and record
 * as on EC2, with worker processes on this machine. The guard ends the
 * fleet once the queue has drained, and the command exits 0.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import { withClient } from "../../lib/db/connect.js";
import { testArchive } from "../helpers/archive.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";

it("a local fleet of two worker groups drains the queue; the guard ends it and records it", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 2 });
  const db = await testDatabase(t);
  const queue = uniqueQueueName("local-fleet");
  const env = {
    FITSFLEET_DATABASE_URL: db.url,
    FITSFLEET_REDIS_URL: testEnv().redisUrl,
    FITSFLEET_STORAGE: archive.root,
  };
  const enqueued = await runCli(["rebuild", "enqueue", "--queue", queue], env);
  assert.equal(enqueued.code, 0, enqueued.stderr);

  const r = await runCli(
    [
      "--json",
      "rebuild",
      "launch-fleet",
      "--provider",
      "local",
      "--instances",
      "2",
      "--name",
      "local-one",
      "--queue",
      queue,
      "--interval",
      "1s",
    ],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    guard: { reason: string; report: { instances: string[] } };
  };
  assert.equal(out.guard.reason, "drained");
  assert.deepEqual(out.guard.report.instances.sort(), [
    "local-one-1",
    "local-one-2",
  ]);
  // Progress lines on stderr, one JSON object each with --json.
  assert.match(r.stderr, /"progress":\{"fleet":"local-one"/);

  await withClient(db.url, async (c) => {
    const { rows } = await c.query<{ state: string; n: string }>(
      "SELECT state, count(*) AS n FROM fitsfleet.ingest_ledger GROUP BY state ORDER BY state",
    );
    assert.deepEqual(
      rows.map((x) => [x.state, Number(x.n)]),
      [
        ["done", archive.good.length],
        ["failed", archive.corrupt.length],
      ],
    );
    const workers = await c.query<{ worker: string }>(
      "SELECT DISTINCT worker FROM fitsfleet.ingest_ledger WHERE state = 'done'",
    );
    assert.ok(
      workers.rows.every((w) => /^local-one-[12]-ingest-1$/.test(w.worker)),
      JSON.stringify(workers.rows),
    );
    const fleet = await c.query<{ state: string; end_reason: string }>(
      "SELECT state, end_reason FROM fitsfleet.fleets WHERE name = 'local-one'",
    );
    assert.equal(fleet.rows[0]?.state, "ended");
    assert.match(fleet.rows[0]?.end_reason ?? "", /the queue has drained/);
  });
  const status = await runCli(["fleet", "status", "--all"], env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /local-one .*local .*ended/);
});
