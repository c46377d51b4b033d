/**
 * `fitsfleet ami sweep`: what a bake that was killed (SIGKILL, a machine
 * that died, a lost network) left behind, while a bake still running is
 * left alone.
 *
 * Liveness: a bake writes a heartbeat, `bake.json` in its bundle folder
 * (s3://…/<build>/bake.json: its host, pid, start and interval), before it
 * makes anything, rewrites it every `heartbeatMs`, and deletes it last,
 * after its own cleanup or once it succeeded. A bake is running while its
 * heartbeat is younger than HEARTBEAT_STALE_FACTOR intervals (by S3's
 * clock) and, when it was written on this host, its process exists. S3
 * holds it because every bake has a bundle location and needs no database
 * (the fleet's launcher keeps a session advisory lock instead); a bake on
 * another machine is judged by time alone.
 *
 * What a bake that is not running left:
 * - its builder (tagged BUILD_TAG), if not ended: terminated;
 * - its images: deleted with their snapshots when not available, or when
 *   its builder is still there (the bake terminates the builder only once
 *   the image is available: a builder still there means the bake never
 *   finished, and nothing vouched for the image); an available image whose
 *   builder is gone is a bake that finished, and is kept;
 * - its snapshots, when no image of it is kept;
 * - its bundle folder (bundle and heartbeat), but the bundle of a kept image.
 */
import { hostname } from "node:os";

import {
  DeleteSnapshotCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";

import { awsFailure, type AwsService, isNotFound } from "../infra/aws.js";
import { BUILD_TAG, BUNDLE_TAG, deleteImage, parseS3Url } from "./images.js";

export const HEARTBEAT_FILE = "bake.json";
export const DEFAULT_HEARTBEAT_MS = 30_000;
/** Missed heartbeats after which a bake is taken as gone (with a minute for clocks). */
export const HEARTBEAT_STALE_FACTOR = 3;
const CLOCK_SLACK_MS = 60_000;

/** A bake's id (bake.ts buildId): its folder's name and its BUILD_TAG value. */
const BUILD_ID = /^\d{8}t\d{6}-[0-9a-f]{6}$/;

export interface Heartbeat {
  build: string;
  host: string;
  pid: number;
  started: string;
  heartbeatSeconds: number;
}

/** The key prefix of s3://bucket/prefix: "prefix/", or "" for the bucket's top. */
export function bundlePrefix(bundleLocation: string): string {
  const prefix = parseS3Url(bundleLocation).key.replace(/^\/+|\/+$/g, "");
  return prefix === "" ? "" : `${prefix}/`;
}

/** A bake's folder under the bundle location: its key, with a trailing slash. */
export function bakeFolder(bundleLocation: string, build: string): string {
  return `${bundlePrefix(bundleLocation)}${build}/`;
}

export function heartbeatBody(build: string, heartbeatMs: number): string {
  const beat: Heartbeat = {
    build,
    host: hostname(),
    pid: process.pid,
    started: new Date().toISOString(),
    heartbeatSeconds: heartbeatMs / 1000,
  };
  return `${JSON.stringify(beat)}\n`;
}

export type BakeState = "running" | "gone";

/** Whether the bake that wrote `beat` (last written at `written`) still runs. */
export function judgeHeartbeat(
  beat: Heartbeat | undefined,
  written: Date | undefined,
  now = Date.now(),
  host = hostname(),
): { state: BakeState; why: string } {
  if (beat === undefined || written === undefined) {
    return { state: "gone", why: "no heartbeat" };
  }
  const ageMs = now - written.getTime();
  const staleMs =
    HEARTBEAT_STALE_FACTOR * beat.heartbeatSeconds * 1000 + CLOCK_SLACK_MS;
  if (ageMs > staleMs) {
    return {
      state: "gone",
      why: `its heartbeat is ${Math.round(ageMs / 1000)} s old (written every ${beat.heartbeatSeconds} s)`,
    };
  }
  if (beat.host === host && !processExists(beat.pid)) {
    return {
      state: "gone",
      why: `its process ${beat.pid} on this host (${host}) has ended`,
    };
  }
  return {
    state: "running",
    why: `heartbeat ${Math.round(ageMs / 1000)} s ago from pid ${beat.pid} on ${beat.host}`,
  };
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, and is someone else's.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface BakeLeftovers {
  build: string;
  state: BakeState;
  why: string;
  /** Builders not ended. */
  builders: string[];
  /** Images to delete, and kept ones (a bake that finished). */
  images: string[];
  keptImages: string[];
  snapshots: string[];
  /** s3:// URLs of the bundle folder's objects to delete. */
  objects: string[];
}

export interface SweepPlan {
  bundleLocation: string;
  bakes: BakeLeftovers[];
}

const NOT_ENDED = ["pending", "running", "stopping", "stopped"];

function fail(service: AwsService, action: string, resource: string) {
  return (error: unknown): never => {
    throw awsFailure(error, { service, action, resource });
  };
}

/** Every bake with something tagged or stored, and whether it still runs. */
export async function planSweep(
  ec2: EC2Client,
  s3: S3Client,
  bundleLocation: string,
  options: { now?: () => number } = {},
): Promise<SweepPlan> {
  const now = options.now ?? Date.now;
  const { bucket } = parseS3Url(bundleLocation);
  const root = bundlePrefix(bundleLocation);

  // 1. The bundle folders, and their heartbeats.
  const objects = new Map<string, { key: string; modified?: Date }[]>();
  let token: string | undefined;
  do {
    const page = await s3
      .send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: root,
          ContinuationToken: token,
        }),
      )
      .catch(fail("s3", "ListObjectsV2", bundleLocation));
    for (const o of page.Contents ?? []) {
      const rest = (o.Key ?? "").slice(root.length).split("/");
      if (rest.length === 2 && BUILD_ID.test(rest[0]!)) {
        objects.set(rest[0]!, [
          ...(objects.get(rest[0]!) ?? []),
          { key: o.Key!, modified: o.LastModified },
        ]);
      }
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);

  // 2. What is tagged with a bake in EC2.
  const builders = new Map<string, string[]>();
  let next: string | undefined;
  do {
    const page = await ec2
      .send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: "tag-key", Values: [BUILD_TAG] },
            { Name: "instance-state-name", Values: NOT_ENDED },
          ],
          NextToken: next,
        }),
      )
      .catch(fail("ec2", "DescribeInstances", "the image builders"));
    for (const i of (page.Reservations ?? []).flatMap(
      (r) => r.Instances ?? [],
    )) {
      const build = i.Tags?.find((t) => t.Key === BUILD_TAG)?.Value;
      if (build !== undefined && i.InstanceId !== undefined) {
        builders.set(build, [...(builders.get(build) ?? []), i.InstanceId]);
      }
    }
    next = page.NextToken;
  } while (next !== undefined);
  const images = await ec2
    .send(
      new DescribeImagesCommand({
        Owners: ["self"],
        Filters: [{ Name: "tag-key", Values: [BUILD_TAG] }],
      }),
    )
    .catch(fail("ec2", "DescribeImages", "the images of bakes"));
  const snapshots = await ec2
    .send(
      new DescribeSnapshotsCommand({
        OwnerIds: ["self"],
        Filters: [{ Name: "tag-key", Values: [BUILD_TAG] }],
      }),
    )
    .catch(fail("ec2", "DescribeSnapshots", "the snapshots of bakes"));
  const tagOf = (tags: { Key?: string; Value?: string }[] | undefined) =>
    tags?.find((t) => t.Key === BUILD_TAG)?.Value;

  const builds = new Set<string>([
    ...objects.keys(),
    ...builders.keys(),
    ...(images.Images ?? []).flatMap((i) => tagOf(i.Tags) ?? []),
    ...(snapshots.Snapshots ?? []).flatMap((s) => tagOf(s.Tags) ?? []),
  ]);
  const bakes: BakeLeftovers[] = [];
  for (const build of [...builds].sort()) {
    // Read now, after EC2 was listed: a bake writes its heartbeat before it
    // makes anything, so a builder seen above has one unless its bake ended.
    const { beat, written } = await readHeartbeat(s3, bundleLocation, build);
    const { state, why } = judgeHeartbeat(beat, written, now());
    const mine = (images.Images ?? []).filter((i) => tagOf(i.Tags) === build);
    const running = builders.get(build) ?? [];
    const kept = mine.filter(
      (i) => String(i.State) === "available" && running.length === 0,
    );
    const keptBundles = new Set(
      kept.flatMap(
        (i) => i.Tags?.find((t) => t.Key === BUNDLE_TAG)?.Value ?? [],
      ),
    );
    bakes.push({
      build,
      state,
      why,
      builders: running,
      images: mine
        .filter((i) => !kept.includes(i))
        .flatMap((i) => i.ImageId ?? []),
      keptImages: kept.flatMap((i) => i.ImageId ?? []),
      snapshots:
        kept.length > 0
          ? []
          : (snapshots.Snapshots ?? [])
              .filter((s) => tagOf(s.Tags) === build)
              .flatMap((s) => s.SnapshotId ?? []),
      objects: (objects.get(build) ?? [])
        .map((o) => `s3://${bucket}/${o.key}`)
        .filter((url) => !keptBundles.has(url)),
    });
  }
  return { bundleLocation, bakes };
}

async function readHeartbeat(
  s3: S3Client,
  bundleLocation: string,
  build: string,
): Promise<{ beat?: Heartbeat; written?: Date }> {
  const { bucket } = parseS3Url(bundleLocation);
  const key = `${bakeFolder(bundleLocation, build)}${HEARTBEAT_FILE}`;
  try {
    const got = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: key }),
    );
    const text = (await got.Body?.transformToString()) ?? "";
    let beat: Heartbeat | undefined;
    try {
      beat = JSON.parse(text) as Heartbeat;
    } catch {
      // Unreadable: judged by its age alone, at the default interval.
      beat = {
        build,
        host: "",
        pid: 0,
        started: "",
        heartbeatSeconds: DEFAULT_HEARTBEAT_MS / 1000,
      };
    }
    return { beat, written: got.LastModified };
  } catch (error) {
    if (isNotFound(error) || (error as Error).name === "NoSuchKey") {
      return {};
    }
    throw awsFailure(error, {
      service: "s3",
      action: "GetObject",
      resource: `s3://${bucket}/${key}`,
    });
  }
}

/** Whether a bake left anything to end. */
export function hasLeftovers(b: BakeLeftovers): boolean {
  return (
    b.builders.length +
      b.images.length +
      b.snapshots.length +
      b.objects.length >
    0
  );
}

/** Ends what the bakes that are gone left; bakes still running are not touched. */
export async function sweepBakes(
  ec2: EC2Client,
  s3: S3Client,
  plan: SweepPlan,
): Promise<BakeLeftovers[]> {
  const swept: BakeLeftovers[] = [];
  for (const bake of plan.bakes) {
    if (bake.state !== "gone" || !hasLeftovers(bake)) {
      continue;
    }
    if (bake.builders.length > 0) {
      try {
        await ec2.send(
          new TerminateInstancesCommand({ InstanceIds: bake.builders }),
        );
      } catch (error) {
        if (!isNotFound(error)) {
          throw awsFailure(error, {
            service: "ec2",
            action: "TerminateInstances",
            resource: `the builders ${bake.builders.join(", ")}`,
          });
        }
      }
    }
    const deleted = new Set<string>();
    for (const image of bake.images) {
      const { snapshots } = await deleteImage(ec2, {
        id: image,
        // With the bake's id the snapshots it tagged go too, unless an image of it is kept.
        build: bake.keptImages.length === 0 ? bake.build : undefined,
      });
      snapshots.forEach((s) => deleted.add(s));
    }
    for (const snapshot of bake.snapshots.filter((s) => !deleted.has(s))) {
      try {
        await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshot }));
      } catch (error) {
        if (!isNotFound(error)) {
          throw awsFailure(error, {
            service: "ec2",
            action: "DeleteSnapshot",
            resource: snapshot,
          });
        }
      }
    }
    // The heartbeat goes last: until then, a sweep that died halfway finds the bake again.
    const objects = [...bake.objects].sort((a, b) =>
      a.endsWith(HEARTBEAT_FILE) ? 1 : b.endsWith(HEARTBEAT_FILE) ? -1 : 0,
    );
    for (const url of objects) {
      const { bucket, key } = parseS3Url(url);
      await s3
        .send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
        .catch(fail("s3", "DeleteObject", url));
    }
    swept.push(bake);
  }
  return swept;
}
