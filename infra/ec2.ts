/**
 * The `ec2` provider: one instant EC2 Fleet of spot instances (an optional
 * on-demand base) from one launch template, every resource tagged with the
 * fleet's name and run. The template requires IMDSv2 with a hop limit of 1,
 * terminates on shutdown (a worker that drains the queue powers its machine
 * off, and that ends the bill), encrypts the root volume, and hands the
 * instances the worker role. User-data carries the fleet's settings and no
 * secret (infra/fleet-config.ts).
 *
 * A launch that fails halfway cleans up after itself; `terminateEc2Fleet`
 * finds everything by tag, so it ends what any launch left, and running it
 * again finds nothing and succeeds.
 */
import {
  type _InstanceType,
  CreateFleetCommand,
  type CreateFleetCommandInput,
  CreateLaunchTemplateCommand,
  type CreateLaunchTemplateCommandInput,
  DeleteFleetsCommand,
  DeleteLaunchTemplateCommand,
  DescribeFleetsCommand,
  DescribeImagesCommand,
  DescribeInstanceTypesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSpotPriceHistoryCommand,
  DescribeSubnetsCommand,
  type EC2Client,
  type Filter,
  type Instance,
  paginateDescribeInstances,
  type Tag,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";

import {
  ExternalServiceError,
  type FitsfleetErrorOptions,
  UsageError,
} from "../lib/errors.js";
import { awsCall, type AwsRequest, clientFailure, isNotFound } from "./aws.js";
import {
  FLEET_TAG,
  type FleetInstanceConfig,
  renderFleetConfig,
  ROLE_TAG,
  RUN_TAG,
} from "./fleet-config.js";
import type {
  FleetLaunch,
  FleetMember,
  FleetProvider,
  FleetSpec,
  LaunchHooks,
  TerminateReport,
} from "./provider.js";

export interface Ec2Options {
  region: string;
  image: string;
  instanceTypes: string[];
  subnets: string[];
  /** Instances launched on demand before any spot capacity (default 0). */
  onDemandBase?: number;
  /** USD per hour of one on-demand instance; the EC2 API has no price list, so the operator gives it. */
  onDemandPrice?: number;
  /** Launch succeeds with at least this many instances (default: all); fewer, and everything launched is ended. */
  minInstances?: number;
  instanceProfile: string;
  securityGroups?: string[];
  rootVolumeGiB?: number;
  kmsKeyId?: string;
  secretsPrefix: string;
  /** S3 endpoint the workers use (tests, MinIO); AWS's by default. */
  s3Endpoint?: string;
}

export interface SpotPricePoint {
  instanceType: string;
  zone: string;
  subnetId: string;
  price: number;
}

export interface Ec2FleetPlan {
  spec: FleetSpec;
  /** Ingest workers per instance, as resolved (default: the smallest type's vCPUs). */
  ingestWorkers: number;
  userData: FleetInstanceConfig;
  launchTemplate: CreateLaunchTemplateCommandInput;
  /** The CreateFleet request; its launch template id is filled in at launch. */
  fleet: CreateFleetCommandInput;
  prices: SpotPricePoint[];
  estimate: {
    spotInstances: number;
    onDemandInstances: number;
    /** USD per hour if every spot instance lands in the cheapest pool. */
    hourlyLow: number;
    /** USD per hour if every spot instance lands in the dearest pool. */
    hourlyHigh: number;
  };
}

export const TEMPLATE_PREFIX = "fitsfleet-";
const END_STATES = ["pending", "running", "stopping", "stopped"];

/**
 * What every instance fitsfleet launches gets, fleet workers and image
 * builders alike: metadata over IMDSv2 only, one hop (a container on the
 * host cannot reach it)...
 */
export const IMDS_V2_ONLY = {
  HttpTokens: "required",
  HttpPutResponseHopLimit: 1,
  HttpEndpoint: "enabled",
} as const;

/** ...and an encrypted root volume that goes with the instance. */
export function encryptedRoot(
  deviceName: string,
  options: { rootVolumeGiB?: number; kmsKeyId?: string },
) {
  return {
    DeviceName: deviceName,
    Ebs: {
      Encrypted: true,
      DeleteOnTermination: true,
      VolumeType: "gp3" as const,
      ...(options.rootVolumeGiB === undefined
        ? {}
        : { VolumeSize: options.rootVolumeGiB }),
      ...(options.kmsKeyId === undefined ? {} : { KmsKeyId: options.kmsKeyId }),
    },
  };
}

function tags(spec: FleetSpec, extra: Record<string, string> = {}): Tag[] {
  return Object.entries({
    [FLEET_TAG]: spec.name,
    [RUN_TAG]: spec.run,
    ...extra,
  }).map(([Key, Value]) => ({ Key, Value }));
}

type Ec2Request = Omit<AwsRequest, "service">;

/** One EC2 request; a failure names the action and resource (infra/aws.ts). */
function send<T>(
  ec2: EC2Client,
  request: Ec2Request,
  run: () => Promise<T>,
): Promise<T> {
  return awsCall(ec2, { service: "ec2", ...request }, run);
}

function failure(ec2: EC2Client, error: unknown, request: Ec2Request) {
  return clientFailure(ec2, error, { service: "ec2", ...request });
}

/**
 * Reads what the requests depend on (the image's root device, the types'
 * vCPUs, the subnets' zones, current spot prices) and renders both
 * requests without sending either: `--dry-run` prints exactly these.
 */
export async function planEc2Fleet(
  ec2: EC2Client,
  spec: FleetSpec,
  options: Ec2Options,
): Promise<Ec2FleetPlan> {
  const onDemand = options.onDemandBase ?? 0;
  if (onDemand > spec.instances) {
    throw new UsageError(
      `--on-demand-base ${onDemand}: more than --instances ${spec.instances}`,
    );
  }
  if (onDemand > 0 && options.onDemandPrice === undefined) {
    throw new UsageError(
      "--on-demand-base needs --on-demand-price: the EC2 API does not give on-demand prices, and the spend cap must count them",
      {
        suggestion:
          "give the on-demand USD per hour of your dearest instance type (the AWS price list or console)",
      },
    );
  }
  const [images, types, subnets] = await Promise.all([
    send(
      ec2,
      { action: "DescribeImages", resource: options.image, flag: "--image" },
      () => ec2.send(new DescribeImagesCommand({ ImageIds: [options.image] })),
    ),
    send(
      ec2,
      {
        action: "DescribeInstanceTypes",
        resource: options.instanceTypes.join(","),
        flag: "--instance-types",
      },
      () =>
        ec2.send(
          new DescribeInstanceTypesCommand({
            InstanceTypes: options.instanceTypes as _InstanceType[],
          }),
        ),
    ),
    send(
      ec2,
      {
        action: "DescribeSubnets",
        resource: options.subnets.join(","),
        flag: "--subnets",
      },
      () =>
        ec2.send(new DescribeSubnetsCommand({ SubnetIds: options.subnets })),
    ),
  ]);
  const image = images.Images?.[0];
  if (image === undefined || image.State !== "available") {
    throw new UsageError(
      `--image ${options.image}: no such image is available in ${options.region}`,
      {
        suggestion:
          "see `fitsfleet ami list`, or bake one with `fitsfleet ami bake`",
      },
    );
  }
  const vcpus = new Map(
    (types.InstanceTypes ?? []).map((t) => [
      String(t.InstanceType),
      t.VCpuInfo?.DefaultVCpus ?? 1,
    ]),
  );
  const unknownTypes = options.instanceTypes.filter((t) => !vcpus.has(t));
  if (unknownTypes.length > 0) {
    throw new UsageError(
      `--instance-types: ${unknownTypes.join(", ")} not offered in ${options.region}`,
    );
  }
  const zoneOf = new Map(
    (subnets.Subnets ?? []).map((s) => [
      s.SubnetId ?? "",
      s.AvailabilityZone ?? "",
    ]),
  );
  const ingestWorkers =
    spec.ingestWorkers ??
    Math.min(...options.instanceTypes.map((t) => vcpus.get(t)!));

  const history = await send(
    ec2,
    {
      action: "DescribeSpotPriceHistory",
      resource: options.instanceTypes.join(","),
      flag: "--instance-types",
    },
    () =>
      ec2.send(
        new DescribeSpotPriceHistoryCommand({
          InstanceTypes: options.instanceTypes as _InstanceType[],
          ProductDescriptions: ["Linux/UNIX"],
          StartTime: new Date(),
        }),
      ),
  );
  const prices: SpotPricePoint[] = [];
  for (const [subnetId, zone] of zoneOf) {
    for (const instanceType of options.instanceTypes) {
      // The newest price per pool: the history is newest first.
      const point = (history.SpotPriceHistory ?? []).find(
        (p) => p.InstanceType === instanceType && p.AvailabilityZone === zone,
      );
      if (point?.SpotPrice !== undefined) {
        prices.push({
          instanceType,
          zone,
          subnetId,
          price: Number(point.SpotPrice),
        });
      }
    }
  }
  if (prices.length === 0) {
    throw new UsageError(
      `no spot price for ${options.instanceTypes.join(", ")} in the zones of ${options.subnets.join(", ")}: these pools offer no spot capacity`,
    );
  }
  const spot = spec.instances - onDemand;
  const odHourly = onDemand * (options.onDemandPrice ?? 0);
  const cheapest = Math.min(...prices.map((p) => p.price));
  const dearest = Math.max(...prices.map((p) => p.price));
  const estimate = {
    spotInstances: spot,
    onDemandInstances: onDemand,
    hourlyLow: spot * cheapest + odHourly,
    hourlyHigh: spot * dearest + odHourly,
  };
  if (
    spec.maxHourlyCost !== undefined &&
    estimate.hourlyLow > spec.maxHourlyCost
  ) {
    throw new UsageError(
      `--max-hourly-cost ${spec.maxHourlyCost}: even the cheapest pool costs $${estimate.hourlyLow.toFixed(4)}/h for ${spec.instances} instance(s)`,
      { suggestion: "raise the cap, or launch fewer instances" },
    );
  }

  const userData: FleetInstanceConfig = {
    fitsfleet: 1,
    fleet: spec.name,
    run: spec.run,
    region: options.region,
    secretsPrefix: options.secretsPrefix,
    queue: spec.queue,
    ingestWorkers,
    previewWorkers: spec.previewWorkers,
    fastRebuild: spec.fastRebuild,
    makePreviews: spec.makePreviews,
    storage: spec.storage,
    previews: spec.previews,
    s3Endpoint: options.s3Endpoint,
    logLevel: spec.logLevel,
    deadline: spec.deadline.toISOString(),
  };
  const launchTemplate: CreateLaunchTemplateCommandInput = {
    LaunchTemplateName: `${TEMPLATE_PREFIX}${spec.name}`,
    VersionDescription: `fitsfleet workers for run ${spec.run}`,
    ClientToken: `${spec.name}-lt`,
    LaunchTemplateData: {
      ImageId: options.image,
      IamInstanceProfile: { Name: options.instanceProfile },
      InstanceInitiatedShutdownBehavior: "terminate",
      MetadataOptions: { ...IMDS_V2_ONLY, InstanceMetadataTags: "enabled" },
      BlockDeviceMappings: [
        encryptedRoot(image.RootDeviceName ?? "/dev/xvda", options),
      ],
      ...(options.securityGroups !== undefined &&
      options.securityGroups.length > 0
        ? { SecurityGroupIds: options.securityGroups }
        : {}),
      UserData: Buffer.from(renderFleetConfig(userData)).toString("base64"),
      TagSpecifications: [
        {
          ResourceType: "instance",
          Tags: tags(spec, { [ROLE_TAG]: "workers" }),
        },
        { ResourceType: "volume", Tags: tags(spec) },
      ],
    },
    TagSpecifications: [{ ResourceType: "launch-template", Tags: tags(spec) }],
  };
  const fleet: CreateFleetCommandInput = {
    Type: "instant",
    // One name, one fleet: a retried request cannot launch a second one.
    ClientToken: spec.name,
    TargetCapacitySpecification: {
      TotalTargetCapacity: spec.instances,
      OnDemandTargetCapacity: onDemand,
      SpotTargetCapacity: spot,
      DefaultTargetCapacityType: "spot",
    },
    SpotOptions: {
      AllocationStrategy: "price-capacity-optimized",
      ...(spec.maxHourlyCost === undefined
        ? {}
        : { MaxTotalPrice: (spec.maxHourlyCost - odHourly).toFixed(4) }),
    },
    OnDemandOptions: { AllocationStrategy: "lowest-price" },
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: {
          LaunchTemplateName: launchTemplate.LaunchTemplateName,
          Version: "$Latest",
        },
        Overrides: options.subnets.flatMap((SubnetId) =>
          options.instanceTypes.map((InstanceType) => ({
            SubnetId,
            InstanceType: InstanceType as _InstanceType,
          })),
        ),
      },
    ],
    TagSpecifications: [
      { ResourceType: "fleet", Tags: tags(spec) },
      { ResourceType: "instance", Tags: tags(spec, { [ROLE_TAG]: "workers" }) },
    ],
  };
  return {
    spec,
    ingestWorkers,
    userData,
    launchTemplate,
    fleet,
    prices,
    estimate,
  };
}

function priceOf(
  plan: Pick<Ec2FleetPlan, "prices">,
  instance: Instance,
  onDemandPrice: number | undefined,
): number {
  if (instance.InstanceLifecycle !== "spot") {
    return onDemandPrice ?? 0;
  }
  const zone = instance.Placement?.AvailabilityZone;
  return (
    plan.prices.find(
      (p) => p.instanceType === instance.InstanceType && p.zone === zone,
    )?.price ?? Math.max(...plan.prices.map((p) => p.price))
  );
}

function memberOf(instance: Instance, price?: number): FleetMember {
  const state = instance.State?.Name ?? "pending";
  return {
    id: instance.InstanceId ?? "",
    state:
      state === "pending"
        ? "pending"
        : state === "running"
          ? "running"
          : state === "terminated" || state === "stopped"
            ? "ended"
            : "ending",
    instanceType: instance.InstanceType,
    zone: instance.Placement?.AvailabilityZone,
    lifecycle: instance.InstanceLifecycle === "spot" ? "spot" : "on-demand",
    launchedAt: instance.LaunchTime ?? new Date(),
    hourlyPrice: price,
    stateReason: instance.StateReason?.Message,
  };
}

async function taggedInstances(
  ec2: EC2Client,
  filter: Filter[],
  states = END_STATES,
): Promise<Instance[]> {
  const found: Instance[] = [];
  try {
    for await (const page of paginateDescribeInstances(
      { client: ec2 },
      {
        Filters: [...filter, { Name: "instance-state-name", Values: states }],
      },
    )) {
      for (const r of page.Reservations ?? []) {
        found.push(...(r.Instances ?? []));
      }
    }
  } catch (error) {
    throw await failure(ec2, error, {
      action: "DescribeInstances",
      resource: "the fleet's instances",
    });
  }
  return found;
}

export interface TaggedResources {
  instances: Instance[];
  fleets: { id: string; fleet: string }[];
  templates: { id: string; name: string; fleet: string }[];
}

const LIVE_FLEET_STATES = [
  "submitted",
  "active",
  "modifying",
  "deleted_running",
];

function fleetTag(resourceTags: Tag[] | undefined): string {
  return resourceTags?.find((t) => t.Key === FLEET_TAG)?.Value ?? "";
}

function fleetFilter(fleet: string | undefined): Filter[] {
  return fleet === undefined
    ? [{ Name: "tag-key", Values: [FLEET_TAG] }]
    : [{ Name: `tag:${FLEET_TAG}`, Values: [fleet] }];
}

/** Every live fitsfleet resource, of one fleet (by name) or of all. */
export async function findTagged(
  ec2: EC2Client,
  fleet?: string,
): Promise<TaggedResources> {
  const filter = fleetFilter(fleet);
  const [instances, fleets, templates] = await Promise.all([
    taggedInstances(ec2, filter),
    send(
      ec2,
      { action: "DescribeFleets", resource: "the tagged EC2 fleets" },
      () =>
        ec2.send(
          new DescribeFleetsCommand({
            Filters: [
              ...filter,
              { Name: "fleet-state", Values: LIVE_FLEET_STATES },
            ],
          }),
        ),
    ),
    send(
      ec2,
      {
        action: "DescribeLaunchTemplates",
        resource: "the tagged launch templates",
      },
      () => ec2.send(new DescribeLaunchTemplatesCommand({ Filters: filter })),
    ),
  ]);
  return {
    instances,
    fleets: (fleets.Fleets ?? [])
      .filter((f) => LIVE_FLEET_STATES.includes(f.FleetState ?? ""))
      .map((f) => ({ id: f.FleetId ?? "", fleet: fleetTag(f.Tags) })),
    templates: (templates.LaunchTemplates ?? []).map((t) => ({
      id: t.LaunchTemplateId ?? "",
      name: t.LaunchTemplateName ?? "",
      fleet: fleetTag(t.Tags),
    })),
  };
}

/** The resources of the named fleets only. */
export function onlyFleets(
  found: TaggedResources,
  names: Set<string>,
): TaggedResources {
  return {
    instances: found.instances.filter((i) => names.has(fleetTag(i.Tags))),
    fleets: found.fleets.filter((f) => names.has(f.fleet)),
    templates: found.templates.filter((t) => names.has(t.fleet)),
  };
}

/** The fleet names the resources carry. */
export function fleetNames(found: TaggedResources): Set<string> {
  return new Set([
    ...found.instances.map((i) => fleetTag(i.Tags)),
    ...found.fleets.map((f) => f.fleet),
    ...found.templates.map((t) => t.fleet),
  ]);
}

export function tagOf(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}

/**
 * Ends everything tagged with the fleet's name: deletes its EC2 fleets
 * (terminating their instances), terminates any instance left in chunks,
 * and deletes its launch templates. Finding nothing is success.
 */
export async function terminateTagged(
  ec2: EC2Client,
  fleet: string | undefined,
  options: { chunk?: number; found?: TaggedResources } = {},
): Promise<TerminateReport> {
  const chunk = options.chunk ?? 1000;
  const found = options.found ?? (await findTagged(ec2, fleet));
  const fleetIds = found.fleets.map((f) => f.id);
  for (let i = 0; i < fleetIds.length; i += 25) {
    const ids = fleetIds.slice(i, i + 25);
    await send(ec2, { action: "DeleteFleets", resource: ids.join(", ") }, () =>
      ec2.send(
        new DeleteFleetsCommand({ FleetIds: ids, TerminateInstances: true }),
      ),
    );
  }
  // Deleting a fleet terminates its instances: list again what is left.
  const instances =
    fleetIds.length > 0 && options.found === undefined
      ? await taggedInstances(ec2, fleetFilter(fleet))
      : found.instances;
  const instanceIds = instances.map((i) => i.InstanceId ?? "");
  for (let i = 0; i < instanceIds.length; i += chunk) {
    const ids = instanceIds.slice(i, i + chunk);
    try {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    } catch (error) {
      // One id gone already fails the whole call: retry the rest one by one.
      if (!isNotFound(error)) {
        throw await failure(ec2, error, {
          action: "TerminateInstances",
          resource: `${ids.length} instance(s)`,
        });
      }
      for (const id of ids) {
        try {
          await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
        } catch (one) {
          if (!isNotFound(one)) {
            throw await failure(ec2, one, {
              action: "TerminateInstances",
              resource: id,
            });
          }
        }
      }
    }
  }
  for (const t of found.templates) {
    try {
      await ec2.send(
        new DeleteLaunchTemplateCommand({ LaunchTemplateId: t.id }),
      );
    } catch (error) {
      if (!isNotFound(error)) {
        throw await failure(ec2, error, {
          action: "DeleteLaunchTemplate",
          resource: t.name,
        });
      }
    }
  }
  return {
    instances: [
      ...new Set([
        ...found.instances.map((i) => i.InstanceId ?? ""),
        ...instanceIds,
      ]),
    ],
    fleets: fleetIds,
    templates: found.templates.map((t) => t.id),
  };
}

export interface Ec2LaunchResult {
  fleetId: string;
  launchTemplateId: string;
  members: FleetMember[];
  /** Pools that could not be filled (capacity, quota), as EC2 said. */
  errors: FleetLaunch["errors"];
}

/** EC2 had too little capacity: transient, worth trying again later or elsewhere. */
export class LaunchShortfallError extends ExternalServiceError {
  constructor(message: string, options: FitsfleetErrorOptions) {
    super("ec2", message, options);
  }
}

/**
 * Sends the plan: the launch template, then the fleet. With fewer
 * instances than `minInstances`, or any failure after the template exists,
 * everything tagged with the fleet's name is ended before the error is
 * thrown. `onResource` hears of each resource as soon as it exists, so the
 * caller can record it before the next step.
 */
export async function launchEc2Fleet(
  ec2: EC2Client,
  plan: Ec2FleetPlan,
  options: LaunchHooks & {
    minInstances?: number;
    onDemandPrice?: number;
  } = {},
): Promise<Ec2LaunchResult> {
  const name = plan.spec.name;
  const template = await send(
    ec2,
    {
      action: "CreateLaunchTemplate",
      resource: plan.launchTemplate.LaunchTemplateName ?? name,
    },
    () => ec2.send(new CreateLaunchTemplateCommand(plan.launchTemplate)),
  );
  const launchTemplateId = template.LaunchTemplate?.LaunchTemplateId ?? "";
  try {
    await options.onResource?.({ launchTemplateId });
    const response = await send(
      ec2,
      { action: "CreateFleet", resource: name },
      () => ec2.send(new CreateFleetCommand(plan.fleet)),
    );
    const fleetId = response.FleetId ?? "";
    await options.onResource?.({ fleetId });
    const ids = (response.Instances ?? []).flatMap((i) => i.InstanceIds ?? []);
    const errors = (response.Errors ?? []).map((e) => ({
      pool: `${e.LaunchTemplateAndOverrides?.Overrides?.InstanceType ?? "?"} in ${e.LaunchTemplateAndOverrides?.Overrides?.SubnetId ?? e.LaunchTemplateAndOverrides?.Overrides?.AvailabilityZone ?? "?"} (${e.Lifecycle ?? "spot"})`,
      code: e.ErrorCode ?? "",
      message: e.ErrorMessage ?? "",
    }));
    const wanted = options.minInstances ?? plan.spec.instances;
    if (ids.length < wanted) {
      throw new LaunchShortfallError(
        `EC2 launched ${ids.length} of ${plan.spec.instances} instance(s), fewer than the ${wanted} required; everything launched was ended. EC2 said: ${
          errors.length === 0
            ? "nothing"
            : [
                ...new Set(
                  errors.map((e) => `${e.code} for ${e.pool}: ${e.message}`),
                ),
              ]
                .slice(0, 5)
                .join("; ")
        }`,
        {
          suggestion:
            "add instance types (--instance-types) or subnets in other zones (--subnets), try later, or accept fewer with --min-instances",
          context: { launched: ids.length, errors },
        },
      );
    }
    const instances =
      ids.length === 0
        ? []
        : await taggedInstances(
            ec2,
            [{ Name: "instance-id", Values: ids }],
            [...END_STATES, "shutting-down", "terminated"],
          );
    return {
      fleetId,
      launchTemplateId,
      members: instances.map((i) =>
        memberOf(i, priceOf(plan, i, options.onDemandPrice)),
      ),
      errors,
    };
  } catch (error) {
    await terminateTagged(ec2, name).catch(() => undefined);
    throw error;
  }
}

/** The provider over one EC2 client: a fleet's members are its tagged instances. */
export class Ec2FleetProvider implements FleetProvider {
  readonly kind = "ec2";

  constructor(
    private readonly ec2: EC2Client,
    /** Needed to launch; watching and ending a fleet need only the client. */
    private readonly options?: Ec2Options,
  ) {}

  plan(spec: FleetSpec): Promise<Ec2FleetPlan> {
    if (this.options === undefined) {
      throw new Error("Ec2FleetProvider: launching needs its options");
    }
    return planEc2Fleet(this.ec2, spec, this.options);
  }

  async launch(spec: FleetSpec, hooks: LaunchHooks = {}): Promise<FleetLaunch> {
    const result = await launchEc2Fleet(this.ec2, await this.plan(spec), {
      minInstances: this.options?.minInstances,
      onDemandPrice: this.options?.onDemandPrice,
      onResource: hooks.onResource,
    });
    return {
      members: result.members,
      ec2FleetIds: [result.fleetId],
      launchTemplateId: result.launchTemplateId,
      errors: result.errors,
    };
  }

  async members(fleet: string): Promise<FleetMember[]> {
    const instances = await taggedInstances(
      this.ec2,
      [{ Name: `tag:${FLEET_TAG}`, Values: [fleet] }],
      [...END_STATES, "shutting-down", "terminated"],
    );
    return instances.map((i) => memberOf(i));
  }

  terminate(fleet: string): Promise<TerminateReport> {
    return terminateTagged(this.ec2, fleet);
  }
}
