/**
 * `rebuild run --provider ec2` whole, as the real CLI against the loopback
 * AWS endpoint: the launch step makes an EC2 fleet of 2 spot instances that
 * boot the real boot command (IMDSv2, secrets from SSM as their role) and
 * run ingest workers against the test PostgreSQL and Redis; the drain waits
 * for the queue, the terminate step ends the fleet. Every step is done
 * (migrate skipped), every ledger row is done or failed with its reason,
 * the fleet is recorded with the run's id and its spend, the run's event
 * log holds its events, and no instance, EC2 fleet or launch template is
 * left on the endpoint.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import { DescribeFleetsCommand } from "@aws-sdk/client-ec2";

import { withClient } from "../../lib/db/connect.js";
import { highestSeq } from "../../lib/run/events.js";
import { RUN_STEPS } from "../../lib/run/types.js";
import { operatorEnv, testEndpoint } from "../aws/fixtures.js";
import { testArchive } from "../helpers/archive.js";
import { CLI, runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const ROLE = "fitsfleet-worker";
const PREFIX = "/fitsfleet/run-e2e/";

interface ShownRun {
  run: {
    id: string;
    state: string;
    provider: string;
    fleet: string | null;
    steps: { step: string; status: string; figures: Record<string, number> }[];
  };
  spend: number;
}

it("rebuild run --provider ec2: a spot fleet of 2 launched, drained and ended, every step done, nothing left on the endpoint", async (t) => {
  const archive = testArchive(t, { dumpsPerInstrument: 2 });
  const db = await testDatabase(t, { empty: true });
  const queue = uniqueQueueName("run-ec2");
  const aws = await testEndpoint(t, {
    roles: { [ROLE]: { ssmReadPrefixes: [PREFIX] } },
    instanceCredentials: "imds",
    terminateGraceMs: 30_000,
    policy: { requireEncryptedVolumes: true, maxHopLimit: 1 },
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

  const run = await runCli(
    [
      "--json",
      "rebuild",
      "run",
      "--provider",
      "ec2",
      "--image",
      image,
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
      "--region",
      aws.region,
      "--interval",
      "1s",
      "--stall-after",
      "3m",
    ],
    env,
    { timeoutMs: 300_000 },
  );
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  const report = JSON.parse(run.stdout) as ShownRun;
  const runId = report.run.id;
  assert.equal(report.run.state, "succeeded");

  const show = await runCli(["--json", "rebuild", "runs", "show", runId], env);
  assert.equal(show.code, 0, show.stderr);
  const shown = JSON.parse(show.stdout) as ShownRun;
  assert.equal(shown.run.provider, "ec2");
  assert.deepEqual(
    shown.run.steps.map((s) => [s.step, s.status]),
    RUN_STEPS.map((s) => [s, s === "migrate" ? "skipped" : "done"]),
  );
  const launch = shown.run.steps.find((s) => s.step === "launch")!;
  assert.equal(launch.figures.instances, 2);
  const terminate = shown.run.steps.find((s) => s.step === "terminate")!;
  assert.equal(terminate.figures.instances, 2);
  const files = archive.good.length + archive.corrupt.length;
  let ec2FleetIds: string[] = [];

  await withClient(db.url, async (c) => {
    const { rows } = await c.query<{
      filename: string;
      state: string;
      error: string | null;
      worker: string | null;
    }>("SELECT filename, state, error, worker FROM fitsfleet.ingest_ledger");
    assert.equal(rows.length, files);
    assert.equal(
      rows.filter((r) => r.state === "done").length,
      archive.good.length,
    );
    for (const r of rows) {
      if (r.state === "failed") {
        const expected = archive.corrupt.find((x) => x.name === r.filename);
        assert.ok(expected !== undefined, `${r.filename} failed: ${r.error}`);
        assert.match(r.error ?? "", expected.why);
      } else {
        assert.equal(r.state, "done", `${r.filename}: ${r.state}`);
      }
    }
    // The instances did the work, not this machine.
    assert.ok(rows.every((r) => (r.worker ?? "").startsWith("i-")));

    const { rows: fleets } = await c.query<{
      name: string;
      state: string;
      run: string;
      spend: string;
      ec2_fleet_ids: string[];
      launch_template_id: string | null;
    }>(
      "SELECT name, state, run, spend::text, ec2_fleet_ids, launch_template_id FROM fitsfleet.fleets",
    );
    assert.equal(fleets.length, 1);
    assert.equal(fleets[0]!.name, shown.run.fleet);
    assert.equal(fleets[0]!.state, "ended");
    assert.equal(fleets[0]!.run, runId);
    // The endpoint prices c6i.large, so the fleet's spend is known.
    assert.ok((launch.figures.hourlyRate ?? 0) > 0);
    assert.ok(Number(fleets[0]!.spend) > 0);
    assert.ok(shown.spend > 0);
    assert.ok((terminate.figures.spend ?? 0) > 0);
    ec2FleetIds = fleets[0]!.ec2_fleet_ids;
    assert.ok(ec2FleetIds.length > 0);
    assert.notEqual(fleets[0]!.launch_template_id, null);

    assert.ok((await highestSeq(c, runId)) > 0);
    const { rows: events } = await c.query<{ type: string; n: string }>(
      "SELECT type, count(*) AS n FROM fitsfleet.run_events WHERE run_id = $1 GROUP BY type",
      [runId],
    );
    const count = new Map(events.map((e) => [e.type, Number(e.n)]));
    assert.equal(count.get("run-started"), 1);
    assert.equal(count.get("run-finished"), 1);
    assert.equal(count.get("instance-joined"), 2);
    assert.equal(count.get("instance-left"), 2);
    assert.ok((count.get("progress") ?? 0) > 0);
    assert.ok((count.get("spend") ?? 0) > 0);
  });

  await aws.waitFor(
    (all) => all.length === 2 && all.every((i) => i.state === "terminated"),
    60_000,
  );
  assert.deepEqual(aws.launchTemplates(), []);
  const described = await aws.ec2Client().send(new DescribeFleetsCommand({}));
  assert.deepEqual(
    (described.Fleets ?? [])
      .filter((f) => f.FleetState !== "deleted")
      .map((f) => f.FleetId),
    [],
  );
  // The run's own EC2 fleet existed on the endpoint, and is deleted.
  for (const id of ec2FleetIds) {
    assert.equal(
      described.Fleets?.find((f) => f.FleetId === id)?.FleetState,
      "deleted",
      id,
    );
  }
  assert.deepEqual(aws.secretLeaks(), []);
});
