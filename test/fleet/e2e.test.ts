/**
 * A rebuild by a spot fleet from end to end, on the loopback endpoint with
 * the real CLI everywhere: `fleet secrets put`, `rebuild enqueue`, and
 * `rebuild launch-fleet --watch`, whose instances boot the real boot
 * command (IMDSv2, secrets from SSM as their role) and run real ingest
 * workers against the test PostgreSQL and Redis. One instance gets a spot
 * interruption notice while it holds work: its workers hand the work back
 * and exit, nothing is lost and nothing counts as failed. The queue drains,
 * the guard ends the fleet, and no instance, fleet or launch template is
 * left; no secret is in user-data, a launch template or a tag.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";

import { DescribeFleetsCommand } from "@aws-sdk/client-ec2";

import { withClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import { operatorEnv, testEndpoint } from "../aws/fixtures.js";
import { testArchive } from "../helpers/archive.js";
import { CLI, runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const ROLE = "fitsfleet-worker";
const PREFIX = "/fitsfleet/e2e/";

it("a spot fleet rebuilds the archive through an interruption, drains, and is ended with nothing left", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 30 });
  const db = await testDatabase(t);
  const queue = uniqueQueueName("fleet-e2e");
  const aws = await testEndpoint(t, {
    roles: { [ROLE]: { ssmReadPrefixes: [PREFIX] } },
    instanceCredentials: "imds",
    terminateGraceMs: 30_000,
    policy: { requireEncryptedVolumes: true, maxHopLimit: 1 },
    // EC2's notice comes two minutes ahead and workers look every 5 s; this corpus lasts seconds, so they look more often.
    instanceEnv: { FITSFLEET_SPOT_POLL_MS: "200" },
  });
  const image = aws.registerImage({
    name: "fitsfleet-worker",
    argv: [process.execPath, CLI, "instance", "boot"],
  });
  const env = {
    ...operatorEnv(aws),
    FITSFLEET_DATABASE_URL: db.url,
    FITSFLEET_REDIS_URL: testEnv().redisUrl,
    FITSFLEET_STORAGE: archive.root,
  };

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

  const launcher = spawn(
    process.execPath,
    [
      CLI,
      "--json",
      "rebuild",
      "launch-fleet",
      "--image",
      image,
      "--name",
      "e2e-fleet",
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
      ROLE,
      "--watch",
      "--interval",
      "1s",
    ],
    { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => launcher.kill("SIGKILL"));
  let stdout = "";
  let stderr = "";
  launcher.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  launcher.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    launcher.once("exit", resolve),
  );

  // Interrupt an instance whose worker holds work.
  let interrupted: string | undefined;
  while (interrupted === undefined) {
    assert.equal(launcher.exitCode, null, `${stdout}\n${stderr}`);
    const holding = await withClient(db.url, async (c) => {
      const { rows } = await c.query<{ worker: string }>(
        "SELECT worker FROM fitsfleet.ingest_ledger WHERE state = 'active' AND worker LIKE 'i-%' LIMIT 1",
      );
      return rows[0]?.worker;
    });
    const instance = aws
      .instances()
      .find((i) => holding !== undefined && holding.startsWith(`${i.id}-`));
    if (instance !== undefined && instance.state === "running") {
      aws.injectSpotInterruption(instance.id, { enforceAfterMs: 60_000 });
      interrupted = instance.id;
    } else {
      await sleep(100);
    }
  }
  // Its workers see the notice, hand back and end: the instance shuts itself down well before the two minutes.
  await aws.waitFor(
    (all) => all.find((i) => i.id === interrupted)?.state === "terminated",
    60_000,
  );
  assert.match(
    readFileSync(join(aws.instance(interrupted).dir, "console.log"), "utf8"),
    /spot interruption notice/,
  );
  assert.equal(
    aws.instance(interrupted).stateReason?.code,
    "Client.InstanceInitiatedShutdown",
    "the instance ended itself; the interruption was not needed",
  );

  assert.equal(await exited, 0, `${stdout}\n${stderr}`);
  const out = JSON.parse(stdout) as { guard: { reason: string } };
  assert.equal(out.guard.reason, "drained");

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
      "nothing lost, and only the broken files failed",
    );
    const failures = await c.query<{ filename: string; error: string }>(
      "SELECT filename, error FROM fitsfleet.ingest_ledger WHERE state = 'failed'",
    );
    for (const f of failures.rows) {
      const expected = archive.corrupt.find((x) => x.name === f.filename);
      assert.ok(expected !== undefined, `${f.filename} failed: ${f.error}`);
      assert.match(f.error, expected.why);
    }
    const fleet = await c.query<{ state: string }>(
      "SELECT state FROM fitsfleet.fleets WHERE name = 'e2e-fleet'",
    );
    assert.equal(fleet.rows[0]?.state, "ended");
  });

  await aws.waitFor(
    (all) => all.every((i) => i.state === "terminated"),
    60_000,
  );
  assert.deepEqual(aws.launchTemplates(), []);
  const fleets = await aws.ec2Client().send(new DescribeFleetsCommand({}));
  assert.deepEqual(
    (fleets.Fleets ?? [])
      .filter((f) => f.FleetState !== "deleted")
      .map((f) => f.FleetId),
    [],
  );
  assert.deepEqual(aws.secretLeaks(), []);
  // The workers read their secrets as their instances, never as the operator.
  assert.ok(aws.ssmReads().length >= 2);
  assert.ok(aws.ssmReads().every((r) => r.principal.startsWith("i-")));
});
