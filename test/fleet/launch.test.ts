/**
 * `rebuild launch-fleet` on the loopback EC2 endpoint, through the real
 * CLI: the dry run's requests and estimate; a launch whose template holds
 * to the security rules; status; terminate, twice; a capacity shortfall
 * that ends what it launched; a launcher killed mid-launch whose leftovers
 * `fleet sweep` finds and ends; and the budget cap ending a fleet.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it, type TestContext } from "node:test";

import { withClient } from "../../lib/db/connect.js";
import type { AwsEndpoint } from "../aws/endpoint.js";
import { IDLE, operatorEnv, testEndpoint } from "../aws/fixtures.js";
import { CLI, runCli } from "../helpers/cli.js";
import { testDatabase } from "../helpers/db.js";

const TYPES = "c6i.large,c5.large";
const SUBNETS = "subnet-0000000000000001a,subnet-0000000000000002b";

function envFor(aws: AwsEndpoint, databaseUrl: string): Record<string, string> {
  return {
    ...operatorEnv(aws),
    FITSFLEET_DATABASE_URL: databaseUrl,
    FITSFLEET_STORAGE: "s3://archive/data",
  };
}

async function setup(t: TestContext) {
  const aws = await testEndpoint(t, {
    policy: { requireEncryptedVolumes: true, maxHopLimit: 1 },
  });
  const image = aws.registerImage({ name: "worker", argv: IDLE });
  const db = await testDatabase(t);
  return { aws, image, db, env: envFor(aws, db.url) };
}

function launchArgs(image: string, name: string, extra: string[] = []) {
  return [
    "rebuild",
    "launch-fleet",
    "--image",
    image,
    "--name",
    name,
    "--instances",
    "3",
    "--instance-types",
    TYPES,
    "--subnets",
    SUBNETS,
    ...extra,
  ];
}

const live = (aws: AwsEndpoint) =>
  aws
    .instances()
    .filter((i) => i.state !== "terminated" && i.state !== "shutting-down");

async function fleetRow(url: string, name: string) {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{
      state: string;
      end_reason: string | null;
      n: string;
    }>(
      `SELECT f.state, f.end_reason, count(i.instance_id) AS n
         FROM fitsfleet.fleets f LEFT JOIN fitsfleet.fleet_instances i ON i.fleet = f.name
        WHERE f.name = $1 GROUP BY f.name`,
      [name],
    );
    return rows[0];
  });
}

describe("rebuild launch-fleet (ec2)", () => {
  it("--dry-run prints the exact requests and a cost estimate from spot prices, and creates nothing", async (t) => {
    const { aws, image, env } = await setup(t);
    const r = await runCli(
      [
        "--json",
        ...launchArgs(image, "dry-one", [
          "--max-hourly-cost",
          "1",
          "--dry-run",
        ]),
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      requests: { action: string; input: unknown }[];
      userData: Record<string, unknown>;
      estimate: {
        hourlyLow: number;
        hourlyHigh: number;
        spotInstances: number;
      };
      workersPerInstance: { ingest: number };
    };
    assert.deepEqual(
      out.requests.map((q) => q.action),
      ["CreateLaunchTemplate", "CreateFleet"],
    );
    const lt = out.requests[0]!.input as {
      LaunchTemplateData: {
        MetadataOptions: {
          HttpTokens: string;
          HttpPutResponseHopLimit: number;
        };
        InstanceInitiatedShutdownBehavior: string;
        BlockDeviceMappings: { Ebs: { Encrypted: boolean } }[];
        IamInstanceProfile: { Name: string };
        UserData: string;
      };
    };
    assert.equal(lt.LaunchTemplateData.MetadataOptions.HttpTokens, "required");
    assert.equal(
      lt.LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit,
      1,
    );
    assert.equal(
      lt.LaunchTemplateData.InstanceInitiatedShutdownBehavior,
      "terminate",
    );
    assert.equal(
      lt.LaunchTemplateData.BlockDeviceMappings[0]!.Ebs.Encrypted,
      true,
    );
    assert.equal(
      lt.LaunchTemplateData.IamInstanceProfile.Name,
      "fitsfleet-worker",
    );
    const fleet = out.requests[1]!.input as {
      Type: string;
      SpotOptions: { AllocationStrategy: string; MaxTotalPrice: string };
      LaunchTemplateConfigs: { Overrides: unknown[] }[];
      TargetCapacitySpecification: {
        TotalTargetCapacity: number;
        DefaultTargetCapacityType: string;
      };
    };
    assert.equal(fleet.Type, "instant");
    assert.equal(
      fleet.SpotOptions.AllocationStrategy,
      "price-capacity-optimized",
    );
    assert.equal(fleet.SpotOptions.MaxTotalPrice, "1.0000");
    assert.equal(
      fleet.LaunchTemplateConfigs[0]!.Overrides.length,
      4,
      "2 types x 2 subnets",
    );
    assert.equal(fleet.TargetCapacitySpecification.TotalTargetCapacity, 3);
    assert.equal(out.userData.fleet, "dry-one");
    assert.equal(out.workersPerInstance.ingest, 2, "one per vCPU of a .large");
    // catalog.ts: in zones a and b, c6i.large in a is the cheapest pool (0.0321) and c5.large in a the dearest (0.0352).
    assert.equal(out.estimate.hourlyLow.toFixed(4), (3 * 0.0321).toFixed(4));
    assert.equal(out.estimate.hourlyHigh.toFixed(4), (3 * 0.0352).toFixed(4));
    assert.deepEqual(aws.launchTemplates(), []);
    assert.deepEqual(aws.instances(), []);
    assert.ok(!aws.calls().some((c) => c.action.startsWith("Create")));
  });

  it("launches tagged, secure instances; status shows them; terminate ends everything and a second terminate finds nothing", async (t) => {
    const { aws, image, db, env } = await setup(t);
    const r = await runCli(
      ["--json", ...launchArgs(image, "fleet-one", ["--run", "run-7"])],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const instances = aws.instances();
    assert.equal(instances.length, 3);
    for (const i of instances) {
      assert.equal(i.lifecycle, "spot");
      assert.equal(i.tags["fitsfleet:fleet"], "fleet-one");
      assert.equal(i.tags["fitsfleet:run"], "run-7");
      assert.equal(i.metadataOptions.httpTokens, "required");
      assert.equal(i.metadataOptions.httpPutResponseHopLimit, 1);
      assert.equal(i.shutdownBehavior, "terminate");
      assert.ok(i.volumes.every((v) => v.encrypted));
      // The cheapest pool: c6i.large in zone a (of the two subnets' zones).
      assert.equal(i.instanceType, "c6i.large");
    }
    const [lt] = aws.launchTemplates();
    assert.equal(lt?.tags["fitsfleet:fleet"], "fleet-one");
    assert.deepEqual(aws.secretLeaks(), []);
    assert.equal((await fleetRow(db.url, "fleet-one"))?.state, "running");
    assert.equal((await fleetRow(db.url, "fleet-one"))?.n, "3");

    const status = await runCli(
      ["--json", "fleet", "status", "--fleet", "fleet-one"],
      env,
    );
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as {
      members: { state: string; instanceType: string }[];
      fleet: { spend: number };
    };
    assert.equal(s.members.length, 3);
    assert.ok(s.fleet.spend > 0, "spend accrues from launch");

    const end = await runCli(
      ["fleet", "terminate", "--fleet", "fleet-one", "--chunk", "2"],
      env,
    );
    assert.equal(end.code, 0, end.stderr);
    assert.match(
      end.stdout,
      /ended 3 instance\(s\), deleted 1 EC2 fleet\(s\) and 1 launch template\(s\)/,
    );
    assert.equal(
      aws.calls().filter((c) => c.action === "TerminateInstances").length,
      0,
      "deleting the fleet ended its instances; none were left to terminate",
    );
    await aws.waitFor((all) => all.every((i) => i.state === "terminated"));
    assert.deepEqual(aws.launchTemplates(), []);
    const again = await runCli(
      ["fleet", "terminate", "--fleet", "fleet-one"],
      env,
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing left to end/);
    const row = await fleetRow(db.url, "fleet-one");
    assert.equal(row?.state, "ended");
  });

  it("terminate ends stray tagged instances in chunks", async (t) => {
    const { aws, image, env } = await setup(t);
    const r = await runCli(
      ["--json", ...launchArgs(image, "fleet-chunks", ["--instances", "1"])],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    // Five instances launched outside the fleet, carrying its tag (a hand launch, an older tool).
    const { RunInstancesCommand } = await import("@aws-sdk/client-ec2");
    await aws.ec2Client().send(
      new RunInstancesCommand({
        ImageId: image,
        MinCount: 5,
        MaxCount: 5,
        MetadataOptions: { HttpTokens: "required", HttpPutResponseHopLimit: 1 },
        BlockDeviceMappings: [
          { DeviceName: "/dev/xvda", Ebs: { Encrypted: true } },
        ],
        TagSpecifications: [
          {
            ResourceType: "instance",
            Tags: [{ Key: "fitsfleet:fleet", Value: "fleet-chunks" }],
          },
        ],
      }),
    );
    assert.equal(live(aws).length, 6);
    const end = await runCli(
      [
        "--json",
        "fleet",
        "terminate",
        "--fleet",
        "fleet-chunks",
        "--chunk",
        "2",
      ],
      env,
    );
    assert.equal(end.code, 0, end.stderr);
    assert.equal(
      (JSON.parse(end.stdout) as { instances: string[] }).instances.length,
      6,
    );
    // The fleet's own instance went with DeleteFleets; the five strays in calls of at most two.
    assert.equal(
      aws.calls().filter((c) => c.action === "TerminateInstances").length,
      3,
    );
    await aws.waitFor((all) => all.every((i) => i.state === "terminated"));
  });

  it("a capacity shortfall halfway through the launch ends what was launched and deletes the template", async (t) => {
    const { aws, image, db, env } = await setup(t);
    aws.injectCapacityError({ afterInstances: 2 });
    const r = await runCli(launchArgs(image, "short-one"), env);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /launched 2 of 3 instance\(s\)/);
    assert.match(r.stderr, /InsufficientInstanceCapacity/);
    assert.match(r.stderr, /--instance-types|--subnets|--min-instances/);
    await aws.waitFor(
      (all) => all.length === 2 && all.every((i) => i.state === "terminated"),
    );
    assert.deepEqual(aws.launchTemplates(), []);
    const row = await fleetRow(db.url, "short-one");
    assert.equal(row?.state, "failed");
    assert.match(row?.end_reason ?? "", /launched 2 of 3/);
  });

  it("--min-instances accepts a partial launch and names the pools that were not filled", async (t) => {
    const { aws, image, env } = await setup(t);
    aws.injectCapacityError({ afterInstances: 2 });
    const r = await runCli(
      launchArgs(image, "partial-one", ["--min-instances", "2"]),
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2 instance\(s\)/);
    assert.match(r.stdout, /not filled: .*InsufficientInstanceCapacity/);
    assert.equal(live(aws).length, 2);
  });

  it("a launcher killed mid-launch leaves resources that `fleet sweep` shows, then ends with --yes", async (t) => {
    const { aws, image, db, env } = await setup(t);
    // Another fleet, live, that the sweep must leave alone.
    const keep = await runCli(
      launchArgs(image, "keep-one", ["--instances", "1"]),
      env,
    );
    assert.equal(keep.code, 0, keep.stderr);
    const hold = aws.holdAction("CreateFleet");
    const child = spawn(
      process.execPath,
      [CLI, ...launchArgs(image, "killed-one")],
      {
        env: { ...process.env, ...env },
        stdio: "ignore",
      },
    );
    await hold.reached;
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    hold.release(); // the request had reached EC2: it launches all the same
    await aws.waitFor(
      (all) =>
        all.filter((i) => i.tags["fitsfleet:fleet"] === "killed-one").length ===
        3,
    );
    assert.equal((await fleetRow(db.url, "killed-one"))?.state, "launching");

    const look = await runCli(["--json", "fleet", "sweep"], env);
    assert.equal(look.code, 0, look.stderr);
    const seen = JSON.parse(look.stdout) as {
      orphans: { fleet: string; instances: string[]; templates: string[] }[];
      live: string[];
      acted: boolean;
    };
    assert.equal(seen.acted, false);
    assert.deepEqual(
      seen.orphans.map((o) => o.fleet),
      ["killed-one"],
    );
    assert.equal(seen.orphans[0]!.instances.length, 3);
    assert.deepEqual(seen.orphans[0]!.templates, ["fitsfleet-killed-one"]);
    assert.deepEqual(seen.live, ["keep-one"]);
    assert.equal(live(aws).length, 4, "showing ends nothing");

    const act = await runCli(["fleet", "sweep", "--yes"], env);
    assert.equal(act.code, 0, act.stderr);
    await aws.waitFor((all) =>
      all
        .filter((i) => i.tags["fitsfleet:fleet"] === "killed-one")
        .every((i) => i.state === "terminated"),
    );
    assert.deepEqual(
      live(aws).map((i) => i.tags["fitsfleet:fleet"]),
      ["keep-one"],
    );
    assert.deepEqual(
      aws.launchTemplates().map((l) => l.name),
      ["fitsfleet-keep-one"],
    );
    assert.equal((await fleetRow(db.url, "killed-one"))?.state, "ended");
    const after = await runCli(["--json", "fleet", "sweep"], env);
    assert.deepEqual(
      (JSON.parse(after.stdout) as { orphans: unknown[] }).orphans,
      [],
    );
  });

  it("the guard ends the fleet when the budget is spent, and exits non-zero naming the cap", async (t) => {
    const { aws, image, db, env } = await setup(t);
    // Work that no one does: the queue never drains, so only the budget ends the fleet.
    await withClient(db.url, (c) =>
      c.query(
        `INSERT INTO fitsfleet.ingest_ledger (storage, path, filename, sortkey) VALUES ('s3://archive/data', '', 'N20200101S0001.fits', 'x')`,
      ),
    );
    // Three c6i.large at $0.0321/h spend $0.00005 in about 1.9 s.
    const r = await runCli(
      [
        "--json",
        ...launchArgs(image, "budget-one", [
          "--budget",
          "0.00005",
          "--watch",
          "--interval",
          "1s",
        ]),
      ],
      env,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /the budget is spent/);
    const out = JSON.parse(r.stdout) as { guard: { reason: string } };
    assert.equal(out.guard.reason, "budget");
    await aws.waitFor((all) => all.every((i) => i.state === "terminated"));
    assert.deepEqual(aws.launchTemplates(), []);
    const row = await fleetRow(db.url, "budget-one");
    assert.equal(row?.state, "ended");
    assert.match(row?.end_reason ?? "", /budget/);
  });

  it("refuses an ec2 launch without --image or --subnets, and an on-demand base without its price, naming the flags", async (t) => {
    const { env, image } = await setup(t);
    const noSubnets = await runCli(
      ["rebuild", "launch-fleet", "--provider", "ec2", "--image", image],
      env,
    );
    assert.equal(noSubnets.code, 2);
    assert.match(noSubnets.stderr, /--subnets/);
    const od = await runCli(
      launchArgs(image, "od-one", ["--on-demand-base", "1", "--dry-run"]),
      env,
    );
    assert.equal(od.code, 2);
    assert.match(od.stderr, /--on-demand-price/);
    const badImage = await runCli(
      launchArgs("ami-00000000", "img-one", ["--dry-run"]),
      env,
    );
    assert.notEqual(badImage.code, 0);
    assert.match(badImage.stderr, /ami-00000000/);
  });
});
