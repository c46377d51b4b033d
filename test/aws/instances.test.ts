/**
 * Instances as processes: an instant fleet from a launch template whose
 * instances boot a script that uses IMDSv2 and reads a secret from SSM with
 * its role (no secret in user-data), then shuts itself down; IMDSv1 refused;
 * SIGTERM then SIGKILL on termination; DeleteFleets; and no process left
 * after the endpoint closes, or after its own process is killed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";

import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  DeleteFleetsCommand,
  DescribeFleetsCommand,
  DescribeInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { PutParameterCommand } from "@aws-sdk/client-ssm";

import { packageRoot } from "../../lib/paths.js";
import { tempDir } from "../helpers/tmp.js";
import {
  alive,
  IDLE,
  SECURE_LAUNCH,
  testEndpoint,
  untilGone,
} from "./fixtures.js";

const SSM_MODULE = pathToFileURL(
  createRequire(import.meta.url).resolve("@aws-sdk/client-ssm"),
).href;

/** What each instance boots: it reports what it learnt in boot.json, then exits 0 (a shutdown). */
const BOOT_SCRIPT = `
import { writeFileSync } from "node:fs";
const imds = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
const v1 = await fetch(imds + "/latest/meta-data/instance-id");
const token = await (await fetch(imds + "/latest/api/token", {
  method: "PUT",
  headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" },
})).text();
const get = async (path) => {
  const r = await fetch(imds + path, { headers: { "x-aws-ec2-metadata-token": token } });
  return r.ok ? r.text() : "HTTP " + r.status;
};
const userData = JSON.parse(await get("/latest/user-data"));
const { SSMClient, GetParameterCommand } = await import(${JSON.stringify(SSM_MODULE)});
const ssm = new SSMClient({});
const secret = await ssm.send(new GetParameterCommand({ Name: userData.parameter, WithDecryption: true }));
let outside;
try {
  await ssm.send(new GetParameterCommand({ Name: "/operator/only", WithDecryption: true }));
} catch (error) {
  outside = error.name;
}
writeFileSync("boot.json", JSON.stringify({
  v1Status: v1.status,
  instanceId: await get("/latest/meta-data/instance-id"),
  instanceType: await get("/latest/meta-data/instance-type"),
  zone: await get("/latest/meta-data/placement/availability-zone"),
  lifecycle: await get("/latest/meta-data/instance-life-cycle"),
  run: await get("/latest/meta-data/tags/instance/fitsfleet:run"),
  spot: await get("/latest/meta-data/spot/instance-action"),
  userData,
  secret: secret.Parameter.Value,
  outside,
}));
console.log("boot done");
`;

describe("loopback instances", () => {
  it("launches an instant fleet whose instances boot with IMDSv2, read their secret from SSM with their role, and shut down", async (t) => {
    const aws = await testEndpoint(t, {
      roles: { "fitsfleet-worker": { ssmReadPrefixes: ["/fitsfleet/run-1/"] } },
      instanceCredentials: "imds",
    });
    const ec2 = aws.ec2Client();
    const ssm = aws.ssmClient();
    const secret = "postgres://ingest:s3cret-Pa55@db.internal/fitsdata";
    await ssm.send(
      new PutParameterCommand({
        Name: "/fitsfleet/run-1/database-url",
        Value: secret,
        Type: "SecureString",
      }),
    );
    await ssm.send(
      new PutParameterCommand({
        Name: "/operator/only",
        Value: "not-for-workers",
        Type: "SecureString",
      }),
    );
    const root = tempDir(t, "ff-image-");
    writeFileSync(join(root, "boot.mjs"), BOOT_SCRIPT);
    const ami = aws.registerImage({
      name: "worker",
      argv: [process.execPath, "boot.mjs"],
      root,
    });
    const userData = Buffer.from(
      JSON.stringify({ parameter: "/fitsfleet/run-1/database-url" }),
    ).toString("base64");
    const lt = await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "fitsfleet-run-1",
        LaunchTemplateData: {
          ImageId: ami,
          UserData: userData,
          IamInstanceProfile: { Name: "fitsfleet-worker" },
          MetadataOptions: {
            HttpTokens: "required",
            HttpPutResponseHopLimit: 1,
            InstanceMetadataTags: "enabled",
          },
          InstanceInitiatedShutdownBehavior: "terminate",
          BlockDeviceMappings: [
            {
              DeviceName: "/dev/xvda",
              Ebs: { Encrypted: true, VolumeSize: 8 },
            },
          ],
          TagSpecifications: [
            {
              ResourceType: "instance",
              Tags: [{ Key: "fitsfleet:run", Value: "run-1" }],
            },
          ],
        },
      }),
    );
    const fleet = await ec2.send(
      new CreateFleetCommand({
        Type: "instant",
        LaunchTemplateConfigs: [
          {
            LaunchTemplateSpecification: {
              LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId,
              Version: "$Latest",
            },
            Overrides: (["c6i.large", "m5.large"] as const).flatMap(
              (InstanceType) =>
                [
                  "subnet-0000000000000001a",
                  "subnet-0000000000000002b",
                  "subnet-0000000000000003c",
                ].map((SubnetId) => ({ InstanceType, SubnetId })),
            ),
          },
        ],
        TargetCapacitySpecification: {
          TotalTargetCapacity: 3,
          OnDemandTargetCapacity: 1,
          DefaultTargetCapacityType: "spot",
        },
        SpotOptions: { AllocationStrategy: "price-capacity-optimized" },
        OnDemandOptions: { AllocationStrategy: "lowest-price" },
        TagSpecifications: [
          {
            ResourceType: "fleet",
            Tags: [{ Key: "fitsfleet:run", Value: "run-1" }],
          },
        ],
      }),
    );
    assert.deepEqual(fleet.Errors ?? [], []);
    // On-demand: the cheapest type's first pool; spot: the cheapest pool of all (c6i.large in zone c).
    assert.deepEqual(
      fleet.Instances?.map((p) => [
        p.Lifecycle,
        p.InstanceType,
        p.LaunchTemplateAndOverrides?.Overrides?.SubnetId,
        p.InstanceIds?.length,
      ]),
      [
        ["on-demand", "c6i.large", "subnet-0000000000000001a", 1],
        ["spot", "c6i.large", "subnet-0000000000000003c", 2],
      ],
    );
    const ids = (fleet.Instances ?? []).flatMap((p) => p.InstanceIds ?? []);
    const done = await aws.waitFor(
      (all) => all.length === 3 && all.every((i) => i.state === "terminated"),
    );
    for (const instance of done) {
      const boot = JSON.parse(
        readFileSync(join(instance.dir, "boot.json"), "utf8"),
      ) as Record<string, unknown>;
      assert.equal(boot.v1Status, 401, "IMDSv1 is refused");
      assert.equal(boot.instanceId, instance.id);
      assert.equal(boot.instanceType, "c6i.large");
      assert.equal(boot.zone, instance.zone);
      assert.equal(boot.lifecycle, instance.lifecycle);
      assert.equal(boot.run, "run-1");
      assert.equal(boot.spot, "HTTP 404");
      assert.deepEqual(boot.userData, {
        parameter: "/fitsfleet/run-1/database-url",
      });
      assert.equal(boot.secret, secret);
      assert.equal(boot.outside, "AccessDeniedException");
      assert.equal(
        instance.stateReason?.code,
        "Client.InstanceInitiatedShutdown",
      );
      assert.equal(instance.exitCode, 0);
      assert.equal(instance.tags["aws:ec2:fleet-id"], fleet.FleetId);
      assert.equal(instance.volumes[0]?.encrypted, true);
      assert.equal(
        readFileSync(join(instance.dir, "user-data"), "utf8"),
        JSON.stringify({ parameter: "/fitsfleet/run-1/database-url" }),
      );
      assert.match(
        readFileSync(join(instance.dir, "console.log"), "utf8"),
        /boot done/,
      );
      assert.ok(
        aws
          .imdsRequests(instance.id)
          .some((r) => r.kind === "refused" && r.status === 401),
      );
    }
    assert.deepEqual(new Set(done.map((i) => i.id)), new Set(ids));
    // Each instance read the secret itself, signed with its own role's key, fetched from IMDS.
    const reads = aws
      .ssmReads()
      .filter((r) => r.name === "/fitsfleet/run-1/database-url");
    assert.deepEqual(new Set(reads.map((r) => r.principal)), new Set(ids));
    for (const read of reads) {
      assert.equal(read.allowed, true);
      assert.equal(read.withDecryption, true);
      assert.equal(read.accessKeyId, aws.instance(read.principal).accessKeyId);
    }
    assert.ok(
      aws
        .imdsRequests(ids[0] ?? "")
        .some(
          (r) =>
            r.path ===
              "/latest/meta-data/iam/security-credentials/fitsfleet-worker" &&
            r.kind === "v2",
        ),
    );
    assert.deepEqual(aws.secretLeaks(), []);
    const puts = aws.calls().filter((c) => c.action === "PutParameter");
    assert.ok(
      puts.every(
        (c) =>
          c.principal === "operator" &&
          c.accessKeyId === aws.operatorCredentials.accessKeyId,
      ),
    );
  });

  it("sends SIGTERM on TerminateInstances and SIGKILL after the grace period", async (t) => {
    const aws = await testEndpoint(t, { terminateGraceMs: 1000 });
    const ec2 = aws.ec2Client();
    const polite = aws.registerImage({
      name: "polite",
      argv: [
        process.execPath,
        "-e",
        `process.on("SIGTERM", () => { require("fs").writeFileSync("sigterm", "1"); process.exit(0); }); require("fs").writeFileSync("ready", "1"); setInterval(() => {}, 1000);`,
      ],
    });
    const stubborn = aws.registerImage({
      name: "stubborn",
      argv: [
        process.execPath,
        "-e",
        `process.on("SIGTERM", () => { require("fs").writeFileSync("sigterm", "1"); }); require("fs").writeFileSync("ready", "1"); setInterval(() => {}, 1000);`,
      ],
    });
    const launch = async (ImageId: string) =>
      (
        await ec2.send(
          new RunInstancesCommand({
            ImageId,
            MinCount: 1,
            MaxCount: 1,
            ...SECURE_LAUNCH,
          }),
        )
      ).Instances?.[0]?.InstanceId ?? "";
    const ids = [await launch(polite), await launch(stubborn)];
    // Each writes "ready" once its SIGTERM handler is in place.
    await aws.waitFor((all) =>
      all.every((i) => existsSync(join(i.dir, "ready"))),
    );
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    const done = await aws.waitFor((all) =>
      all.every((i) => i.state === "terminated"),
    );
    const [a, b] = ids.map((id) => done.find((i) => i.id === id));
    assert.equal(a?.exitCode, 0);
    assert.equal(readFileSync(join(a?.dir ?? "", "sigterm"), "utf8"), "1");
    assert.equal(b?.exitSignal, "SIGKILL");
    assert.equal(readFileSync(join(b?.dir ?? "", "sigterm"), "utf8"), "1");
  });

  it("DeleteFleets terminates an instant fleet's instances, and refuses to keep them running", async (t) => {
    const aws = await testEndpoint(t);
    const ec2 = aws.ec2Client();
    const ami = aws.registerImage({ name: "base", argv: IDLE });
    const lt = await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "lt",
        LaunchTemplateData: { ImageId: ami, ...SECURE_LAUNCH },
      }),
    );
    const fleet = await ec2.send(
      new CreateFleetCommand({
        Type: "instant",
        LaunchTemplateConfigs: [
          {
            LaunchTemplateSpecification: {
              LaunchTemplateName: lt.LaunchTemplate?.LaunchTemplateName,
              Version: "$Default",
            },
            Overrides: [{ InstanceType: "m5.large" }],
          },
        ],
        TargetCapacitySpecification: {
          TotalTargetCapacity: 2,
          DefaultTargetCapacityType: "spot",
        },
        SpotOptions: { AllocationStrategy: "price-capacity-optimized" },
      }),
    );
    const fleetId = fleet.FleetId ?? "";
    const kept = await ec2.send(
      new DeleteFleetsCommand({
        FleetIds: [fleetId],
        TerminateInstances: false,
      }),
    );
    assert.equal(
      kept.UnsuccessfulFleetDeletions?.[0]?.Error?.Code,
      "fleetNotInDeletableState",
    );
    const described = await ec2.send(
      new DescribeFleetsCommand({ FleetIds: [fleetId] }),
    );
    assert.equal(described.Fleets?.[0]?.FleetState, "active");
    assert.equal(described.Fleets?.[0]?.Instances?.[0]?.InstanceIds?.length, 2);
    const deleted = await ec2.send(
      new DeleteFleetsCommand({
        FleetIds: [fleetId, "fleet-00000000-0000-0000-0000-000000000000"],
        TerminateInstances: true,
      }),
    );
    assert.deepEqual(
      deleted.SuccessfulFleetDeletions?.map((d) => [
        d.FleetId,
        d.PreviousFleetState,
      ]),
      [[fleetId, "active"]],
    );
    assert.equal(
      deleted.UnsuccessfulFleetDeletions?.[0]?.Error?.Code,
      "fleetIdDoesNotExist",
    );
    await aws.waitFor((all) => all.every((i) => i.state === "terminated"));
    const after = await ec2.send(
      new DescribeFleetsCommand({ FleetIds: [fleetId] }),
    );
    assert.equal(after.Fleets?.[0]?.FleetState, "deleted");
    const byFleet = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: "tag:aws:ec2:fleet-id", Values: [fleetId] },
          { Name: "instance-state-name", Values: ["running"] },
        ],
      }),
    );
    assert.deepEqual(byFleet.Reservations, []);
  });

  it("leaves no process once the endpoint closes", async (t) => {
    const aws = await testEndpoint(t);
    const ami = aws.registerImage({
      name: "forks",
      argv: ["sh", "-c", "sleep 600 & echo $! > grandchild.pid; wait"],
    });
    await aws.ec2Client().send(
      new RunInstancesCommand({
        ImageId: ami,
        MinCount: 3,
        MaxCount: 3,
        ...SECURE_LAUNCH,
      }),
    );
    const running = await aws.waitFor((all) =>
      all.every((i) => {
        try {
          return (
            readFileSync(join(i.dir, "grandchild.pid"), "utf8").trim() !== ""
          );
        } catch {
          return false;
        }
      }),
    );
    const pids = running.flatMap((i) => [
      i.pid ?? 0,
      Number(readFileSync(join(i.dir, "grandchild.pid"), "utf8")),
    ]);
    assert.ok(pids.every(alive));
    await aws.close();
    // SIGKILL has been sent to every group; the kernel may take a moment to finish them.
    assert.deepEqual(await untilGone(pids), []);
  });

  it("leaves no process when the endpoint's own process is killed", async (t) => {
    const root = tempDir(t, "ff-aws-");
    mkdirSync(root, { recursive: true });
    const driver = spawn(
      process.execPath,
      ["--import", "tsx", join(packageRoot(), "test/aws/kill-driver.ts"), root],
      {
        cwd: packageRoot(),
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    t.after(() => driver.kill("SIGKILL"));
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      driver.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) {
          resolve(out.split("\n")[0] ?? "");
        }
      });
      driver.once("exit", (code) => reject(new Error(`driver exited ${code}`)));
    });
    const { pid, grandchild } = JSON.parse(line) as {
      pid: number;
      grandchild: number;
    };
    assert.ok(alive(pid) && alive(grandchild));
    driver.kill("SIGKILL");
    assert.deepEqual(
      await untilGone([pid, grandchild]),
      [],
      "the instance's init and the process it started are gone",
    );
  });
});
