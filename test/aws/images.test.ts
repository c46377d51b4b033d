/**
 * Images: CreateImage copies an instance's folder into a new image that new
 * instances boot from; DescribeImages by owner and tag; snapshots and their
 * deletion rules; DeregisterImage; GetConsoleOutput.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  CreateImageCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  GetConsoleOutputCommand,
  RunInstancesCommand,
} from "@aws-sdk/client-ec2";

import { SECURE_LAUNCH, testEndpoint } from "./fixtures.js";

describe("loopback images", () => {
  it("bakes an image from an instance, launches from it, and deregisters it", async (t) => {
    const aws = await testEndpoint(t);
    const ec2 = aws.ec2Client();
    // The base image "installs" on first boot, then boots from what it installed.
    const base = aws.registerImage({
      name: "debian-12",
      ownerId: "136693071363",
      argv: [
        "sh",
        "-c",
        'if [ -f installed.txt ]; then echo "booted $(cat installed.txt)"; else echo v1 > installed.txt; echo installing; fi; exec sleep 600',
      ],
    });
    const bake = await ec2.send(
      new RunInstancesCommand({
        ImageId: base,
        MinCount: 1,
        MaxCount: 1,
        ...SECURE_LAUNCH,
        BlockDeviceMappings: [
          { DeviceName: "/dev/xvda", Ebs: { Encrypted: true, VolumeSize: 12 } },
        ],
      }),
    );
    const bakeId = bake.Instances?.[0]?.InstanceId ?? "";
    await aws.waitFor((all) =>
      existsSync(join(all[0]?.dir ?? "", "installed.txt")),
    );
    const console = await ec2.send(
      new GetConsoleOutputCommand({ InstanceId: bakeId }),
    );
    assert.match(
      Buffer.from(console.Output ?? "", "base64").toString(),
      /installing/,
    );

    const { ImageId } = await ec2.send(
      new CreateImageCommand({
        InstanceId: bakeId,
        Name: "fitsfleet-worker-1",
        TagSpecifications: [
          {
            ResourceType: "image",
            Tags: [{ Key: "fitsfleet:image", Value: "worker" }],
          },
          {
            ResourceType: "snapshot",
            Tags: [{ Key: "fitsfleet:image", Value: "worker" }],
          },
        ],
      }),
    );
    await assert.rejects(
      ec2.send(
        new CreateImageCommand({
          InstanceId: bakeId,
          Name: "fitsfleet-worker-1",
        }),
      ),
      { name: "InvalidAMIName.Duplicate" },
    );
    const mine = await ec2.send(
      new DescribeImagesCommand({
        Owners: ["self"],
        Filters: [{ Name: "tag:fitsfleet:image", Values: ["worker"] }],
      }),
    );
    assert.deepEqual(
      mine.Images?.map((i) => [i.ImageId, i.Name, i.State, i.SourceInstanceId]),
      [[ImageId, "fitsfleet-worker-1", "available", bakeId]],
    );
    const snapshotId =
      mine.Images?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? "";
    const snapshots = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ["self"],
        Filters: [{ Name: "tag:fitsfleet:image", Values: ["worker"] }],
      }),
    );
    assert.deepEqual(
      snapshots.Snapshots?.map((s) => [
        s.SnapshotId,
        s.Encrypted,
        s.VolumeSize,
      ]),
      [[snapshotId, true, 12]],
    );
    const self = await ec2.send(
      new DescribeImagesCommand({ Owners: ["self"] }),
    );
    assert.deepEqual(
      self.Images?.map((i) => i.ImageId),
      [ImageId],
      "the base image is someone else's",
    );

    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId,
        MinCount: 1,
        MaxCount: 1,
        ...SECURE_LAUNCH,
      }),
    );
    const id = run.Instances?.[0]?.InstanceId ?? "";
    await aws.waitFor((all) => {
      const i = all.find((x) => x.id === id);
      return (
        i !== undefined &&
        existsSync(join(i.dir, "console.log")) &&
        readFileSync(join(i.dir, "console.log"), "utf8").includes("booted")
      );
    });
    const log = readFileSync(join(aws.instance(id).dir, "console.log"), "utf8");
    assert.equal(
      log,
      "booted v1\n",
      "the new instance starts from the baked disk, without the bake's console",
    );
    assert.equal(aws.instance(id).volumes[0]?.encrypted, true);

    await assert.rejects(
      ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
      { name: "InvalidSnapshot.InUse" },
    );
    await ec2.send(new DeregisterImageCommand({ ImageId }));
    assert.deepEqual(
      (await ec2.send(new DescribeImagesCommand({ Owners: ["self"] }))).Images,
      [],
    );
    await assert.rejects(
      ec2.send(
        new RunInstancesCommand({
          ImageId,
          MinCount: 1,
          MaxCount: 1,
          ...SECURE_LAUNCH,
        }),
      ),
      { name: "InvalidAMIID.NotFound" },
    );
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
    assert.deepEqual(
      (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] })))
        .Snapshots,
      [],
    );
  });
});
