/**
 * The loopback endpoint's EC2 Query protocol through the real SDK client:
 * launch templates recorded as asked, the launch policy, RunInstances,
 * DescribeInstances filters and pages, tags, the price and type tables,
 * and TerminateInstances ending the instances' processes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  CreateLaunchTemplateCommand,
  CreateTagsCommand,
  DeleteLaunchTemplateCommand,
  DeleteTagsCommand,
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSpotPriceHistoryCommand,
  DescribeSubnetsCommand,
  DescribeTagsCommand,
  type Instance,
  paginateDescribeInstances,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";

import {
  alive,
  IDLE,
  SECURE_LAUNCH,
  testEndpoint,
  untilGone,
} from "./fixtures.js";

describe("loopback EC2", () => {
  it("records a launch template as asked and returns it through DescribeLaunchTemplateVersions", async (t) => {
    const aws = await testEndpoint(t);
    const ec2 = aws.ec2Client();
    const ami = aws.registerImage({ name: "base", argv: IDLE });
    const userData = Buffer.from("#!/bin/sh\necho hello\n").toString("base64");
    const created = await ec2.send(
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
              Ebs: { Encrypted: true, VolumeSize: 16, VolumeType: "gp3" },
            },
          ],
          TagSpecifications: [
            {
              ResourceType: "instance",
              Tags: [{ Key: "fitsfleet:run", Value: "run-1" }],
            },
          ],
        },
        TagSpecifications: [
          {
            ResourceType: "launch-template",
            Tags: [{ Key: "fitsfleet:run", Value: "run-1" }],
          },
        ],
      }),
    );
    const id = created.LaunchTemplate?.LaunchTemplateId;
    assert.match(id ?? "", /^lt-[0-9a-f]{17}$/);
    assert.deepEqual(created.LaunchTemplate?.Tags, [
      { Key: "fitsfleet:run", Value: "run-1" },
    ]);

    const [recorded] = aws.launchTemplates();
    assert.equal(recorded?.data.metadataOptions?.httpTokens, "required");
    assert.equal(recorded?.data.metadataOptions?.httpPutResponseHopLimit, 1);
    assert.equal(recorded?.data.instanceInitiatedShutdownBehavior, "terminate");
    assert.equal(recorded?.data.blockDeviceMappings?.[0]?.encrypted, true);
    assert.equal(recorded?.data.iamInstanceProfile?.name, "fitsfleet-worker");

    const versions = await ec2.send(
      new DescribeLaunchTemplateVersionsCommand({
        LaunchTemplateId: id,
        Versions: ["$Latest"],
      }),
    );
    const data = versions.LaunchTemplateVersions?.[0]?.LaunchTemplateData;
    assert.equal(data?.MetadataOptions?.HttpTokens, "required");
    assert.equal(data?.MetadataOptions?.HttpPutResponseHopLimit, 1);
    assert.equal(data?.BlockDeviceMappings?.[0]?.Ebs?.Encrypted, true);
    assert.equal(data?.UserData, userData);
    assert.equal(data?.TagSpecifications?.[0]?.Tags?.[0]?.Value, "run-1");

    await assert.rejects(
      ec2.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: "fitsfleet-run-1",
          LaunchTemplateData: { ImageId: ami },
        }),
      ),
      { name: "InvalidLaunchTemplateName.AlreadyExistsException" },
    );
    const byTag = await ec2.send(
      new DescribeLaunchTemplatesCommand({
        Filters: [{ Name: "tag:fitsfleet:run", Values: ["run-1"] }],
      }),
    );
    assert.deepEqual(
      byTag.LaunchTemplates?.map((lt) => lt.LaunchTemplateId),
      [id],
    );
    await ec2.send(new DeleteLaunchTemplateCommand({ LaunchTemplateId: id }));
    await assert.rejects(
      ec2.send(
        new DescribeLaunchTemplatesCommand({
          LaunchTemplateNames: ["fitsfleet-run-1"],
        }),
      ),
      {
        name: "InvalidLaunchTemplateName.NotFoundException",
      },
    );
  });

  it("refuses launches that allow IMDSv1 or a high hop limit, as an SCP would", async (t) => {
    const aws = await testEndpoint(t);
    const ec2 = aws.ec2Client({ maxAttempts: 1 });
    const ami = aws.registerImage({ name: "base", argv: IDLE });
    await assert.rejects(
      ec2.send(
        new RunInstancesCommand({ ImageId: ami, MinCount: 1, MaxCount: 1 }),
      ),
      (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
        assert.equal(e.name, "UnauthorizedOperation");
        assert.equal(e.$metadata?.httpStatusCode, 403);
        return true;
      },
    );
    await assert.rejects(
      ec2.send(
        new RunInstancesCommand({
          ImageId: ami,
          MinCount: 1,
          MaxCount: 1,
          MetadataOptions: {
            HttpTokens: "required",
            HttpPutResponseHopLimit: 5,
          },
        }),
      ),
      { name: "UnauthorizedOperation" },
    );
    await assert.rejects(
      ec2.send(
        new RunInstancesCommand({
          ImageId: "ami-00000000000000000",
          MinCount: 1,
          MaxCount: 1,
          ...SECURE_LAUNCH,
        }),
      ),
      {
        name: "InvalidAMIID.NotFound",
      },
    );
    assert.equal(aws.instances().length, 0);
  });

  it("pages DescribeInstances and filters by tag, tag key, state and id; TerminateInstances ends the processes", async (t) => {
    const aws = await testEndpoint(t);
    const ec2 = aws.ec2Client();
    const ami = aws.registerImage({ name: "base", argv: IDLE });
    const launch = (run: string, count: number) =>
      ec2.send(
        new RunInstancesCommand({
          ImageId: ami,
          InstanceType: "c6i.large",
          MinCount: count,
          MaxCount: count,
          SubnetId: "subnet-0000000000000002b",
          ...SECURE_LAUNCH,
          TagSpecifications: [
            {
              ResourceType: "instance",
              Tags: [{ Key: "fitsfleet:run", Value: run }],
            },
          ],
        }),
      );
    const first = await launch("run-1", 5);
    await launch("run-2", 2);
    assert.equal(first.Instances?.length, 5);
    assert.equal(first.Instances?.[0]?.State?.Name, "pending");
    assert.equal(
      first.Instances?.[0]?.Placement?.AvailabilityZone,
      "us-east-1b",
    );
    await aws.waitFor(
      (all) => all.length === 7 && all.every((i) => i.state === "running"),
    );

    const pages: Instance[][] = [];
    for await (const page of paginateDescribeInstances(
      { client: ec2, pageSize: 5 },
      { Filters: [{ Name: "tag-key", Values: ["fitsfleet:run"] }] },
    )) {
      pages.push((page.Reservations ?? []).flatMap((r) => r.Instances ?? []));
    }
    assert.deepEqual(
      pages.map((p) => p.length),
      [5, 2],
    );
    assert.equal(new Set(pages.flat().map((i) => i.InstanceId)).size, 7);

    const run1 = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: "tag:fitsfleet:run", Values: ["run-1"] },
          { Name: "instance-state-name", Values: ["running"] },
        ],
      }),
    );
    const run1Ids = (run1.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .map((i) => i.InstanceId ?? "");
    assert.deepEqual(
      new Set(run1Ids),
      new Set(first.Instances?.map((i) => i.InstanceId)),
    );
    const wildcard = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [{ Name: "tag:fitsfleet:run", Values: ["run-*"] }],
      }),
    );
    assert.equal(
      (wildcard.Reservations ?? []).flatMap((r) => r.Instances ?? []).length,
      7,
    );
    await assert.rejects(
      ec2.send(
        new DescribeInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"] }),
      ),
      { name: "InvalidInstanceID.NotFound" },
    );
    await assert.rejects(
      ec2.send(new DescribeInstancesCommand({ MaxResults: 2 })),
      { name: "InvalidParameterValue" },
    );

    const pids = aws.instances().map((i) => i.pid ?? 0);
    assert.ok(pids.every((pid) => pid > 0 && alive(pid)));
    const terminated = await ec2.send(
      new TerminateInstancesCommand({ InstanceIds: run1Ids }),
    );
    assert.deepEqual(
      terminated.TerminatingInstances?.map((c) => [
        c.PreviousState?.Name,
        c.CurrentState?.Name,
      ]),
      run1Ids.map(() => ["running", "shutting-down"]),
    );
    await aws.waitFor((all) =>
      all
        .filter((i) => run1Ids.includes(i.id))
        .every((i) => i.state === "terminated"),
    );
    const ended = aws.instances().filter((i) => run1Ids.includes(i.id));
    assert.deepEqual(await untilGone(ended.map((i) => i.pid ?? 0)), []);
    const after = await ec2.send(
      new DescribeInstancesCommand({ InstanceIds: [run1Ids[0] ?? ""] }),
    );
    const gone = after.Reservations?.[0]?.Instances?.[0];
    assert.equal(gone?.State?.Name, "terminated");
    assert.equal(gone?.StateReason?.Code, "Client.UserInitiatedShutdown");
    // Terminating again is not an error, as on EC2.
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: run1Ids }));
  });

  it("creates, deletes and describes tags; aws: keys are reserved", async (t) => {
    const aws = await testEndpoint(t);
    const ec2 = aws.ec2Client();
    const ami = aws.registerImage({ name: "base", argv: IDLE });
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: ami,
        MinCount: 1,
        MaxCount: 1,
        ...SECURE_LAUNCH,
      }),
    );
    const id = run.Instances?.[0]?.InstanceId ?? "";
    await ec2.send(
      new CreateTagsCommand({
        Resources: [id, ami],
        Tags: [
          { Key: "a", Value: "1" },
          { Key: "b", Value: "2" },
        ],
      }),
    );
    await ec2.send(
      new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: "b" }] }),
    );
    const tags = await ec2.send(
      new DescribeTagsCommand({
        Filters: [{ Name: "resource-id", Values: [id, ami] }],
      }),
    );
    assert.deepEqual(
      tags.Tags?.map((t) => [t.ResourceType, t.Key, t.Value]).sort(),
      [
        ["image", "a", "1"],
        ["image", "b", "2"],
        ["instance", "a", "1"],
      ],
    );
    await assert.rejects(
      ec2.send(
        new CreateTagsCommand({
          Resources: [id],
          Tags: [{ Key: "aws:x", Value: "1" }],
        }),
      ),
      { name: "InvalidParameterValue" },
    );
    await assert.rejects(
      ec2.send(
        new StopInstancesCommand({ InstanceIds: ["i-0000000000000000f"] }),
      ),
      { name: "InvalidInstanceID.NotFound" },
    );
    await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    await aws.waitFor((all) => all[0]?.state === "stopped");
  });

  it("serves the fixed spot price table, instance types and subnets", async (t) => {
    const aws = await testEndpoint(t);
    const ec2 = aws.ec2Client();
    const prices = await ec2.send(
      new DescribeSpotPriceHistoryCommand({
        InstanceTypes: ["c6i.large", "m5.large"],
        ProductDescriptions: ["Linux/UNIX"],
      }),
    );
    assert.equal(prices.SpotPriceHistory?.length, 6);
    const cheapest = [...(prices.SpotPriceHistory ?? [])].sort(
      (a, b) => Number(a.SpotPrice) - Number(b.SpotPrice),
    )[0];
    assert.deepEqual(
      [
        cheapest?.InstanceType,
        cheapest?.AvailabilityZone,
        Number(cheapest?.SpotPrice),
      ],
      ["c6i.large", "us-east-1c", 0.0309],
    );
    const types = await ec2.send(
      new DescribeInstanceTypesCommand({
        InstanceTypes: ["m5.large", "c5.xlarge"],
      }),
    );
    assert.deepEqual(
      types.InstanceTypes?.map((i) => [
        i.InstanceType,
        i.VCpuInfo?.DefaultVCpus,
        i.MemoryInfo?.SizeInMiB,
      ]),
      [
        ["m5.large", 2, 8192],
        ["c5.xlarge", 4, 8192],
      ],
    );
    const subnets = await ec2.send(
      new DescribeSubnetsCommand({
        Filters: [{ Name: "availability-zone", Values: ["us-east-1c"] }],
      }),
    );
    assert.deepEqual(
      subnets.Subnets?.map((s) => s.SubnetId),
      ["subnet-0000000000000003c"],
    );
  });
});
