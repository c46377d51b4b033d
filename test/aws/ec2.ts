/**
 * The EC2 actions a spot fleet and an image bake use, over the state in
 * `state.ts`: launch templates, instant fleets, instances (as processes,
 * `instances.ts`), tags, prices, instance types, zones and subnets, images
 * and snapshots. Each action takes the parsed query and returns the
 * response's members under their XML names.
 */
import { randomUUID } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

import { INSTANCE_TYPES, spotPrice, type Zone, zonesOf } from "./catalog.js";
import {
  CONSOLE_LOG,
  type InstanceProcesses,
  USER_DATA_FILE,
} from "./instances.js";
import {
  bool,
  Ec2Error,
  filters,
  int,
  list,
  paginate,
  type QueryNode,
  type QueryTree,
  str,
  strings,
  tagsOf,
  tagSpecifications,
  type XmlValue,
} from "./query.js";
import {
  applyFilters,
  type AwsState,
  type BlockDevice,
  type FleetPoolResult,
  type FleetRecord,
  type ImageRecord,
  type InstanceRecord,
  type LaunchData,
  type LaunchTemplateRecord,
  type MetadataOptions,
  newId,
  STATE_CODES,
} from "./state.js";

/** Security rules the endpoint holds launches to, as an organisation's SCP would (RELIABILITY.md §5). */
export interface LaunchPolicy {
  /** Refuse launches whose metadata options allow IMDSv1. */
  requireImdsV2: boolean;
  /** Refuse launches whose PUT hop limit is above this. */
  maxHopLimit: number;
  /** Refuse launches with an unencrypted EBS volume. */
  requireEncryptedVolumes: boolean;
}

export const DEFAULT_POLICY: LaunchPolicy = {
  requireImdsV2: true,
  maxHopLimit: 2,
  requireEncryptedVolumes: false,
};

export interface Ec2Context {
  state: AwsState;
  processes: InstanceProcesses;
  root: string;
  policy: LaunchPolicy;
  /** Instance profile names a launch may use; undefined accepts any. */
  instanceProfiles?: string[];
}

export type Ec2Action = (
  params: QueryTree,
  caller: string,
) => Promise<Record<string, XmlValue>>;

type Lifecycle = "spot" | "on-demand";

const SHUTDOWN_REASON = {
  code: "Client.UserInitiatedShutdown",
  message: "Client.UserInitiatedShutdown: User initiated shutdown",
};

function invalid(message: string): Ec2Error {
  return new Ec2Error("InvalidParameterValue", message);
}

function required(params: QueryNode, name: string): string {
  const value = str(params, name);
  if (value === undefined || value === "") {
    throw new Ec2Error(
      "MissingParameter",
      `The request must contain the parameter ${name}`,
    );
  }
  return value;
}

function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  name: string,
): T | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (!(allowed as readonly string[]).includes(value)) {
    throw invalid(`Value (${value}) for parameter ${name} is invalid.`);
  }
  return value as T;
}

function blockDevices(
  node: QueryNode | undefined,
  path: string,
): BlockDevice[] | undefined {
  const mappings = list(node, path);
  if (mappings.length === 0) {
    return undefined;
  }
  return mappings.map((m) => ({
    deviceName: str(m, "DeviceName") ?? "/dev/xvda",
    encrypted: bool(m, "Ebs.Encrypted") ?? false,
    volumeSize: int(m, "Ebs.VolumeSize"),
    volumeType: str(m, "Ebs.VolumeType"),
    deleteOnTermination: bool(m, "Ebs.DeleteOnTermination"),
    kmsKeyId: str(m, "Ebs.KmsKeyId"),
    snapshotId: str(m, "Ebs.SnapshotId"),
  }));
}

/** The launch members RunInstances and LaunchTemplateData share. */
export function parseLaunchData(node: QueryNode | undefined): LaunchData {
  const hopLimit = int(node, "MetadataOptions.HttpPutResponseHopLimit");
  if (hopLimit !== undefined && (hopLimit < 1 || hopLimit > 64)) {
    throw invalid(
      `Value (${hopLimit}) for parameter HttpPutResponseHopLimit is invalid.`,
    );
  }
  const metadataOptions: Partial<MetadataOptions> = {
    httpTokens: oneOf(
      str(node, "MetadataOptions.HttpTokens"),
      ["optional", "required"],
      "HttpTokens",
    ),
    httpPutResponseHopLimit: hopLimit,
    httpEndpoint: oneOf(
      str(node, "MetadataOptions.HttpEndpoint"),
      ["enabled", "disabled"],
      "HttpEndpoint",
    ),
    instanceMetadataTags: oneOf(
      str(node, "MetadataOptions.InstanceMetadataTags"),
      ["enabled", "disabled"],
      "InstanceMetadataTags",
    ),
  };
  const profileArn = str(node, "IamInstanceProfile.Arn");
  const profileName = str(node, "IamInstanceProfile.Name");
  const data: LaunchData = {
    imageId: str(node, "ImageId"),
    instanceType: str(node, "InstanceType"),
    userData: str(node, "UserData"),
    iamInstanceProfile:
      profileArn === undefined && profileName === undefined
        ? undefined
        : { arn: profileArn, name: profileName },
    metadataOptions: Object.values(metadataOptions).some((v) => v !== undefined)
      ? metadataOptions
      : undefined,
    instanceInitiatedShutdownBehavior: oneOf(
      str(node, "InstanceInitiatedShutdownBehavior"),
      ["stop", "terminate"],
      "InstanceInitiatedShutdownBehavior",
    ),
    blockDeviceMappings: blockDevices(node, "BlockDeviceMapping"),
    tagSpecifications: tagSpecifications(node),
    marketType:
      str(node, "InstanceMarketOptions.MarketType") === "spot"
        ? "spot"
        : undefined,
    securityGroupIds: strings(node, "SecurityGroupId"),
  };
  if (
    data.userData !== undefined &&
    Buffer.from(data.userData, "base64").toString("base64") !== data.userData
  ) {
    throw invalid("Invalid BASE64 encoding of user data.");
  }
  return data;
}

function mergeLaunch(base: LaunchData, over: LaunchData): LaunchData {
  const merged: LaunchData = { ...base };
  for (const [key, value] of Object.entries(over) as [
    keyof LaunchData,
    LaunchData[keyof LaunchData],
  ][]) {
    const empty =
      value === undefined || (Array.isArray(value) && value.length === 0);
    if (!empty) {
      (merged as Record<string, unknown>)[key] = value;
    }
  }
  merged.tagSpecifications = [
    ...(base.tagSpecifications ?? []),
    ...(over.tagSpecifications ?? []),
  ];
  return merged;
}

function imdsDefaults(image: ImageRecord): MetadataOptions {
  const v2 = image.imdsSupport === "v2.0";
  return {
    httpTokens: v2 ? "required" : "optional",
    httpPutResponseHopLimit: v2 ? 2 : 1,
    httpEndpoint: "enabled",
    instanceMetadataTags: "disabled",
  };
}

function launchTemplateXml(
  state: AwsState,
  lt: LaunchTemplateRecord,
): Record<string, XmlValue> {
  return {
    launchTemplateId: lt.id,
    launchTemplateName: lt.name,
    createTime: lt.createTime,
    createdBy: lt.createdBy,
    defaultVersionNumber: 1,
    latestVersionNumber: 1,
    tagSet: state.tagList(lt.id),
  };
}

function launchDataXml(data: LaunchData): Record<string, XmlValue> {
  return {
    imageId: data.imageId,
    instanceType: data.instanceType,
    userData: data.userData,
    iamInstanceProfile: data.iamInstanceProfile,
    instanceInitiatedShutdownBehavior: data.instanceInitiatedShutdownBehavior,
    metadataOptions:
      data.metadataOptions === undefined
        ? undefined
        : { state: "applied", ...data.metadataOptions },
    blockDeviceMappingSet: data.blockDeviceMappings?.map((b) => ({
      deviceName: b.deviceName,
      ebs: {
        encrypted: b.encrypted,
        deleteOnTermination: b.deleteOnTermination,
        kmsKeyId: b.kmsKeyId,
        snapshotId: b.snapshotId,
        volumeSize: b.volumeSize,
        volumeType: b.volumeType,
      },
    })),
    tagSpecificationSet: data.tagSpecifications?.map((s) => ({
      resourceType: s.resourceType,
      tagSet: s.tags.map(([key, value]) => ({ key, value })),
    })),
    instanceMarketOptions:
      data.marketType === undefined
        ? undefined
        : { marketType: data.marketType },
    securityGroupIdSet: data.securityGroupIds,
  };
}

export function instanceXml(
  state: AwsState,
  i: InstanceRecord,
): Record<string, XmlValue> {
  return {
    instanceId: i.id,
    imageId: i.imageId,
    instanceState: { code: STATE_CODES[i.state], name: i.state },
    privateDnsName: "ip-127-0-0-1.ec2.internal",
    dnsName: "",
    reason: i.stateTransitionReason,
    amiLaunchIndex: i.amiLaunchIndex,
    instanceType: i.instanceType,
    launchTime: i.launchTime,
    placement: {
      availabilityZone: i.zone,
      availabilityZoneId: i.zoneId,
      tenancy: "default",
    },
    monitoring: { state: "disabled" },
    subnetId: i.subnetId,
    vpcId: "vpc-00000000000000001",
    privateIpAddress: "127.0.0.1",
    architecture: "x86_64",
    rootDeviceType: "ebs",
    rootDeviceName: i.volumes[0]?.deviceName,
    blockDeviceMapping: i.volumes.map((v) => ({
      deviceName: v.deviceName,
      ebs: {
        volumeId: v.volumeId,
        status: "attached",
        deleteOnTermination: v.deleteOnTermination ?? true,
      },
    })),
    instanceLifecycle: i.lifecycle === "spot" ? "spot" : undefined,
    spotInstanceRequestId:
      i.lifecycle === "spot" ? `sir-${i.id.slice(2, 10)}` : undefined,
    iamInstanceProfile:
      i.instanceProfileArn === undefined
        ? undefined
        : {
            arn: i.instanceProfileArn,
            id: "AIPA" + i.id.slice(2, 19).toUpperCase(),
          },
    stateReason: i.stateReason,
    tagSet: state.tagList(i.id),
    metadataOptions: {
      state: "applied",
      ...i.metadataOptions,
      httpProtocolIpv6: "disabled",
    },
  };
}

export function createEc2Actions(ctx: Ec2Context): Record<string, Ec2Action> {
  const { state, processes } = ctx;
  const zones = zonesOf(state.region);

  const zoneByName = (name: string): Zone => {
    const zone = zones.find((z) => z.name === name);
    if (zone === undefined) {
      throw invalid(`Invalid availability zone: [${name}]`);
    }
    return zone;
  };
  const zoneBySubnet = (subnetId: string): Zone => {
    const zone = zones.find((z) => z.subnetId === subnetId);
    if (zone === undefined) {
      throw new Ec2Error(
        "InvalidSubnetID.NotFound",
        `The subnet ID '${subnetId}' does not exist`,
      );
    }
    return zone;
  };

  const image = (id: string | undefined): ImageRecord => {
    if (id === undefined) {
      throw new Ec2Error(
        "MissingParameter",
        "The request must contain the parameter ImageId",
      );
    }
    const found = state.images.get(id);
    if (found === undefined || found.state === "deregistered") {
      throw new Ec2Error(
        "InvalidAMIID.NotFound",
        `The image id '[${id}]' does not exist`,
      );
    }
    return found;
  };

  const instance = (id: string): InstanceRecord => {
    const found = state.instances.get(id);
    if (found === undefined) {
      throw new Ec2Error(
        id.startsWith("i-")
          ? "InvalidInstanceID.NotFound"
          : "InvalidInstanceID.Malformed",
        id.startsWith("i-")
          ? `The instance ID '${id}' does not exist`
          : `Invalid id: "${id}"`,
      );
    }
    return found;
  };

  const template = (
    spec: QueryNode | undefined,
  ): { lt: LaunchTemplateRecord; version: string } => {
    const id = str(spec, "LaunchTemplateId");
    const name = str(spec, "LaunchTemplateName");
    const version = str(spec, "Version") ?? "$Default";
    let lt: LaunchTemplateRecord | undefined;
    if (id !== undefined) {
      lt = state.launchTemplates.get(id);
      if (lt === undefined) {
        throw new Ec2Error(
          "InvalidLaunchTemplateId.NotFound",
          `The specified launch template, with template ID ${id}, does not exist.`,
        );
      }
    } else if (name !== undefined) {
      lt = [...state.launchTemplates.values()].find((t) => t.name === name);
      if (lt === undefined) {
        throw new Ec2Error(
          "InvalidLaunchTemplateName.NotFoundException",
          `The specified launch template, with template name ${name}, does not exist.`,
        );
      }
    } else {
      throw new Ec2Error(
        "MissingParameter",
        "A launch template ID or name is required.",
      );
    }
    if (!["$Default", "$Latest", "1"].includes(version)) {
      throw new Ec2Error(
        "InvalidLaunchTemplateId.VersionNotFound",
        `Could not find launch template version ${version} for ${lt.id}`,
      );
    }
    return { lt, version: "1" };
  };

  /** Why a launch breaks the policy or asks for what does not exist, or undefined when it may go. */
  const launchProblem = (data: LaunchData): Ec2Error | undefined => {
    try {
      const img = image(data.imageId);
      const md = {
        ...imdsDefaults(img),
        ...stripUndefined(data.metadataOptions ?? {}),
      };
      if (ctx.policy.requireImdsV2 && md.httpTokens !== "required") {
        return new Ec2Error(
          "UnauthorizedOperation",
          "You are not authorized to perform this operation: launches must set MetadataOptions.HttpTokens=required.",
          403,
        );
      }
      if (md.httpPutResponseHopLimit > ctx.policy.maxHopLimit) {
        return new Ec2Error(
          "UnauthorizedOperation",
          `You are not authorized to perform this operation: HttpPutResponseHopLimit must be at most ${ctx.policy.maxHopLimit}.`,
          403,
        );
      }
      if (
        ctx.policy.requireEncryptedVolumes &&
        volumesFor(data, img).some((v) => !v.encrypted)
      ) {
        return new Ec2Error(
          "UnauthorizedOperation",
          "You are not authorized to perform this operation: every EBS volume must be encrypted.",
          403,
        );
      }
      const profile = profileName(data);
      if (
        profile !== undefined &&
        ctx.instanceProfiles !== undefined &&
        !ctx.instanceProfiles.includes(profile)
      ) {
        return invalid(
          `Value (${profile}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name`,
        );
      }
      const type = data.instanceType ?? "m5.large";
      if (INSTANCE_TYPES[type] === undefined) {
        return invalid(
          `The instance type '${type}' is not supported here (known: ${Object.keys(INSTANCE_TYPES).join(", ")}).`,
        );
      }
      return undefined;
    } catch (error) {
      if (error instanceof Ec2Error) {
        return error;
      }
      throw error;
    }
  };

  interface Placement {
    instanceType: string;
    zone: Zone;
    lifecycle: Lifecycle;
    reservationId: string;
    fleetId?: string;
    templateRef?: { id: string; name: string; version: string };
    extraTags?: [string, string][];
  }

  const launch = async (
    data: LaunchData,
    count: number,
    where: Placement,
    caller: string,
  ): Promise<InstanceRecord[]> => {
    const img = image(data.imageId);
    const launched: InstanceRecord[] = [];
    for (let index = 0; index < count; index++) {
      const id = newId("i");
      const profile = profileName(data);
      const record: InstanceRecord = {
        id,
        reservationId: where.reservationId,
        imageId: img.id,
        instanceType: where.instanceType,
        zone: where.zone.name,
        zoneId: where.zone.id,
        subnetId: where.zone.subnetId,
        lifecycle: where.lifecycle,
        state: "pending",
        stateTransitionReason: "",
        launchTime: new Date(),
        amiLaunchIndex: index,
        fleetId: where.fleetId,
        launchTemplate: where.templateRef,
        userData: data.userData,
        metadataOptions: {
          ...imdsDefaults(img),
          ...stripUndefined(data.metadataOptions ?? {}),
        },
        shutdownBehavior: data.instanceInitiatedShutdownBehavior ?? "stop",
        role: profile,
        instanceProfileArn:
          profile === undefined
            ? undefined
            : (data.iamInstanceProfile?.arn ??
              `arn:aws:iam::${state.accountId}:instance-profile/${profile}`),
        volumes: volumesFor(data, img).map((v) => ({
          ...v,
          volumeId: newId("vol"),
        })),
        dir: join(ctx.root, "instances", id),
      };
      state.instances.set(id, record);
      state.add(id, "instance");
      for (const volume of record.volumes) {
        state.add(volume.volumeId, "volume");
        state.applyTagSpecifications(
          volume.volumeId,
          "volume",
          data.tagSpecifications,
        );
      }
      state.applyTagSpecifications(id, "instance", data.tagSpecifications);
      state.setTags(id, where.extraTags ?? []);
      const internal: [string, string][] = [];
      if (where.templateRef !== undefined) {
        internal.push(
          ["aws:ec2launchtemplate:id", where.templateRef.id],
          ["aws:ec2launchtemplate:version", where.templateRef.version],
        );
      }
      if (where.fleetId !== undefined) {
        internal.push(["aws:ec2:fleet-id", where.fleetId]);
      }
      state.setTags(id, internal, true);
      if (profile !== undefined) {
        processes.issueCredentials(record);
      }
      launched.push(record);
      void caller;
    }
    await Promise.all(launched.map((r) => processes.start(r, img)));
    return launched;
  };

  const describeInstancesPage = (
    params: QueryTree,
  ): Record<string, XmlValue> => {
    const ids = strings(params, "InstanceId");
    const maxResults = int(params, "MaxResults");
    if (ids.length > 0 && maxResults !== undefined) {
      throw new Ec2Error(
        "InvalidParameterCombination",
        "The parameter instancesSet cannot be used with the parameter maxResults",
      );
    }
    let items =
      ids.length > 0 ? ids.map(instance) : [...state.instances.values()];
    items = applyFilters(
      items,
      filters(params),
      (i) => state.tagsOf(i.id),
      (i, name) => {
        switch (name) {
          case "instance-state-name":
            return [i.state];
          case "instance-state-code":
            return [String(STATE_CODES[i.state])];
          case "instance-id":
            return [i.id];
          case "instance-type":
            return [i.instanceType];
          case "availability-zone":
            return [i.zone];
          case "image-id":
            return [i.imageId];
          case "instance-lifecycle":
            return [i.lifecycle === "spot" ? "spot" : undefined];
          case "subnet-id":
            return [i.subnetId];
          case "reservation-id":
            return [i.reservationId];
          case "iam-instance-profile.arn":
            return [i.instanceProfileArn];
          default:
            return undefined;
        }
      },
    );
    const { page, nextToken } = paginate(
      items,
      maxResults,
      str(params, "NextToken"),
    );
    const reservations = new Map<string, InstanceRecord[]>();
    for (const i of page) {
      reservations.set(i.reservationId, [
        ...(reservations.get(i.reservationId) ?? []),
        i,
      ]);
    }
    return {
      reservationSet: [...reservations].map(([reservationId, members]) => ({
        reservationId,
        ownerId: state.accountId,
        groupSet: [],
        instancesSet: members.map((i) => instanceXml(state, i)),
      })),
      nextToken,
    };
  };

  const stateChange = (
    i: InstanceRecord,
    previous: InstanceRecord["state"],
  ): Record<string, XmlValue> => ({
    instanceId: i.id,
    currentState: { code: STATE_CODES[i.state], name: i.state },
    previousState: { code: STATE_CODES[previous], name: previous },
  });

  const fleetXml = (f: FleetRecord): Record<string, XmlValue> => {
    const pool = (p: FleetPoolResult) => ({
      launchTemplateSpecification: {
        launchTemplateId: p.launchTemplateId,
        launchTemplateName: p.launchTemplateName,
        version: p.version,
      },
      overrides: p.overrides,
    });
    return {
      errorSet: f.errors.map((e) => ({
        launchTemplateAndOverrides: pool(e),
        lifecycle: e.lifecycle,
        errorCode: e.errorCode,
        errorMessage: e.errorMessage,
      })),
      fleetInstanceSet: f.instances.map((p) => ({
        launchTemplateAndOverrides: pool(p),
        lifecycle: p.lifecycle,
        instanceIds: p.instanceIds,
        instanceType: p.instanceType,
        availabilityZone: p.zone,
        subnetId: p.subnetId,
      })),
    };
  };

  const fleetState = (f: FleetRecord): string => {
    if (f.state === "active") {
      return "active";
    }
    const ids = f.instances.flatMap((p) => p.instanceIds);
    return ids.some((id) => state.instances.get(id)?.state !== "terminated")
      ? "deleted_terminating"
      : "deleted";
  };

  const imageXml = (img: ImageRecord): Record<string, XmlValue> => ({
    imageId: img.id,
    imageLocation: `${img.ownerId}/${img.name}`,
    imageState: img.state,
    imageOwnerId: img.ownerId,
    creationDate: img.creationDate.toISOString(),
    isPublic: false,
    architecture: "x86_64",
    imageType: "machine",
    name: img.name,
    description: img.description,
    rootDeviceType: "ebs",
    rootDeviceName: img.rootDevice.deviceName,
    blockDeviceMapping: [
      {
        deviceName: img.rootDevice.deviceName,
        ebs: {
          snapshotId: img.rootDevice.snapshotId,
          volumeSize: img.rootDevice.volumeSize,
          encrypted: img.rootDevice.encrypted,
          deleteOnTermination: true,
          volumeType: "gp3",
        },
      },
    ],
    virtualizationType: "hvm",
    hypervisor: "xen",
    enaSupport: true,
    imdsSupport: img.imdsSupport,
    sourceInstanceId: img.sourceInstanceId,
    tagSet: state.tagList(img.id),
  });

  const snapshot = (id: string) => {
    const found = state.snapshots.get(id);
    if (found === undefined) {
      throw new Ec2Error(
        "InvalidSnapshot.NotFound",
        `The snapshot '${id}' does not exist.`,
      );
    }
    return found;
  };

  const ownerMatches = (ownerId: string, owners: string[]): boolean =>
    owners.length === 0 ||
    owners.some((o) => (o === "self" ? state.accountId : o) === ownerId);

  return {
    async CreateLaunchTemplate(params, caller) {
      const name = required(params, "LaunchTemplateName");
      if ([...state.launchTemplates.values()].some((t) => t.name === name)) {
        throw new Ec2Error(
          "InvalidLaunchTemplateName.AlreadyExistsException",
          `Launch template name already in use.`,
        );
      }
      const data = parseLaunchData(params.LaunchTemplateData);
      const lt: LaunchTemplateRecord = {
        id: newId("lt"),
        name,
        createTime: new Date(),
        createdBy: `arn:aws:iam::${state.accountId}:user/${caller}`,
        versionDescription: str(params, "VersionDescription"),
        data,
      };
      state.launchTemplates.set(lt.id, lt);
      state.add(lt.id, "launch-template");
      state.applyTagSpecifications(
        lt.id,
        "launch-template",
        tagSpecifications(params),
      );
      return { launchTemplate: launchTemplateXml(state, lt) };
    },

    async DescribeLaunchTemplates(params) {
      const ids = strings(params, "LaunchTemplateId");
      const names = strings(params, "LaunchTemplateName");
      let items = [...state.launchTemplates.values()];
      if (ids.length > 0) {
        items = ids.map((id) => template({ LaunchTemplateId: id }).lt);
      }
      if (names.length > 0) {
        items = names.map((name) => template({ LaunchTemplateName: name }).lt);
      }
      items = applyFilters(
        items,
        filters(params),
        (t) => state.tagsOf(t.id),
        (t, name) =>
          name === "launch-template-name"
            ? [t.name]
            : name === "create-time"
              ? [t.createTime.toISOString()]
              : undefined,
      );
      const { page, nextToken } = paginate(
        items,
        int(params, "MaxResults"),
        str(params, "NextToken"),
        1,
      );
      return {
        launchTemplates: page.map((t) => launchTemplateXml(state, t)),
        nextToken,
      };
    },

    async DescribeLaunchTemplateVersions(params) {
      const { lt } = template(nameOrId(params));
      for (const version of strings(params, "LaunchTemplateVersion")) {
        template({ ...nameOrId(params), Version: version });
      }
      return {
        launchTemplateVersionSet: [
          {
            launchTemplateId: lt.id,
            launchTemplateName: lt.name,
            versionNumber: 1,
            versionDescription: lt.versionDescription,
            createTime: lt.createTime,
            createdBy: lt.createdBy,
            defaultVersion: true,
            launchTemplateData: launchDataXml(lt.data),
          },
        ],
      };
    },

    async DeleteLaunchTemplate(params) {
      const { lt } = template(nameOrId(params));
      const xml = launchTemplateXml(state, lt);
      state.launchTemplates.delete(lt.id);
      return { launchTemplate: xml };
    },

    async RunInstances(params, caller) {
      const min = int(params, "MinCount") ?? 1;
      const max = int(params, "MaxCount") ?? min;
      if (min < 1 || max < min) {
        throw invalid(`Invalid MinCount/MaxCount: ${min}/${max}`);
      }
      let data = parseLaunchData(params);
      let templateRef: Placement["templateRef"];
      if (at0(params, "LaunchTemplate") !== undefined) {
        const { lt, version } = template(params.LaunchTemplate);
        data = mergeLaunch(lt.data, data);
        templateRef = { id: lt.id, name: lt.name, version };
      }
      const problem = launchProblem(data);
      if (problem !== undefined) {
        throw problem;
      }
      const subnetId = str(params, "SubnetId");
      const az = str(params, "Placement.AvailabilityZone");
      const zone =
        subnetId !== undefined
          ? zoneBySubnet(subnetId)
          : az !== undefined
            ? zoneByName(az)
            : zones[0]!;
      const instanceType = data.instanceType ?? "m5.large";
      const lifecycle: Lifecycle =
        data.marketType === "spot" ? "spot" : "on-demand";
      const left = state.capacityLeft(instanceType, zone.name, lifecycle);
      if (left < min) {
        throw new Ec2Error(
          "InsufficientInstanceCapacity",
          `We currently do not have sufficient ${instanceType} capacity in the Availability Zone you requested (${zone.name}).`,
          500,
        );
      }
      const count = Math.min(max, left);
      state.countLaunch(instanceType, zone.name, lifecycle, count);
      const reservationId = newId("r");
      const launched = await launch(
        data,
        count,
        { instanceType, zone, lifecycle, reservationId, templateRef },
        caller,
      );
      return {
        reservationId,
        ownerId: state.accountId,
        groupSet: [],
        instancesSet: launched.map((i) => instanceXml(state, i)),
      };
    },

    async DescribeInstances(params) {
      return describeInstancesPage(params);
    },

    async TerminateInstances(params) {
      const targets = strings(params, "InstanceId").map(instance);
      return {
        instancesSet: targets.map((i) => {
          const previous = i.state;
          processes.terminate(i, SHUTDOWN_REASON);
          return stateChange(i, previous);
        }),
      };
    },

    async StopInstances(params) {
      const targets = strings(params, "InstanceId").map(instance);
      for (const i of targets) {
        if (i.lifecycle === "spot") {
          throw new Ec2Error(
            "UnsupportedOperation",
            `You can't stop the Spot Instance '${i.id}' because it is associated with a one-time Spot Instance request.`,
          );
        }
        if (i.state === "terminated" || i.state === "shutting-down") {
          throw new Ec2Error(
            "IncorrectInstanceState",
            `This instance '${i.id}' is not in a state from which it can be stopped.`,
          );
        }
      }
      return {
        instancesSet: targets.map((i) => {
          const previous = i.state;
          processes.stop(i);
          return stateChange(i, previous);
        }),
      };
    },

    async GetConsoleOutput(params) {
      const i = instance(required(params, "InstanceId"));
      const file = join(i.dir, CONSOLE_LOG);
      const output = existsSync(file)
        ? readFileSync(file).subarray(-64 * 1024)
        : Buffer.alloc(0);
      return {
        instanceId: i.id,
        timestamp: new Date(),
        output: output.toString("base64"),
      };
    },

    async CreateTags(params) {
      const ids = strings(params, "ResourceId");
      const tags = tagsOf(params);
      for (const id of ids) {
        state.setTags(id, tags);
      }
      return { return: true };
    },

    async DeleteTags(params) {
      const ids = strings(params, "ResourceId");
      const tags = list(params, "Tag").map((t) => ({
        key: str(t, "Key") ?? "",
        value: str(t, "Value"),
      }));
      for (const id of ids) {
        const map = state.tags.get(id);
        if (map === undefined) {
          continue;
        }
        for (const { key, value } of tags) {
          if (key.startsWith("aws:")) {
            throw invalid(
              "Tag keys starting with 'aws:' are reserved for internal use",
            );
          }
          if (value === undefined || map.get(key) === value) {
            map.delete(key);
          }
        }
      }
      return { return: true };
    },

    async DescribeTags(params) {
      const all = [...state.tags].flatMap(([resourceId, map]) =>
        [...map].map(([key, value]) => ({
          resourceId,
          resourceType: state.kinds.get(resourceId) ?? "",
          key,
          value,
        })),
      );
      const matched = applyFilters(
        all,
        filters(params),
        () => new Map(),
        (t, name) => {
          switch (name) {
            case "resource-id":
              return [t.resourceId];
            case "resource-type":
              return [t.resourceType];
            case "key":
              return [t.key];
            case "value":
              return [t.value];
            default:
              return undefined;
          }
        },
      );
      const { page, nextToken } = paginate(
        matched,
        int(params, "MaxResults"),
        str(params, "NextToken"),
      );
      return { tagSet: page, nextToken };
    },

    async DescribeSpotPriceHistory(params) {
      const types = strings(params, "InstanceType");
      const zoneName = str(params, "AvailabilityZone");
      const products = strings(params, "ProductDescription");
      if (products.some((p) => !p.startsWith("Linux/UNIX"))) {
        return { spotPriceHistorySet: [] };
      }
      const rows = Object.keys(state.prices)
        .filter((t) => types.length === 0 || types.includes(t))
        .flatMap((instanceType) =>
          zones
            .filter((z) => zoneName === undefined || z.name === zoneName)
            .flatMap((z) => {
              const price = spotPrice(state.prices, instanceType, z.name);
              return price === undefined
                ? []
                : [
                    {
                      availabilityZone: z.name,
                      availabilityZoneId: z.id,
                      instanceType,
                      productDescription: "Linux/UNIX",
                      spotPrice: price.toFixed(6),
                      timestamp: new Date(),
                    },
                  ];
            }),
        );
      const matched = applyFilters(
        rows,
        filters(params),
        () => new Map(),
        (r, name) =>
          name === "instance-type"
            ? [r.instanceType]
            : name === "availability-zone"
              ? [r.availabilityZone]
              : name === "product-description"
                ? [r.productDescription]
                : undefined,
      );
      const { page, nextToken } = paginate(
        matched,
        int(params, "MaxResults"),
        str(params, "NextToken"),
        1,
      );
      return { spotPriceHistorySet: page, nextToken };
    },

    async DescribeInstanceTypes(params) {
      const wanted = strings(params, "InstanceType");
      for (const t of wanted) {
        if (INSTANCE_TYPES[t] === undefined) {
          throw new Ec2Error(
            "InvalidInstanceType",
            `The following supplied instance types do not exist: [${t}]`,
          );
        }
      }
      const names = wanted.length > 0 ? wanted : Object.keys(INSTANCE_TYPES);
      return {
        instanceTypeSet: names.map((t) => {
          const info = INSTANCE_TYPES[t]!;
          return {
            instanceType: t,
            currentGeneration: true,
            supportedUsageClasses: ["on-demand", "spot"],
            processorInfo: { supportedArchitectures: ["x86_64"] },
            vCpuInfo: {
              defaultVCpus: info.vCpus,
              defaultCores: info.vCpus / 2,
              defaultThreadsPerCore: 2,
            },
            memoryInfo: { sizeInMiB: info.memoryMiB },
          };
        }),
      };
    },

    async DescribeAvailabilityZones(params) {
      const names = strings(params, "ZoneName");
      return {
        availabilityZoneInfo: zones
          .filter((z) => names.length === 0 || names.includes(z.name))
          .map((z) => ({
            zoneName: z.name,
            zoneId: z.id,
            zoneState: "available",
            regionName: state.region,
            zoneType: "availability-zone",
            groupName: state.region,
          })),
      };
    },

    async DescribeSubnets(params) {
      const ids = strings(params, "SubnetId");
      const chosen = ids.length > 0 ? ids.map(zoneBySubnet) : zones;
      const matched = applyFilters(
        chosen,
        filters(params),
        () => new Map(),
        (z, name) =>
          name === "availability-zone"
            ? [z.name]
            : name === "subnet-id"
              ? [z.subnetId]
              : name === "default-for-az"
                ? ["true"]
                : name === "vpc-id"
                  ? ["vpc-00000000000000001"]
                  : undefined,
      );
      return {
        subnetSet: matched.map((z) => ({
          subnetId: z.subnetId,
          availabilityZone: z.name,
          availabilityZoneId: z.id,
          state: "available",
          vpcId: "vpc-00000000000000001",
          cidrBlock: z.cidrBlock,
          availableIpAddressCount: 4091,
          defaultForAz: true,
          ownerId: state.accountId,
        })),
      };
    },

    async CreateFleet(params, caller) {
      const type = str(params, "Type") ?? "maintain";
      if (type !== "instant") {
        throw new Ec2Error(
          "Unsupported",
          `The loopback endpoint simulates instant fleets only, not '${type}'.`,
        );
      }
      const total = int(
        params,
        "TargetCapacitySpecification.TotalTargetCapacity",
      );
      if (total === undefined || total < 1) {
        throw new Ec2Error(
          "MissingParameter",
          "The request must contain TargetCapacitySpecification.TotalTargetCapacity",
        );
      }
      const defaultType =
        str(params, "TargetCapacitySpecification.DefaultTargetCapacityType") ??
        "on-demand";
      let onDemand: number;
      let spot: number;
      if (defaultType === "spot") {
        onDemand = Math.min(
          total,
          int(params, "TargetCapacitySpecification.OnDemandTargetCapacity") ??
            0,
        );
        spot = total - onDemand;
      } else {
        spot = Math.min(
          total,
          int(params, "TargetCapacitySpecification.SpotTargetCapacity") ?? 0,
        );
        onDemand = total - spot;
      }
      const spotStrategy =
        str(params, "SpotOptions.AllocationStrategy") ?? "lowest-price";
      const onDemandStrategy =
        str(params, "OnDemandOptions.AllocationStrategy") ?? "lowest-price";
      const fleet: FleetRecord = {
        id: `fleet-${randomUUID()}`,
        type,
        createTime: new Date(),
        state: "active",
        clientToken: str(params, "ClientToken"),
        target: { total, onDemand, spot, defaultType },
        spotAllocationStrategy: spotStrategy,
        onDemandAllocationStrategy: onDemandStrategy,
        instances: [],
        errors: [],
      };
      state.fleets.set(fleet.id, fleet);
      state.add(fleet.id, "fleet");
      const requestTags = tagSpecifications(params);
      state.applyTagSpecifications(fleet.id, "fleet", requestTags);
      const instanceTags = requestTags
        .filter((s) => s.resourceType === "instance")
        .flatMap((s) => s.tags);

      interface Pool {
        base: Omit<FleetPoolResult, "lifecycle">;
        data: LaunchData;
        instanceType: string;
        zone: Zone;
        weight: number;
        priority: number;
        order: number;
        problem?: Ec2Error;
      }
      const pools: Pool[] = [];
      let order = 0;
      for (const config of list(params, "LaunchTemplateConfigs")) {
        const { lt, version } = template(
          at0(config, "LaunchTemplateSpecification"),
        );
        const overrides = list(config, "Overrides");
        for (const o of overrides.length > 0 ? overrides : [{}]) {
          const over: LaunchData = {
            instanceType: str(o, "InstanceType"),
            imageId: str(o, "ImageId"),
          };
          const data = mergeLaunch(lt.data, over);
          const subnetId = str(o, "SubnetId");
          const azName = str(o, "AvailabilityZone");
          const zone =
            subnetId !== undefined
              ? zoneBySubnet(subnetId)
              : azName !== undefined
                ? zoneByName(azName)
                : zones[0]!;
          const overridesXml = {
            instanceType: str(o, "InstanceType"),
            subnetId,
            availabilityZone: azName,
            weightedCapacity: numberOrUndefined(str(o, "WeightedCapacity")),
            priority: numberOrUndefined(str(o, "Priority")),
          };
          pools.push({
            base: {
              launchTemplateId: lt.id,
              launchTemplateName: lt.name,
              version,
              overrides: overridesXml,
            },
            data,
            instanceType: data.instanceType ?? "m5.large",
            zone,
            weight: overridesXml.weightedCapacity ?? 1,
            priority: overridesXml.priority ?? Number.MAX_SAFE_INTEGER,
            order: order++,
            problem: launchProblem(data),
          });
        }
      }
      if (pools.length === 0) {
        throw new Ec2Error(
          "MissingParameter",
          "The request must contain LaunchTemplateConfigs",
        );
      }

      const fill = async (
        units: number,
        lifecycle: Lifecycle,
        strategy: string,
      ) => {
        if (units <= 0) {
          return;
        }
        const price = (p: Pool) =>
          (lifecycle === "spot"
            ? (spotPrice(state.prices, p.instanceType, p.zone.name) ?? Infinity)
            : (INSTANCE_TYPES[p.instanceType]?.onDemand ?? Infinity)) /
          p.weight;
        const byPriority = (a: Pool, b: Pool) =>
          a.priority - b.priority || a.order - b.order;
        const ordered = [...pools].sort(
          strategy === "prioritized" ||
            strategy.startsWith("capacity-optimized")
            ? byPriority
            : (a, b) => price(a) - price(b) || byPriority(a, b),
        );
        const failed = new Set<Pool>();
        const fail = (p: Pool, error: Ec2Error) => {
          failed.add(p);
          fleet.errors.push({
            ...p.base,
            lifecycle,
            errorCode: error.code,
            errorMessage: error.message,
          });
        };
        let remaining = units;
        const take = async (p: Pool, wanted: number) => {
          if (p.problem !== undefined) {
            fail(p, p.problem);
            return 0;
          }
          const n = Math.min(
            wanted,
            state.capacityLeft(p.instanceType, p.zone.name, lifecycle),
          );
          if (n > 0) {
            state.countLaunch(p.instanceType, p.zone.name, lifecycle, n);
            const launched = await launch(
              {
                ...p.data,
                marketType: lifecycle === "spot" ? "spot" : undefined,
              },
              n,
              {
                instanceType: p.instanceType,
                zone: p.zone,
                lifecycle,
                reservationId: newId("r"),
                fleetId: fleet.id,
                templateRef: {
                  id: p.base.launchTemplateId,
                  name: p.base.launchTemplateName,
                  version: p.base.version,
                },
                extraTags: instanceTags,
              },
              caller,
            );
            const existing = fleet.instances.find(
              (x) =>
                x.lifecycle === lifecycle &&
                x.launchTemplateId === p.base.launchTemplateId &&
                x.instanceType === p.instanceType &&
                x.subnetId === p.zone.subnetId,
            );
            if (existing !== undefined) {
              existing.instanceIds.push(...launched.map((i) => i.id));
            } else {
              fleet.instances.push({
                ...p.base,
                lifecycle,
                instanceIds: launched.map((i) => i.id),
                instanceType: p.instanceType,
                zone: p.zone.name,
                subnetId: p.zone.subnetId,
              });
            }
          }
          if (n < wanted) {
            fail(
              p,
              new Ec2Error(
                "InsufficientInstanceCapacity",
                `There is no ${lifecycle === "spot" ? "Spot" : "On-Demand"} capacity available that matches your request for ${p.instanceType} in ${p.zone.name}.`,
              ),
            );
          }
          return n * p.weight;
        };
        if (strategy === "diversified") {
          while (remaining > 0 && failed.size < ordered.length) {
            for (const p of ordered) {
              if (remaining > 0 && !failed.has(p)) {
                remaining -= await take(p, 1);
              }
            }
          }
          return;
        }
        for (const p of ordered) {
          if (remaining <= 0) {
            break;
          }
          remaining -= await take(p, Math.ceil(remaining / p.weight));
        }
      };
      await fill(onDemand, "on-demand", onDemandStrategy);
      await fill(spot, "spot", spotStrategy);
      return { fleetId: fleet.id, ...fleetXml(fleet) };
    },

    async DescribeFleets(params) {
      const ids = strings(params, "FleetId");
      const chosen = ids.map((id) => {
        const f = state.fleets.get(id);
        if (f === undefined) {
          throw new Ec2Error(
            "InvalidFleetId.NotFound",
            `The fleet ID '${id}' does not exist`,
          );
        }
        return f;
      });
      let items = ids.length > 0 ? chosen : [...state.fleets.values()];
      items = applyFilters(
        items,
        filters(params),
        (f) => state.tagsOf(f.id),
        (f, name) =>
          name === "fleet-state"
            ? [fleetState(f)]
            : name === "type"
              ? [f.type]
              : undefined,
      );
      const { page, nextToken } = paginate(
        items,
        int(params, "MaxResults"),
        str(params, "NextToken"),
        1,
      );
      return {
        fleetSet: page.map((f) => ({
          fleetId: f.id,
          fleetState: fleetState(f),
          type: f.type,
          createTime: f.createTime,
          clientToken: f.clientToken,
          activityStatus: "fulfilled",
          fulfilledCapacity: f.instances.reduce(
            (n, p) => n + p.instanceIds.length,
            0,
          ),
          fulfilledOnDemandCapacity: f.instances
            .filter((p) => p.lifecycle === "on-demand")
            .reduce((n, p) => n + p.instanceIds.length, 0),
          targetCapacitySpecification: {
            totalTargetCapacity: f.target.total,
            onDemandTargetCapacity: f.target.onDemand,
            spotTargetCapacity: f.target.spot,
            defaultTargetCapacityType: f.target.defaultType,
          },
          spotOptions: { allocationStrategy: f.spotAllocationStrategy },
          onDemandOptions: { allocationStrategy: f.onDemandAllocationStrategy },
          tagSet: state.tagList(f.id),
          ...fleetXml(f),
        })),
        nextToken,
      };
    },

    async DeleteFleets(params) {
      const terminate = bool(params, "TerminateInstances");
      if (terminate === undefined) {
        throw new Ec2Error(
          "MissingParameter",
          "The request must contain the parameter TerminateInstances",
        );
      }
      const successes: XmlValue[] = [];
      const failures: XmlValue[] = [];
      for (const id of strings(params, "FleetId")) {
        const f = state.fleets.get(id);
        if (f === undefined) {
          failures.push({
            fleetId: id,
            error: {
              code: "fleetIdDoesNotExist",
              message: `The fleet ID '${id}' does not exist`,
            },
          });
          continue;
        }
        if (f.type === "instant" && !terminate) {
          failures.push({
            fleetId: id,
            error: {
              code: "fleetNotInDeletableState",
              message:
                "An instant fleet must terminate its instances when it is deleted.",
            },
          });
          continue;
        }
        const previous = fleetState(f);
        f.state = "deleted";
        if (terminate) {
          for (const instanceId of f.instances.flatMap((p) => p.instanceIds)) {
            const i = state.instances.get(instanceId);
            if (i !== undefined) {
              processes.terminate(i, SHUTDOWN_REASON);
            }
          }
        }
        successes.push({
          fleetId: id,
          previousFleetState: previous,
          currentFleetState: fleetState(f),
        });
      }
      return {
        successfulFleetDeletionSet: successes,
        unsuccessfulFleetDeletionSet: failures,
      };
    },

    async CreateImage(params) {
      const source = instance(required(params, "InstanceId"));
      const name = required(params, "Name");
      if (source.state !== "running" && source.state !== "stopped") {
        throw new Ec2Error(
          "IncorrectInstanceState",
          `The instance '${source.id}' is not in a state from which it can be imaged.`,
        );
      }
      if (
        [...state.images.values()].some(
          (i) =>
            i.name === name &&
            i.state !== "deregistered" &&
            i.ownerId === state.accountId,
        )
      ) {
        throw new Ec2Error(
          "InvalidAMIName.Duplicate",
          `AMI name ${name} is already in use by an AMI.`,
        );
      }
      const base = image(source.imageId);
      const id = newId("ami");
      const root = join(ctx.root, "images", id);
      mkdirSync(root, { recursive: true });
      // The instance's disk, without what the endpoint itself wrote there.
      cpSync(source.dir, root, {
        recursive: true,
        // A snapshot keeps a relative symlink relative.
        verbatimSymlinks: true,
        filter: (src) =>
          src !== join(source.dir, CONSOLE_LOG) &&
          src !== join(source.dir, USER_DATA_FILE),
      });
      const rootVolume = source.volumes[0];
      const snap = {
        id: newId("snap"),
        volumeSize: rootVolume?.volumeSize ?? 8,
        encrypted: rootVolume?.encrypted ?? false,
        startTime: new Date(),
        description: `Created by CreateImage(${source.id}) for ${id}`,
        imageId: id,
      };
      state.snapshots.set(snap.id, snap);
      state.add(snap.id, "snapshot");
      const img: ImageRecord = {
        id,
        name,
        description: str(params, "Description"),
        ownerId: state.accountId,
        state: "available",
        creationDate: new Date(),
        argv: base.argv,
        env: base.env,
        root,
        imdsSupport: base.imdsSupport,
        sourceInstanceId: source.id,
        rootDevice: {
          deviceName: rootVolume?.deviceName ?? "/dev/xvda",
          encrypted: snap.encrypted,
          volumeSize: snap.volumeSize,
          snapshotId: snap.id,
        },
      };
      state.images.set(id, img);
      state.add(id, "image");
      const specs = tagSpecifications(params);
      state.applyTagSpecifications(id, "image", specs);
      state.applyTagSpecifications(snap.id, "snapshot", specs);
      return { imageId: id };
    },

    async DescribeImages(params) {
      const ids = strings(params, "ImageId");
      const owners = strings(params, "Owner");
      let items =
        ids.length > 0
          ? ids.map((id) => image(id))
          : [...state.images.values()].filter(
              (i) => i.state !== "deregistered",
            );
      items = items.filter((i) => ownerMatches(i.ownerId, owners));
      items = applyFilters(
        items,
        filters(params),
        (i) => state.tagsOf(i.id),
        (i, name) => {
          switch (name) {
            case "name":
              return [i.name];
            case "state":
              return [i.state];
            case "image-id":
              return [i.id];
            case "owner-id":
              return [i.ownerId];
            default:
              return undefined;
          }
        },
      );
      const { page, nextToken } = paginate(
        items,
        int(params, "MaxResults"),
        str(params, "NextToken"),
      );
      return { imagesSet: page.map(imageXml), nextToken };
    },

    async DeregisterImage(params) {
      const img = image(required(params, "ImageId"));
      img.state = "deregistered";
      const deleted: XmlValue[] = [];
      if (bool(params, "DeleteAssociatedSnapshots") === true) {
        for (const snap of [...state.snapshots.values()].filter(
          (s) => s.imageId === img.id,
        )) {
          state.snapshots.delete(snap.id);
          deleted.push({ snapshotId: snap.id, returnCode: "success" });
        }
      }
      if (img.root.startsWith(join(ctx.root, "images"))) {
        rmSync(img.root, { recursive: true, force: true });
      }
      return { return: true, deleteSnapshotResultSet: deleted };
    },

    async DescribeSnapshots(params) {
      const ids = strings(params, "SnapshotId");
      const owners = strings(params, "Owner");
      let items =
        ids.length > 0 ? ids.map(snapshot) : [...state.snapshots.values()];
      items = items.filter(() => ownerMatches(state.accountId, owners));
      items = applyFilters(
        items,
        filters(params),
        (s) => state.tagsOf(s.id),
        (s, name) =>
          name === "snapshot-id"
            ? [s.id]
            : name === "status"
              ? ["completed"]
              : name === "encrypted"
                ? [String(s.encrypted)]
                : undefined,
      );
      const { page, nextToken } = paginate(
        items,
        int(params, "MaxResults"),
        str(params, "NextToken"),
      );
      return {
        snapshotSet: page.map((s) => ({
          snapshotId: s.id,
          volumeId: "vol-ffffffff",
          status: "completed",
          startTime: s.startTime,
          progress: "100%",
          ownerId: state.accountId,
          volumeSize: s.volumeSize,
          description: s.description,
          encrypted: s.encrypted,
          tagSet: state.tagList(s.id),
        })),
        nextToken,
      };
    },

    async DeleteSnapshot(params) {
      const snap = snapshot(required(params, "SnapshotId"));
      const user = [...state.images.values()].find(
        (i) =>
          i.state !== "deregistered" && i.rootDevice.snapshotId === snap.id,
      );
      if (user !== undefined) {
        throw new Ec2Error(
          "InvalidSnapshot.InUse",
          `The snapshot ${snap.id} is currently in use by ${user.id}`,
        );
      }
      state.snapshots.delete(snap.id);
      return { return: true };
    },
  };
}

/** The template's id or name alone: the request's own `Version` is the API's. */
function nameOrId(params: QueryTree): QueryTree {
  const picked: QueryTree = {};
  for (const key of ["LaunchTemplateId", "LaunchTemplateName"]) {
    const value = params[key];
    if (value !== undefined) {
      picked[key] = value;
    }
  }
  return picked;
}

function at0(node: QueryNode | undefined, key: string): QueryNode | undefined {
  return node !== undefined && typeof node === "object" && !Array.isArray(node)
    ? node[key]
    : undefined;
}

function numberOrUndefined(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}

function profileName(data: LaunchData): string | undefined {
  return (
    data.iamInstanceProfile?.name ??
    data.iamInstanceProfile?.arn?.split("/").pop()
  );
}

function volumesFor(data: LaunchData, img: ImageRecord): BlockDevice[] {
  const mappings = data.blockDeviceMappings ?? [];
  const root = mappings.find((m) => m.deviceName === img.rootDevice.deviceName);
  return [
    root === undefined
      ? { ...img.rootDevice }
      : { ...img.rootDevice, ...stripUndefined(root) },
    ...mappings.filter((m) => m !== root),
  ];
}
