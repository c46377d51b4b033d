/**
 * `fitsfleet ami bake`: the worker image, made by one command and holding
 * no secret.
 *
 * 1. The bundle (ami/bundle.ts) is uploaded to `bundleLocation`, its
 *    sha256 in the object's metadata.
 * 2. A builder instance is launched on demand from the base image (Debian
 *    12's current image, from its public SSM parameter, by default), with
 *    the launch rules of the fleet: IMDSv2 only with a hop limit of 1, an
 *    encrypted root volume, the builder's instance profile.
 * 3. Its user-data (builder-user-data.sh) installs Node.js and the Debian
 *    packages, fetches the bundle through the instance role, checks its
 *    sha256, unpacks it, installs and enables the boot unit, and tags the
 *    instance `fitsfleet:ami-build-state=ready` (or `failed`).
 * 4. Once ready, the image is made (without a reboot: the script synced
 *    its writes), tagged at creation with the version, commit and bundle
 *    sha256, and waited for until available; then the builder is
 *    terminated.
 *
 * A failure or an interrupt at any step terminates the builder, deletes a
 * half-made image with its snapshots, and deletes the bundle; the error
 * carries the tail of the builder's console output when the builder is
 * what failed.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

import {
  type _InstanceType,
  CreateImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  type EC2Client,
  GetConsoleOutputCommand,
  type Instance,
  RunInstancesCommand,
  type Tag,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { GetParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";

import { awsFailure, type AwsRequest, isNotFound } from "../infra/aws.js";
import { encryptedRoot, IMDS_V2_ONLY } from "../infra/ec2.js";
import {
  EXIT,
  ExternalServiceError,
  FitsfleetError,
  InterruptedError,
  PreconditionError,
  UsageError,
} from "../lib/errors.js";
import { sleep } from "../lib/exec.js";
import { packageRoot, packageVersion } from "../lib/paths.js";
import { buildBundle, fileSha256 } from "./bundle.js";
import {
  BUILD_TAG,
  BUNDLE_TAG,
  COMMIT_TAG,
  deleteBundle,
  deleteImage,
  parseS3Url,
  SHA256_TAG,
  VERSION_TAG,
} from "./images.js";
import {
  bakeFolder,
  DEFAULT_HEARTBEAT_MS,
  HEARTBEAT_FILE,
  heartbeatBody,
} from "./sweep.js";

/** Debian's public parameter naming its current Debian 12 image. */
export const DEBIAN_12_PARAMETER =
  "/aws/service/debian/release/12/latest/amd64";
/** The builder's own tag: `ready` or `failed`, set by its user-data. */
export const BUILD_STATE_TAG = "fitsfleet:ami-build-state";
export const DEFAULT_BUILDER_TYPE = "m5.large";
export const DEFAULT_BUILDER_PROFILE = "fitsfleet-ami-builder";
export const DEFAULT_READY_TIMEOUT_MS = 20 * 60_000;
export const DEFAULT_IMAGE_TIMEOUT_MS = 45 * 60_000;
export const DEFAULT_POLL_MS = 5000;
/** EC2's limit on user-data, before base64. */
const USER_DATA_LIMIT = 16 * 1024;

export type BakeStep =
  | "bundle"
  | "upload"
  | "base-image"
  | "launch"
  | "ready"
  | "image"
  | "available"
  | "terminate"
  | "cleanup";

export interface BakeOptions {
  ec2: EC2Client;
  ssm: SSMClient;
  s3: S3Client;
  region: string;
  /** s3://bucket/prefix: the bundle goes under it, in a folder of the bake's id. */
  bundleLocation: string;
  instanceProfile: string;
  baseImage?: string;
  instanceType?: string;
  subnet?: string;
  securityGroups?: string[];
  rootVolumeGiB?: number;
  kmsKeyId?: string;
  /** The image's name (default fitsfleet-VERSION-TIME-RANDOM). */
  name?: string;
  /** A bundle already built, such as a CI artifact; default: built now from this package. */
  bundle?: { path: string; sha256?: string };
  /** Default: this package's version, and its git commit. */
  version?: string;
  commit?: string;
  readyTimeoutMs?: number;
  imageTimeoutMs?: number;
  pollMs?: number;
  /** How often the bake's heartbeat (ami/sweep.ts) is rewritten. */
  heartbeatMs?: number;
  signal?: AbortSignal;
  onStep?: (step: BakeStep, message: string) => void;
}

export interface BakeResult {
  imageId: string;
  name: string;
  region: string;
  version: string;
  commit: string;
  build: string;
  baseImage: string;
  builder: string;
  bundle: { location: string; sha256: string; bytes: number };
  /** Seconds per step, and in all. */
  seconds: Partial<Record<BakeStep | "total", number>>;
}

/** What exists so far, for the cleanup. */
interface Made {
  bundle?: string;
  builder?: string;
  image?: string;
}

const execFileAsync = promisify(execFile);

/** The commit of the package's checkout, `-dirty` with uncommitted changes; "unknown" outside git. */
export async function gitCommit(root = packageRoot()): Promise<string> {
  try {
    const head = (
      await execFileAsync("git", ["-C", root, "rev-parse", "HEAD"])
    ).stdout.trim();
    const status = (
      await execFileAsync("git", [
        "-C",
        root,
        "status",
        "--porcelain",
        "--untracked-files=no",
      ])
    ).stdout.trim();
    return status === "" ? head : `${head}-dirty`;
  } catch {
    return "unknown";
  }
}

export function buildId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .slice(0, 15)
    .toLowerCase();
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The helper's whole-line comments and blank lines, which are for its
 * readers, not worth their bytes of EC2's 16 KB of user-data.
 */
function withoutComments(source: string): string {
  let inBlock = false;
  return source
    .split("\n")
    .filter((line) => {
      const code = line.trim();
      if (inBlock) {
        inBlock = !code.endsWith("*/");
        return false;
      }
      if (code.startsWith("/*")) {
        inBlock = !code.endsWith("*/");
        return false;
      }
      return code !== "" && !code.startsWith("//");
    })
    .join("\n");
}

/** The builder's user-data: the template with its values, and the helper script inside. */
export function renderBuilderUserData(values: {
  build: string;
  bundle: string;
  sha256: string;
  version: string;
}): string {
  const dir = join(packageRoot(), "ami");
  const template = readFileSync(join(dir, "builder-user-data.sh"), "utf8");
  const helper = withoutComments(
    readFileSync(join(dir, "builder-aws.mjs"), "utf8"),
  );
  const fields: Record<string, string> = {
    BUILD_ID: shellQuote(values.build),
    BUNDLE: shellQuote(values.bundle),
    BUNDLE_SHA256: shellQuote(values.sha256),
    VERSION: shellQuote(values.version),
    BUILDER_AWS: helper,
  };
  const text = template.replace(/@@([A-Z0-9_]+)@@/g, (whole, name: string) => {
    const value = fields[name];
    if (value === undefined) {
      throw new Error(`builder-user-data.sh: unknown placeholder ${whole}`);
    }
    return value;
  });
  if (Buffer.byteLength(text) > USER_DATA_LIMIT) {
    throw new Error(
      `the builder's user-data is ${Buffer.byteLength(text)} bytes, over EC2's ${USER_DATA_LIMIT}`,
    );
  }
  return text;
}

function tagList(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

async function send<T>(
  request: Partial<AwsRequest> & Pick<AwsRequest, "action" | "resource">,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw awsFailure(error, { service: "ec2", ...request });
  }
}

/** The last lines of the builder's console (cloud-init's output goes there), or why there are none. */
export async function consoleTail(
  ec2: EC2Client,
  instanceId: string,
  lines = 30,
): Promise<string> {
  const read = (latest: boolean) =>
    ec2.send(
      new GetConsoleOutputCommand({
        InstanceId: instanceId,
        ...(latest ? { Latest: true } : {}),
      }),
    );
  let output: string | undefined;
  try {
    // Latest (Nitro only) is today's output; without it, EC2 gives what it buffered at the last state change.
    output = (await read(true).catch(() => read(false))).Output;
  } catch (error) {
    return `(no console output: ${(error as Error).message})`;
  }
  if (output === undefined || output === "") {
    return "(the console output is empty so far)";
  }
  return (
    Buffer.from(output, "base64")
      .toString("utf8")
      // eslint-disable-next-line no-control-regex
      .replace(/\r|\x1b\[[0-9;]*[A-Za-z]/g, "")
      .trimEnd()
      .split("\n")
      .slice(-lines)
      .map((l) => `  | ${l}`)
      .join("\n")
  );
}

class BuilderError extends FitsfleetError {
  constructor(message: string, suggestion: string) {
    super("ami-builder-failed", EXIT.failed, message, { suggestion });
  }
}

export async function bakeImage(options: BakeOptions): Promise<BakeResult> {
  const { ec2, s3 } = options;
  const started = Date.now();
  const seconds: BakeResult["seconds"] = {};
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const version = options.version ?? packageVersion();
  const build = buildId();
  const name = options.name ?? `fitsfleet-${version}-${build}`;
  if (!/^[A-Za-z0-9()[\]./\-'@_ ]{3,128}$/.test(name)) {
    throw new UsageError(
      `--name ${name}: 3 to 128 letters, digits and ( ) [ ] . / - ' @ _`,
    );
  }
  const location = parseS3Url(options.bundleLocation);
  const made: Made = {};
  const step = async <T>(
    which: BakeStep,
    message: string,
    run: () => Promise<T>,
  ): Promise<T> => {
    if (options.signal?.aborted === true) {
      throw new InterruptedError("a signal");
    }
    options.onStep?.(which, message);
    const at = Date.now();
    const result = await run();
    seconds[which] = (Date.now() - at) / 1000;
    return result;
  };

  let bundleDir: string | undefined;
  const heartbeat = new Heartbeat(
    s3,
    location.bucket,
    `${bakeFolder(options.bundleLocation, build)}${HEARTBEAT_FILE}`,
    build,
    options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
  );
  try {
    // First, before anything is made: `ami sweep` leaves a bake with a fresh heartbeat alone.
    await heartbeat.start();
    const commit = options.commit ?? (await gitCommit());
    const bundle = await step(
      "bundle",
      options.bundle === undefined
        ? "building the bundle (npm pack and the production dependencies)"
        : `using the bundle ${options.bundle.path}`,
      async () => {
        if (options.bundle !== undefined) {
          return {
            path: options.bundle.path,
            sha256:
              options.bundle.sha256 ?? (await fileSha256(options.bundle.path)),
            bytes: statSync(options.bundle.path).size,
          };
        }
        const built = await buildBundle();
        bundleDir = dirname(built.path);
        if (built.version !== version) {
          throw new PreconditionError(
            `the bundle is fitsfleet ${built.version}, and the image is to be of ${version}`,
          );
        }
        return built;
      },
    );
    const key = `${bakeFolder(options.bundleLocation, build)}fitsfleet-${version}.tar.gz`;
    const bundleUrl = `s3://${location.bucket}/${key}`;
    await step(
      "upload",
      `uploading the bundle (${(bundle.bytes / 1e6).toFixed(1)} MB, sha256 ${bundle.sha256}) to ${bundleUrl}`,
      async () => {
        made.bundle = bundleUrl;
        await send(
          { service: "s3", action: "PutObject", resource: bundleUrl },
          () =>
            s3.send(
              new PutObjectCommand({
                Bucket: location.bucket,
                Key: key,
                Body: createReadStream(bundle.path),
                ContentLength: bundle.bytes,
                ContentType: "application/gzip",
                Metadata: {
                  sha256: bundle.sha256,
                  "fitsfleet-version": version,
                },
              }),
            ),
        );
      },
    );

    const base = await step(
      "base-image",
      options.baseImage === undefined
        ? `finding Debian 12's current image (SSM ${DEBIAN_12_PARAMETER})`
        : `reading the base image ${options.baseImage}`,
      () => baseImage(options),
    );

    const userData = renderBuilderUserData({
      build,
      bundle: bundleUrl,
      sha256: bundle.sha256,
      version,
    });
    const builderTags = tagList({
      Name: `fitsfleet-ami-builder-${build}`,
      [BUILD_TAG]: build,
    });
    const builder = await step(
      "launch",
      `launching the builder (${options.instanceType ?? DEFAULT_BUILDER_TYPE}, on demand) from ${base.id}`,
      async () => {
        const response = await send(
          { action: "RunInstances", resource: "the image builder" },
          () =>
            ec2.send(
              new RunInstancesCommand({
                ImageId: base.id,
                InstanceType: (options.instanceType ??
                  DEFAULT_BUILDER_TYPE) as _InstanceType,
                MinCount: 1,
                MaxCount: 1,
                // A retried request cannot launch a second builder.
                ClientToken: `fitsfleet-ami-${build}`,
                IamInstanceProfile: { Name: options.instanceProfile },
                InstanceInitiatedShutdownBehavior: "terminate",
                MetadataOptions: IMDS_V2_ONLY,
                BlockDeviceMappings: [encryptedRoot(base.rootDevice, options)],
                ...(options.subnet === undefined
                  ? {}
                  : { SubnetId: options.subnet }),
                ...(options.securityGroups === undefined ||
                options.securityGroups.length === 0
                  ? {}
                  : { SecurityGroupIds: options.securityGroups }),
                UserData: Buffer.from(userData).toString("base64"),
                TagSpecifications: [
                  { ResourceType: "instance", Tags: builderTags },
                  { ResourceType: "volume", Tags: builderTags },
                ],
              }),
            ),
        );
        const id = response.Instances?.[0]?.InstanceId;
        if (id === undefined) {
          throw new ExternalServiceError("EC2", "RunInstances launched none");
        }
        made.builder = id;
        return id;
      },
    );

    await step(
      "ready",
      `waiting for the builder ${builder} to install the bundle and signal ready`,
      () =>
        waitForReady(
          ec2,
          builder,
          options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
          pollMs,
          options.signal,
        ),
    );

    const imageTags = tagList({
      Name: name,
      [VERSION_TAG]: version,
      [COMMIT_TAG]: commit,
      [SHA256_TAG]: bundle.sha256,
      [BUNDLE_TAG]: bundleUrl,
      [BUILD_TAG]: build,
    });
    const imageId = await step(
      "image",
      `creating the image ${name} from ${builder}`,
      async () => {
        const response = await send(
          { action: "CreateImage", resource: name },
          () =>
            ec2.send(
              new CreateImageCommand({
                InstanceId: builder,
                Name: name,
                Description: `fitsfleet ${version} worker image (commit ${commit.slice(0, 12)}, bundle ${bundle.sha256.slice(0, 12)})`,
                NoReboot: true,
                TagSpecifications: [
                  { ResourceType: "image", Tags: imageTags },
                  { ResourceType: "snapshot", Tags: imageTags },
                ],
              }),
            ),
        );
        if (response.ImageId === undefined) {
          throw new ExternalServiceError("EC2", "CreateImage returned no id");
        }
        made.image = response.ImageId;
        return response.ImageId;
      },
    );
    await step("available", `waiting for ${imageId} to be available`, () =>
      waitForImage(
        ec2,
        imageId,
        options.imageTimeoutMs ?? DEFAULT_IMAGE_TIMEOUT_MS,
        pollMs,
        options.signal,
      ),
    );
    await step("terminate", `terminating the builder ${builder}`, () =>
      terminate(ec2, builder),
    );
    seconds.total = (Date.now() - started) / 1000;
    return {
      imageId,
      name,
      region: options.region,
      version,
      commit,
      build,
      baseImage: base.id,
      builder,
      bundle: {
        location: bundleUrl,
        sha256: bundle.sha256,
        bytes: bundle.bytes,
      },
      seconds,
    };
  } catch (error) {
    options.onStep?.("cleanup", describeMade(made));
    const problems = await cleanUp(options, made, build);
    if (problems.length > 0 && error instanceof FitsfleetError) {
      throw new FitsfleetError(
        error.code,
        error.exitCode,
        `${error.message}\nand the cleanup failed: ${problems.join("; ")}`,
        {
          cause: error,
          suggestion: `end what is left by hand: resources tagged ${BUILD_TAG}=${build}`,
          context: { ...error.context, build },
        },
      );
    }
    throw error;
  } finally {
    // Last, after the cleanup: until it is gone, a sweep finds this bake.
    await heartbeat.stop();
    if (bundleDir !== undefined) {
      rmSync(bundleDir, { recursive: true, force: true });
    }
  }
}

/**
 * The bake's heartbeat object, rewritten on a timer. A write that fails is
 * tried again at the next beat: a sweep only ends a bake whose heartbeat
 * missed several.
 */
class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<unknown> = Promise.resolve();
  private started = false;
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly build: string,
    private readonly everyMs: number,
  ) {}

  private write(): Promise<unknown> {
    return this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key,
        Body: heartbeatBody(this.build, this.everyMs),
        ContentType: "application/json",
      }),
    );
  }

  async start(): Promise<void> {
    await send(
      {
        service: "s3",
        action: "PutObject",
        resource: `s3://${this.bucket}/${this.key}`,
      },
      () => this.write(),
    );
    this.started = true;
    this.timer = setInterval(() => {
      this.writing = this.writing.then(() =>
        this.write().catch(() => undefined),
      );
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
    if (this.started) {
      await deleteBundle(this.s3, `s3://${this.bucket}/${this.key}`).catch(
        () => undefined,
      );
    }
  }
}

function describeMade(made: Made): string {
  const parts = [
    made.builder === undefined
      ? undefined
      : `terminating the builder ${made.builder}`,
    made.image === undefined
      ? undefined
      : `deleting the image ${made.image} and its snapshots`,
    made.bundle === undefined
      ? undefined
      : `deleting the bundle ${made.bundle}`,
  ].filter((p) => p !== undefined);
  return parts.length === 0
    ? "the bake failed before it made anything"
    : `the bake failed: ${parts.join(", ")}`;
}

/** Every step is tried whatever the others do; what failed is returned. */
async function cleanUp(
  options: BakeOptions,
  made: Made,
  build: string,
): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, run: () => Promise<unknown>) => {
    try {
      await run();
    } catch (error) {
      problems.push(`${what}: ${(error as Error).message}`);
    }
  };
  if (made.builder !== undefined) {
    const builder = made.builder;
    await attempt(`terminate the builder ${builder}`, () =>
      terminate(options.ec2, builder),
    );
  }
  if (made.image !== undefined) {
    const image = made.image;
    await attempt(`delete the half-made image ${image}`, () =>
      deleteImage(options.ec2, { id: image, build }),
    );
  }
  if (made.builder !== undefined) {
    // An image can exist though CreateImage's answer was lost: it carries the bake's tag.
    await attempt(`look for other images of the bake ${build}`, async () => {
      const tagged = await options.ec2.send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: [{ Name: `tag:${BUILD_TAG}`, Values: [build] }],
        }),
      );
      for (const image of tagged.Images ?? []) {
        if (image.ImageId !== undefined && image.ImageId !== made.image) {
          await deleteImage(options.ec2, { id: image.ImageId, build });
        }
      }
    });
  }
  if (made.bundle !== undefined) {
    const bundle = made.bundle;
    await attempt(`delete the bundle ${bundle}`, () =>
      deleteBundle(options.s3, bundle),
    );
  }
  return problems;
}

async function terminate(ec2: EC2Client, instanceId: string): Promise<void> {
  try {
    await ec2.send(
      new TerminateInstancesCommand({ InstanceIds: [instanceId] }),
    );
  } catch (error) {
    if (!isNotFound(error)) {
      throw awsFailure(error, {
        service: "ec2",
        action: "TerminateInstances",
        resource: `the builder ${instanceId}`,
      });
    }
  }
}

async function baseImage(
  options: BakeOptions,
): Promise<{ id: string; rootDevice: string }> {
  let id = options.baseImage;
  if (id === undefined) {
    const parameter = await send(
      { service: "ssm", action: "GetParameter", resource: DEBIAN_12_PARAMETER },
      () =>
        options.ssm.send(
          new GetParameterCommand({ Name: DEBIAN_12_PARAMETER }),
        ),
    );
    id = parameter.Parameter?.Value;
    if (id === undefined || !id.startsWith("ami-")) {
      throw new PreconditionError(
        `${DEBIAN_12_PARAMETER} in ${options.region} names no image`,
        { suggestion: "give the base image with --base-image ami-…" },
      );
    }
  }
  const imageId = id;
  const described = await send(
    { action: "DescribeImages", resource: imageId, flag: "--base-image" },
    () => options.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })),
  );
  const image = described.Images?.[0];
  if (image === undefined || image.State !== "available") {
    throw new UsageError(
      `--base-image ${imageId}: no such image is available in ${options.region}`,
    );
  }
  return { id: imageId, rootDevice: image.RootDeviceName ?? "/dev/xvda" };
}

const ENDED = new Set(["shutting-down", "terminated", "stopping", "stopped"]);

async function waitForReady(
  ec2: EC2Client,
  instanceId: string,
  timeoutMs: number,
  pollMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let instance: Instance | undefined;
    try {
      const described = await ec2.send(
        new DescribeInstancesCommand({ InstanceIds: [instanceId] }),
      );
      instance = described.Reservations?.[0]?.Instances?.[0];
    } catch (error) {
      // EC2 is eventually consistent: a new instance may not be found at once.
      if (!isNotFound(error)) {
        throw awsFailure(error, {
          service: "ec2",
          action: "DescribeInstances",
          resource: `the builder ${instanceId}`,
        });
      }
    }
    const state = instance?.Tags?.find((t) => t.Key === BUILD_STATE_TAG)?.Value;
    if (state === "ready") {
      return;
    }
    const ended = ENDED.has(String(instance?.State?.Name ?? ""));
    if (state === "failed" || ended) {
      throw new BuilderError(
        `the image builder ${instanceId} ${ended ? `ended (${instance?.State?.Name}${instance?.StateReason?.Message === undefined ? "" : `: ${instance.StateReason.Message}`})` : "failed"} before it was ready; its console output ends with:\n${await consoleTail(ec2, instanceId)}`,
        "the lines starting `fitsfleet-ami-build` say which step failed; fix it (or pass another --base-image) and bake again",
      );
    }
    if (Date.now() >= deadline) {
      throw new BuilderError(
        `the image builder ${instanceId} did not signal ready within ${Math.round(timeoutMs / 1000)} s; its console output ends with:\n${await consoleTail(ec2, instanceId)}`,
        "a builder needs the network (apt, NodeSource, S3) and its instance profile (--instance-profile) to read the bundle and tag itself; raise --ready-timeout for a slow one",
      );
    }
    await sleep(pollMs, signal);
    if (signal?.aborted === true) {
      throw new InterruptedError("a signal");
    }
  }
}

async function waitForImage(
  ec2: EC2Client,
  imageId: string,
  timeoutMs: number,
  pollMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const described = await send(
      { action: "DescribeImages", resource: imageId },
      () => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })),
    );
    const image = described.Images?.[0];
    const state = String(image?.State ?? "");
    if (state === "available") {
      return;
    }
    if (["failed", "invalid", "error", "deregistered"].includes(state)) {
      throw new ExternalServiceError(
        "EC2",
        `the image ${imageId} became ${state}${image?.StateReason?.Message === undefined ? "" : `: ${image.StateReason.Message}`}`,
        { fault: "permanent" },
      );
    }
    if (Date.now() >= deadline) {
      throw new ExternalServiceError(
        "EC2",
        `the image ${imageId} was not available within ${Math.round(timeoutMs / 1000)} s (still ${state || "unknown"})`,
        { suggestion: "raise --image-timeout, and bake again" },
      );
    }
    await sleep(pollMs, signal);
    if (signal?.aborted === true) {
      throw new InterruptedError("a signal");
    }
  }
}
