/**
 * A rebuild on a baked image from end to end, with the real CLI
 * everywhere and the loopback AWS endpoint: `ami bake` makes the image
 * from this package's bundle; `fleet secrets put`; `rebuild enqueue` of
 * the fixture corpus; `rebuild launch-fleet --image latest --watch`. The
 * fleet's instances boot the image as a machine would: its systemd unit
 * (test/ami/cloud-init.mjs starts it) runs the bundled `fitsfleet
 * instance boot`, which reads the fleet configuration from the user-data
 * and the secrets from SSM as the instance, and runs the bundled workers.
 * They ingest with previews, drain the queue and power the machines off;
 * the guard ends the fleet. Every file is ingested once, the previews are
 * there, and nothing is left running.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";

import { withClient } from "../../lib/db/connect.js";
import { testArchive } from "../helpers/archive.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { amiSetup, consoleOf } from "./helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const WORKER_PROFILE = "fitsfleet-worker";
const PREFIX = "/fitsfleet/ami-e2e/";

it("a fleet of baked images boots through the unit, rebuilds the archive with previews, drains and is ended with nothing left", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 10 });
  const db = await testDatabase(t);
  const queue = uniqueQueueName("ami-e2e");
  const setup = await amiSetup(t, {
    roles: { [WORKER_PROFILE]: { ssmReadPrefixes: [PREFIX] } },
  });
  const { aws } = setup;
  const env = {
    ...setup.env,
    FITSFLEET_DATABASE_URL: db.url,
    FITSFLEET_REDIS_URL: testEnv().redisUrl,
    FITSFLEET_STORAGE: archive.root,
  };

  const bake = await runCli(
    [
      "--json",
      "ami",
      "bake",
      "--bundle-location",
      `s3://${setup.s3.bucket}/bundles`,
      "--interval",
      "1s",
    ],
    env,
  );
  assert.equal(bake.code, 0, bake.stderr);
  const image = (JSON.parse(bake.stdout) as { imageId: string }).imageId;

  const put = await runCli(
    ["fleet", "secrets", "put", "--secrets-prefix", PREFIX],
    env,
  );
  assert.equal(put.code, 0, put.stderr);
  const enqueued = await runCli(
    ["rebuild", "enqueue", "--queue", queue, "--batch-size", "3"],
    env,
  );
  assert.equal(enqueued.code, 0, enqueued.stderr);

  const launched = await runCli(
    [
      "--json",
      "rebuild",
      "launch-fleet",
      "--image",
      "latest",
      "--name",
      "ami-e2e",
      "--instances",
      "2",
      "--instance-types",
      "c6i.large",
      "--subnets",
      "subnet-0000000000000001a,subnet-0000000000000002b",
      "--workers-per-instance",
      "1",
      "--queue",
      queue,
      "--secrets-prefix",
      PREFIX,
      "--instance-profile",
      WORKER_PROFILE,
      "--watch",
      "--interval",
      "1s",
    ],
    env,
    { timeoutMs: 240_000 },
  );
  assert.equal(launched.code, 0, `${launched.stdout}\n${launched.stderr}`);
  const out = JSON.parse(launched.stdout) as {
    guard: { reason: string };
    launch: { members: { id: string }[] };
  };
  assert.equal(out.guard.reason, "drained");

  const fleet = out.launch.members.map((m) => m.id);
  assert.equal(fleet.length, 2);
  for (const id of fleet) {
    const instance = aws.instance(id);
    assert.equal(instance.imageId, image, "launched from the baked image");
    const log = consoleOf(aws, id);
    assert.match(log, /systemd: starting fitsfleet-boot\.service/);
    assert.match(log, /bundle verified/, "the boot checked its bundle");
    assert.match(log, /booted/);
    assert.match(log, /all workers ended/);
    assert.match(log, /systemd: fitsfleet-boot\.service exited 0/);
    // The bundled CLI ran, not this checkout's.
    assert.ok(existsSync(join(instance.dir, "opt/fitsfleet/dist/cli/main.js")));
  }

  await withClient(db.url, async (c) => {
    const { rows } = await c.query<{ state: string; n: string }>(
      "SELECT state, count(*) AS n FROM fitsfleet.ingest_ledger GROUP BY state ORDER BY state",
    );
    assert.deepEqual(
      rows.map((r) => [r.state, Number(r.n)]),
      [
        ["done", archive.good.length],
        ["failed", archive.corrupt.length],
      ],
    );
    const files = await c.query<{ n: string; distinct: string }>(
      "SELECT count(*) AS n, count(DISTINCT (path, filename)) AS distinct FROM diskfile WHERE present",
    );
    assert.equal(Number(files.rows[0]?.n), archive.good.length);
    assert.equal(files.rows[0]?.distinct, files.rows[0]?.n, "each file once");
    const workers = await c.query<{ worker: string }>(
      "SELECT DISTINCT worker FROM fitsfleet.ingest_ledger WHERE state = 'done'",
    );
    assert.ok(
      workers.rows.every((r) =>
        fleet.some((id) => r.worker.startsWith(`${id}-`)),
      ),
      "only the fleet's workers ingested",
    );
    const previews = await c.query<{ filename: string }>(
      "SELECT filename FROM preview",
    );
    assert.ok(
      previews.rows.length >= 8,
      "the GMOS and F2 fixtures have pictures",
    );
    for (const p of previews.rows) {
      assert.ok(
        existsSync(join(archive.root, "previews", p.filename)),
        p.filename,
      );
    }
    const state = await c.query<{ state: string }>(
      "SELECT state FROM fitsfleet.fleets WHERE name = 'ami-e2e'",
    );
    assert.equal(state.rows[0]?.state, "ended");
  });

  await aws.waitFor(
    (all) => all.every((i) => i.state === "terminated"),
    60_000,
  );
  for (const id of fleet) {
    assert.equal(
      aws.instance(id).stateReason?.code,
      "Client.InstanceInitiatedShutdown",
      "the instance powered itself off when its workers were done",
    );
  }
  assert.deepEqual(aws.launchTemplates(), []);
  assert.deepEqual(aws.secretLeaks(), []);
  const secretReads = aws
    .ssmReads()
    .filter((r) => r.name.startsWith(PREFIX) && r.withDecryption);
  assert.ok(secretReads.length >= 2);
  assert.ok(
    secretReads.every((r) => fleet.includes(r.principal)),
    "the secrets were read by the fleet's instances, as themselves",
  );
});
