/**
 * Injected faults: capacity errors part-way through a fleet or a
 * RunInstances, throttling that outlasts the SDK's retries, and spot
 * interruption notices and rebalance recommendations in instance metadata.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  CreateFleetCommand,
  type CreateFleetCommandInput,
  CreateLaunchTemplateCommand,
  DescribeInstancesCommand,
  RunInstancesCommand,
} from "@aws-sdk/client-ec2";
import { GetParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";

import type { AwsEndpoint } from "./endpoint.js";
import { IDLE, SECURE_LAUNCH, testEndpoint } from "./fixtures.js";

async function fleetInput(
  aws: AwsEndpoint,
  total: number,
): Promise<CreateFleetCommandInput> {
  const ami = aws.registerImage({ name: "base", argv: IDLE });
  const lt = await aws.ec2Client().send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: `lt-${total}`,
      LaunchTemplateData: { ImageId: ami, ...SECURE_LAUNCH },
    }),
  );
  return {
    Type: "instant",
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: {
          LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId,
          Version: "$Latest",
        },
        // By spot price: c6i.large/a, then c6i.large/b, then m5.large/a.
        Overrides: [
          { InstanceType: "c6i.large", SubnetId: "subnet-0000000000000001a" },
          { InstanceType: "c6i.large", SubnetId: "subnet-0000000000000002b" },
          { InstanceType: "m5.large", SubnetId: "subnet-0000000000000001a" },
        ],
      },
    ],
    TargetCapacitySpecification: {
      TotalTargetCapacity: total,
      DefaultTargetCapacityType: "spot",
    },
    SpotOptions: { AllocationStrategy: "price-capacity-optimized" },
  };
}

async function idleSpotInstance(aws: AwsEndpoint): Promise<string> {
  const ami = aws.registerImage({ name: "idle", argv: IDLE });
  const run = await aws.ec2Client().send(
    new RunInstancesCommand({
      ImageId: ami,
      MinCount: 1,
      MaxCount: 1,
      ...SECURE_LAUNCH,
      InstanceMarketOptions: { MarketType: "spot" },
    }),
  );
  const id = run.Instances?.[0]?.InstanceId ?? "";
  await aws.waitFor((all) => all.find((i) => i.id === id)?.state === "running");
  return id;
}

async function imdsGet(
  aws: AwsEndpoint,
  id: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const base = aws.instance(id).imdsUrl ?? "";
  const token = await (
    await fetch(`${base}/latest/api/token`, {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "30" },
    })
  ).text();
  const response = await fetch(base + path, {
    headers: { "x-aws-ec2-metadata-token": token },
  });
  return { status: response.status, body: await response.text() };
}

describe("loopback faults", () => {
  it("fails a fleet's pools for capacity part-way, with an error per override and the instances that launched", async (t) => {
    const aws = await testEndpoint(t);
    aws.injectCapacityError({ afterInstances: 2 });
    const fleet = await aws
      .ec2Client()
      .send(new CreateFleetCommand(await fleetInput(aws, 4)));
    assert.deepEqual(
      fleet.Instances?.map((p) => [
        p.InstanceType,
        p.SubnetId,
        p.InstanceIds?.length,
      ]),
      [["c6i.large", "subnet-0000000000000001a", 2]],
    );
    assert.deepEqual(
      fleet.Errors?.map((e) => [
        e.ErrorCode,
        e.Lifecycle,
        e.LaunchTemplateAndOverrides?.Overrides?.InstanceType,
        e.LaunchTemplateAndOverrides?.Overrides?.SubnetId,
      ]),
      [
        [
          "InsufficientInstanceCapacity",
          "spot",
          "c6i.large",
          "subnet-0000000000000001a",
        ],
        [
          "InsufficientInstanceCapacity",
          "spot",
          "c6i.large",
          "subnet-0000000000000002b",
        ],
        [
          "InsufficientInstanceCapacity",
          "spot",
          "m5.large",
          "subnet-0000000000000001a",
        ],
      ],
    );
    assert.equal(aws.instances().length, 2);
  });

  it("moves to the next pool when one instance type runs out", async (t) => {
    const aws = await testEndpoint(t);
    aws.injectCapacityError({ instanceType: "c6i.large", afterInstances: 1 });
    const fleet = await aws
      .ec2Client()
      .send(new CreateFleetCommand(await fleetInput(aws, 3)));
    assert.deepEqual(
      fleet.Instances?.map((p) => [
        p.InstanceType,
        p.SubnetId,
        p.InstanceIds?.length,
      ]),
      [
        ["c6i.large", "subnet-0000000000000001a", 1],
        ["m5.large", "subnet-0000000000000001a", 2],
      ],
    );
    assert.deepEqual(
      fleet.Errors?.map(
        (e) => e.LaunchTemplateAndOverrides?.Overrides?.SubnetId,
      ),
      ["subnet-0000000000000001a", "subnet-0000000000000002b"],
    );
  });

  it("refuses a RunInstances that cannot get its MinCount, with a 500", async (t) => {
    const aws = await testEndpoint(t);
    const ami = aws.registerImage({ name: "base", argv: IDLE });
    aws.injectCapacityError({ zone: "us-east-1a" });
    await assert.rejects(
      aws.ec2Client({ maxAttempts: 1 }).send(
        new RunInstancesCommand({
          ImageId: ami,
          MinCount: 1,
          MaxCount: 1,
          ...SECURE_LAUNCH,
        }),
      ),
      (e: Error & { $metadata?: { httpStatusCode?: number } }) =>
        e.name === "InsufficientInstanceCapacity" &&
        e.$metadata?.httpStatusCode === 500,
    );
    assert.equal(aws.instances().length, 0);
  });

  it("throttles the next calls of an action past the SDK's retries", async (t) => {
    const aws = await testEndpoint(t);
    const ec2 = aws.ec2Client({ maxAttempts: 2 });
    aws.injectThrottle("DescribeInstances", 3);
    await assert.rejects(
      ec2.send(new DescribeInstancesCommand({})),
      (
        e: Error & {
          $metadata?: { httpStatusCode?: number; attempts?: number };
        },
      ) => {
        assert.equal(e.name, "RequestLimitExceeded");
        assert.equal(e.$metadata?.httpStatusCode, 503);
        assert.equal(e.$metadata?.attempts, 2);
        return true;
      },
    );
    const recovered = await ec2.send(new DescribeInstancesCommand({}));
    assert.equal(
      recovered.$metadata.attempts,
      2,
      "one more throttled call, then success",
    );
    assert.deepEqual(
      aws
        .calls()
        .filter((c) => c.action === "DescribeInstances")
        .map((c) => c.error),
      [
        "RequestLimitExceeded",
        "RequestLimitExceeded",
        "RequestLimitExceeded",
        undefined,
      ],
    );

    const ssm = aws.ssmClient({ maxAttempts: 1 });
    await ssm.send(new PutParameterCommand({ Name: "/p", Value: "v" }));
    aws.injectThrottle("GetParameter", 1);
    await assert.rejects(ssm.send(new GetParameterCommand({ Name: "/p" })), {
      name: "ThrottlingException",
    });
    assert.equal(
      (await ssm.send(new GetParameterCommand({ Name: "/p" }))).Parameter
        ?.Value,
      "v",
    );
  });

  it("posts a spot interruption notice two minutes ahead and a rebalance recommendation, then interrupts", async (t) => {
    const aws = await testEndpoint(t);
    const id = await idleSpotInstance(aws);
    assert.equal(
      (await imdsGet(aws, id, "/latest/meta-data/spot/instance-action")).status,
      404,
    );
    assert.equal(
      (
        await imdsGet(
          aws,
          id,
          "/latest/meta-data/events/recommendations/rebalance",
        )
      ).status,
      404,
    );

    const rebalance = aws.injectRebalanceRecommendation(id);
    assert.deepEqual(
      JSON.parse(
        (
          await imdsGet(
            aws,
            id,
            "/latest/meta-data/events/recommendations/rebalance",
          )
        ).body,
      ),
      rebalance,
    );

    const before = Date.now();
    aws.injectSpotInterruption(id, { enforceAfterMs: 200 });
    const notice = await imdsGet(
      aws,
      id,
      "/latest/meta-data/spot/instance-action",
    );
    assert.equal(notice.status, 200);
    const body = JSON.parse(notice.body) as { action: string; time: string };
    assert.equal(body.action, "terminate");
    const ahead = Date.parse(body.time) - before;
    assert.ok(ahead > 118_000 && ahead <= 121_000, `notice ${ahead} ms ahead`);
    assert.equal(
      (await imdsGet(aws, id, "/latest/meta-data/spot/termination-time")).body,
      body.time,
    );

    const [gone] = await aws.waitFor((all) => all[0]?.state === "terminated");
    assert.equal(gone?.stateReason?.code, "Server.SpotInstanceTermination");
  });
});
