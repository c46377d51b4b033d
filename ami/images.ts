/**
 * The worker images `ami bake` made, found by their tags: listing them,
 * choosing one for a fleet (`--image latest`, and refusing an image baked
 * from another fitsfleet version), and pruning old ones with their
 * snapshots and bundles.
 */
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Filter,
  type Image,
} from "@aws-sdk/client-ec2";
import { DeleteObjectCommand, type S3Client } from "@aws-sdk/client-s3";

import { awsFailure, isNotFound } from "../infra/aws.js";
import { FLEET_TAG } from "../infra/iam-policy.js";
import { PreconditionError, UsageError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";

/** Tags of a baked image (and of its snapshot). VERSION_TAG marks an image as baked by fitsfleet. */
export const VERSION_TAG = "fitsfleet:version";
export const COMMIT_TAG = "fitsfleet:commit";
export const SHA256_TAG = "fitsfleet:bundle-sha256";
/** Where the bundle it was baked from is (s3://…), so that pruning the image removes it too. */
export const BUNDLE_TAG = "fitsfleet:bundle";
/** The bake's id, on the builder instance, the image and its snapshot: what a failed bake cleans up by. */
export const BUILD_TAG = "fitsfleet:ami-build";

export interface BakedImage {
  id: string;
  name: string;
  /** pending, available, failed… */
  state: string;
  /** ISO time. */
  created: string;
  version: string;
  commit?: string;
  sha256?: string;
  bundle?: string;
  build?: string;
  snapshots: string[];
}

function tag(image: Image, key: string): string | undefined {
  return image.Tags?.find((t) => t.Key === key)?.Value;
}

export function bakedImage(image: Image): BakedImage {
  return {
    id: image.ImageId ?? "",
    name: image.Name ?? "",
    state: String(image.State ?? "unknown"),
    created: image.CreationDate ?? "",
    version: tag(image, VERSION_TAG) ?? "",
    commit: tag(image, COMMIT_TAG),
    sha256: tag(image, SHA256_TAG),
    bundle: tag(image, BUNDLE_TAG),
    build: tag(image, BUILD_TAG),
    snapshots: (image.BlockDeviceMappings ?? []).flatMap((m) =>
      m.Ebs?.SnapshotId === undefined ? [] : [m.Ebs.SnapshotId],
    ),
  };
}

/** This account's images that fitsfleet baked (or, with `filters`, some of them), newest first. */
export async function listBakedImages(
  ec2: EC2Client,
  filters: Filter[] = [],
): Promise<BakedImage[]> {
  const found: BakedImage[] = [];
  let token: string | undefined;
  do {
    const page = await ec2
      .send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: [{ Name: "tag-key", Values: [VERSION_TAG] }, ...filters],
          NextToken: token,
        }),
      )
      .catch((error: unknown) => {
        throw awsFailure(error, {
          service: "ec2",
          action: "DescribeImages",
          resource: "the baked images",
        });
      });
    found.push(...(page.Images ?? []).map(bakedImage));
    token = page.NextToken;
  } while (token !== undefined);
  return found.sort((a, b) =>
    a.created === b.created ? 0 : a.created < b.created ? 1 : -1,
  );
}

export interface ResolvedImage {
  id: string;
  /** The image's fitsfleet tags, when it is a baked one. */
  image?: BakedImage;
  /** Set when the image is of another fitsfleet version and that was allowed. */
  mismatch?: string;
}

/**
 * The image a fleet is launched from. `latest` is the newest available
 * image baked from `version`; an id is taken as it is, but an image baked
 * from another version (its VERSION_TAG) is refused too, unless
 * `allowVersionMismatch`, since its workers would run other code than the
 * operator's against the same database. An image without the tag was not
 * baked by fitsfleet and is not judged.
 */
export async function resolveImage(
  ec2: EC2Client,
  ref: string,
  options: { version: string; allowVersionMismatch: boolean },
): Promise<ResolvedImage> {
  const { version, allowVersionMismatch } = options;
  if (ref === "latest") {
    const available = (
      await listBakedImages(ec2, [{ Name: "state", Values: ["available"] }])
    ).filter((i) => i.state === "available");
    const same = available.find((i) => i.version === version);
    if (same !== undefined) {
      return { id: same.id, image: same };
    }
    const newest = available[0];
    if (newest === undefined) {
      throw new PreconditionError(
        "--image latest: this account has no baked worker image in this region",
        { suggestion: "bake one with `fitsfleet ami bake`" },
      );
    }
    const mismatch = `the newest baked image ${newest.id} (${newest.name}) is of fitsfleet ${newest.version}, and none is of ${version}, this fitsfleet`;
    if (!allowVersionMismatch) {
      throw new PreconditionError(`--image latest: ${mismatch}`, {
        suggestion:
          "bake one with `fitsfleet ami bake`, or pass --allow-version-mismatch to launch it anyway",
      });
    }
    return { id: newest.id, image: newest, mismatch };
  }
  if (!/^ami-[0-9a-f]+$/.test(ref)) {
    throw new UsageError(`--image ${ref}: an image id (ami-…) or latest`);
  }
  const described = await ec2
    .send(new DescribeImagesCommand({ ImageIds: [ref] }))
    .catch((error: unknown) => {
      // A missing image is reported where the launch reads it, with its advice.
      if (isNotFound(error)) {
        return { Images: [] };
      }
      throw awsFailure(error, {
        service: "ec2",
        action: "DescribeImages",
        resource: ref,
        flag: "--image",
      });
    });
  const found = described.Images?.[0];
  if (found === undefined || tag(found, VERSION_TAG) === undefined) {
    return { id: ref };
  }
  const image = bakedImage(found);
  if (image.version === version) {
    return { id: ref, image };
  }
  const mismatch = `image ${ref} (${image.name}) was baked from fitsfleet ${image.version}, and this is ${version}`;
  if (!allowVersionMismatch) {
    throw new PreconditionError(`--image ${ref}: ${mismatch}`, {
      suggestion:
        "launch an image of this version (`fitsfleet ami list`, `--image latest`), or pass --allow-version-mismatch",
    });
  }
  return { id: ref, image, mismatch };
}

/** `resolveImage` with a client of its own, for `rebuild launch-fleet`. */
export async function resolveImageIn(
  region: string,
  ref: string,
  options: {
    version: string;
    allowVersionMismatch: boolean;
    logger?: Logger;
  },
): Promise<string> {
  const ec2 = new EC2Client({ region });
  try {
    const resolved = await resolveImage(ec2, ref, options);
    if (resolved.mismatch !== undefined) {
      options.logger?.warn(
        `${resolved.mismatch}: launching it (--allow-version-mismatch)`,
      );
    }
    return resolved.id;
  } finally {
    ec2.destroy();
  }
}

export interface PrunePlan {
  keep: BakedImage[];
  prune: BakedImage[];
  /** Older than the newest `keep`, and kept all the same: what uses each. */
  inUse: { image: BakedImage; usedBy: string[] }[];
}

/**
 * Keeps the newest `keep` available images; prunes every other one but
 * those still being made (pending), which belong to a bake in progress,
 * and those in `usedBy` (imagesInUse): a fleet that launches from a
 * deregistered image gets no new instance, and the spot capacity it loses
 * is never replaced.
 */
export function planPrune(
  images: BakedImage[],
  keep: number,
  usedBy: ReadonlyMap<string, string[]> = new Map(),
): PrunePlan {
  const kept = images.filter((i) => i.state === "available").slice(0, keep);
  const candidates = images.filter(
    (i) => !kept.includes(i) && i.state !== "pending",
  );
  return {
    keep: kept,
    prune: candidates.filter((i) => !usedBy.has(i.id)),
    inUse: candidates
      .filter((i) => usedBy.has(i.id))
      .map((image) => ({ image, usedBy: usedBy.get(image.id) ?? [] })),
  };
}

const NOT_ENDED = [
  "pending",
  "running",
  "stopping",
  "stopped",
  "shutting-down",
];

/**
 * Which of `imageIds` something still uses: an instance that has not
 * ended (any instance of the account, fitsfleet's or not), or a version of
 * a fitsfleet launch template (a fleet's template lives as long as the
 * fleet: `fleet terminate` and `fleet sweep` delete it).
 */
export async function imagesInUse(
  ec2: EC2Client,
  imageIds: string[],
): Promise<Map<string, string[]>> {
  const used = new Map<string, string[]>();
  if (imageIds.length === 0) {
    return used;
  }
  const add = (image: string | undefined, by: string) => {
    if (image !== undefined && imageIds.includes(image)) {
      used.set(image, [...(used.get(image) ?? []), by]);
    }
  };
  const fail = (action: string, resource: string) => (error: unknown) => {
    throw awsFailure(error, { service: "ec2", action, resource });
  };
  let token: string | undefined;
  do {
    const page = await ec2
      .send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: "image-id", Values: imageIds },
            { Name: "instance-state-name", Values: NOT_ENDED },
          ],
          NextToken: token,
        }),
      )
      .catch(fail("DescribeInstances", "the instances of the images"));
    for (const instance of (page.Reservations ?? []).flatMap(
      (r) => r.Instances ?? [],
    )) {
      const fleet = instance.Tags?.find((t) => t.Key === FLEET_TAG)?.Value;
      add(
        instance.ImageId,
        `instance ${instance.InstanceId ?? "?"} (${String(instance.State?.Name ?? "?")}${fleet === undefined ? "" : `, fleet ${fleet}`})`,
      );
    }
    token = page.NextToken;
  } while (token !== undefined);

  const templates = await ec2
    .send(
      new DescribeLaunchTemplatesCommand({
        Filters: [{ Name: "tag-key", Values: [FLEET_TAG] }],
      }),
    )
    .catch(fail("DescribeLaunchTemplates", "the fleets' launch templates"));
  for (const template of templates.LaunchTemplates ?? []) {
    const fleet = template.Tags?.find((t) => t.Key === FLEET_TAG)?.Value;
    let next: string | undefined;
    do {
      const versions = await ec2
        .send(
          new DescribeLaunchTemplateVersionsCommand({
            LaunchTemplateId: template.LaunchTemplateId,
            NextToken: next,
          }),
        )
        .catch(
          fail(
            "DescribeLaunchTemplateVersions",
            `the launch template ${template.LaunchTemplateName ?? template.LaunchTemplateId ?? "?"}`,
          ),
        );
      for (const v of versions.LaunchTemplateVersions ?? []) {
        add(
          v.LaunchTemplateData?.ImageId,
          `launch template ${template.LaunchTemplateName ?? template.LaunchTemplateId ?? "?"}${fleet === undefined ? "" : ` of fleet ${fleet}`}`,
        );
      }
      next = versions.NextToken;
    } while (next !== undefined);
  }
  return used;
}

export function parseS3Url(location: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (match === null) {
    throw new UsageError(`${location}: an S3 location, s3://bucket/prefix`);
  }
  return { bucket: match[1]!, key: match[2]! };
}

export async function deleteBundle(
  s3: S3Client,
  location: string,
): Promise<void> {
  const { bucket, key } = parseS3Url(location);
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    if (!isNotFound(error) && (error as Error).name !== "NoSuchKey") {
      throw awsFailure(error, {
        service: "s3",
        action: "DeleteObject",
        resource: location,
      });
    }
  }
}

/**
 * Deregisters an image and deletes its snapshots: those it names, and
 * those tagged with its bake (a snapshot of an image that never became
 * available may not be named by it). Gone already is done.
 */
export async function deleteImage(
  ec2: EC2Client,
  image: { id: string; snapshots?: string[]; build?: string },
): Promise<{ snapshots: string[] }> {
  try {
    await ec2.send(new DeregisterImageCommand({ ImageId: image.id }));
  } catch (error) {
    if (!isNotFound(error)) {
      throw awsFailure(error, {
        service: "ec2",
        action: "DeregisterImage",
        resource: image.id,
      });
    }
  }
  const snapshots = new Set(image.snapshots ?? []);
  if (image.build !== undefined) {
    const tagged = await ec2
      .send(
        new DescribeSnapshotsCommand({
          OwnerIds: ["self"],
          Filters: [{ Name: `tag:${BUILD_TAG}`, Values: [image.build] }],
        }),
      )
      .catch((error: unknown) => {
        throw awsFailure(error, {
          service: "ec2",
          action: "DescribeSnapshots",
          resource: `the snapshots of the bake ${image.build}`,
        });
      });
    for (const s of tagged.Snapshots ?? []) {
      if (s.SnapshotId !== undefined) {
        snapshots.add(s.SnapshotId);
      }
    }
  }
  for (const id of snapshots) {
    try {
      await ec2.send(new DeleteSnapshotCommand({ SnapshotId: id }));
    } catch (error) {
      if (!isNotFound(error)) {
        throw awsFailure(error, {
          service: "ec2",
          action: "DeleteSnapshot",
          resource: id,
        });
      }
    }
  }
  return { snapshots: [...snapshots] };
}

export interface PruneReport {
  images: string[];
  snapshots: string[];
  bundles: string[];
}

export async function pruneImages(
  ec2: EC2Client,
  s3: S3Client | undefined,
  images: BakedImage[],
): Promise<PruneReport> {
  const report: PruneReport = { images: [], snapshots: [], bundles: [] };
  for (const image of images) {
    const { snapshots } = await deleteImage(ec2, image);
    report.images.push(image.id);
    report.snapshots.push(...snapshots);
    if (s3 !== undefined && image.bundle !== undefined) {
      await deleteBundle(s3, image.bundle);
      report.bundles.push(image.bundle);
    }
  }
  return report;
}
