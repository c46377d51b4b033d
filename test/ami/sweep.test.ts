/**
 * `ami sweep` against real `ami bake` subprocesses on the loopback
 * endpoint and s3rver: a bake SIGKILLed while its CreateImage was in
 * flight (the endpoint holds the call, the bake dies, the call completes,
 * as one that reached AWS does) leaves its builder, an image, its snapshot
 * and its bundle folder; the sweep shows them, ends them with --yes, and
 * leaves a second bake that is still running alone, which then finishes
 * and whose image, snapshot and bundle the sweep keeps. The heartbeat's
 * judgement by age is checked on its own.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { hostname } from "node:os";
import { describe, it } from "node:test";

import {
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
} from "@aws-sdk/client-ec2";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";

import { BUILD_TAG } from "../../ami/images.js";
import { judgeHeartbeat } from "../../ami/sweep.js";
import { CLI, runCli } from "../helpers/cli.js";
import { type AmiSetup, amiSetup } from "./helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

interface SweepJson {
  acted: boolean;
  swept: string[];
  bakes: {
    build: string;
    state: "running" | "gone";
    why: string;
    builders: string[];
    images: string[];
    keptImages: string[];
    snapshots: string[];
    objects: string[];
  }[];
}

function bake(setup: AmiSetup, location: string) {
  const child = spawn(
    process.execPath,
    [
      CLI,
      "--json",
      "ami",
      "bake",
      "--bundle-location",
      location,
      "--interval",
      "1s",
    ],
    {
      env: { ...process.env, ...setup.env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) =>
      resolve(code ?? (signal === null ? null : -1)),
    ),
  );
  return { child, exited, out: () => ({ stdout, stderr }) };
}

async function tagged(setup: AmiSetup) {
  const ec2 = setup.aws.ec2Client();
  const filter = [{ Name: "tag-key", Values: [BUILD_TAG] }];
  const [images, snapshots, objects] = await Promise.all([
    ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: filter })),
    ec2.send(
      new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: filter }),
    ),
    setup.s3.client.send(new ListObjectsV2Command({ Bucket: setup.s3.bucket })),
  ]);
  const tagOf = (tags?: { Key?: string; Value?: string }[]) =>
    tags?.find((t) => t.Key === BUILD_TAG)?.Value;
  return {
    builders: setup.aws
      .instances()
      .filter(
        (i) => i.tags[BUILD_TAG] !== undefined && i.state !== "terminated",
      )
      .map((i) => [i.tags[BUILD_TAG], i.id] as const),
    images: (images.Images ?? []).map(
      (i) => [tagOf(i.Tags), i.ImageId] as const,
    ),
    snapshots: (snapshots.Snapshots ?? []).map(
      (s) => [tagOf(s.Tags), s.SnapshotId] as const,
    ),
    objects: (objects.Contents ?? []).map((o) => o.Key ?? ""),
  };
}

describe("ami sweep", () => {
  it("ends what a SIGKILLed bake left (builder, image, snapshot, bundle) and leaves a running bake alone", async (t) => {
    const setup = await amiSetup(t);
    const { aws } = setup;
    const location = `s3://${setup.s3.bucket}/bundles`;
    const sweep = (...extra: string[]) =>
      runCli(
        ["--json", "ami", "sweep", "--bundle-location", location, ...extra],
        setup.env,
      );
    const children: ChildProcess[] = [];
    t.after(() => children.forEach((c) => c.kill("SIGKILL")));

    // A: killed with its CreateImage in flight; the image is made all the same.
    const holdA = aws.holdAction("CreateImage");
    const a = bake(setup, location);
    children.push(a.child);
    await holdA.reached;
    a.child.kill("SIGKILL");
    assert.equal(await a.exited, -1, "killed");
    holdA.release();
    const [builderA] = aws.instances().filter((i) => i.state === "running");
    assert.ok(builderA !== undefined);
    const buildA = builderA.tags[BUILD_TAG]!;
    let left = await tagged(setup);
    for (let i = 0; i < 100 && left.images.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await tagged(setup);
    }
    assert.deepEqual(
      left.images.map(([b]) => b),
      [buildA],
      "the image exists",
    );
    const imageA = left.images[0]![1]!;
    assert.deepEqual(
      left.snapshots.map(([b]) => b),
      [buildA],
    );
    assert.ok(
      left.objects.includes(`bundles/${buildA}/bake.json`),
      "its heartbeat is left",
    );
    assert.ok(
      left.objects.some((k) => k.startsWith(`bundles/${buildA}/fitsfleet-`)),
      "its bundle is left",
    );

    // B: running, held at its own CreateImage.
    const holdB = aws.holdAction("CreateImage");
    const b = bake(setup, location);
    children.push(b.child);
    await holdB.reached;
    const builderB = aws
      .instances()
      .find((i) => i.state === "running" && i.tags[BUILD_TAG] !== buildA)!;
    const buildB = builderB.tags[BUILD_TAG]!;

    const shown = await sweep();
    assert.equal(shown.code, 0, shown.stderr);
    const plan = JSON.parse(shown.stdout) as SweepJson;
    assert.equal(plan.acted, false);
    const goneA = plan.bakes.find((x) => x.build === buildA)!;
    assert.equal(goneA.state, "gone");
    assert.match(
      goneA.why,
      new RegExp(`its process \\d+ on this host \\(${hostname()}\\) has ended`),
    );
    assert.deepEqual(goneA.builders, [builderA.id]);
    assert.deepEqual(goneA.images, [imageA]);
    assert.deepEqual(goneA.keptImages, []);
    assert.deepEqual(
      goneA.snapshots,
      left.snapshots.map(([, s]) => s),
    );
    assert.equal(goneA.objects.length, 2);
    const runningB = plan.bakes.find((x) => x.build === buildB)!;
    assert.equal(runningB.state, "running");
    assert.match(runningB.why, /heartbeat \d+ s ago from pid \d+/);
    const human = await runCli(
      ["ami", "sweep", "--bundle-location", location],
      setup.env,
    );
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /running: left alone/);
    assert.match(
      human.stdout,
      /run it again with --yes to end what 1 bake\(s\) left/,
    );
    assert.equal(
      aws.instance(builderA.id).state,
      "running",
      "only shown, not ended",
    );

    const ended = await sweep("--yes");
    assert.equal(ended.code, 0, ended.stderr);
    assert.deepEqual((JSON.parse(ended.stdout) as SweepJson).swept, [buildA]);
    await aws.waitFor(
      (all) => all.find((i) => i.id === builderA.id)?.state === "terminated",
      30_000,
    );
    left = await tagged(setup);
    assert.deepEqual(
      left.builders,
      [[buildB, builderB.id]],
      "the running bake's builder is untouched",
    );
    assert.deepEqual(
      left.images,
      [],
      "A's image is gone (B's is not made yet)",
    );
    assert.deepEqual(left.snapshots, []);
    assert.ok(
      left.objects.every((k) => k.startsWith(`bundles/${buildB}/`)),
      left.objects.join(" "),
    );
    assert.equal(left.objects.length, 2, "B's heartbeat and bundle");

    // B finishes, and what it made is kept.
    holdB.release();
    assert.equal(await b.exited, 0, b.out().stderr);
    const imageB = (JSON.parse(b.out().stdout) as { imageId: string }).imageId;
    const after = await sweep("--yes");
    assert.equal(after.code, 0, after.stderr);
    const last = JSON.parse(after.stdout) as SweepJson;
    assert.deepEqual(last.swept, []);
    assert.deepEqual(last.bakes.find((x) => x.build === buildB)?.keptImages, [
      imageB,
    ]);
    const quiet = await runCli(
      ["ami", "sweep", "--bundle-location", location],
      setup.env,
    );
    assert.match(quiet.stdout, /no bake left anything behind/);
    left = await tagged(setup);
    assert.deepEqual(left.builders, []);
    assert.deepEqual(left.images, [[buildB, imageB]]);
    assert.equal(left.snapshots.length, 1);
    assert.deepEqual(
      left.objects.map((k) => k.replace(/^.*\//, "")),
      [
        `fitsfleet-${(JSON.parse(b.out().stdout) as { version: string }).version}.tar.gz`,
      ],
      "the finished bake's heartbeat is gone; its bundle stays with its image",
    );
  });
});

describe("a bake's heartbeat", () => {
  const beat = (host: string, pid: number) => ({
    build: "20261207t000000-abcdef",
    host,
    pid,
    started: "2026-12-07T00:00:00Z",
    heartbeatSeconds: 30,
  });
  const written = new Date("2026-12-07T00:10:00Z");
  const at = (seconds: number) => written.getTime() + seconds * 1000;

  it("a bake on another host is running until it missed three beats (and a minute for clocks)", () => {
    assert.equal(
      judgeHeartbeat(beat("elsewhere", 1), written, at(149), "here").state,
      "running",
    );
    const gone = judgeHeartbeat(beat("elsewhere", 1), written, at(151), "here");
    assert.equal(gone.state, "gone");
    assert.match(gone.why, /its heartbeat is 151 s old \(written every 30 s\)/);
  });

  it("on this host, a bake whose process has ended is gone at once; one whose process lives is running", () => {
    assert.equal(
      judgeHeartbeat(beat("here", process.pid), written, at(1), "here").state,
      "running",
    );
    assert.equal(
      judgeHeartbeat(beat("here", 2 ** 22 + 7), written, at(1), "here").state,
      "gone",
    );
    assert.equal(judgeHeartbeat(undefined, undefined).state, "gone");
  });
});
