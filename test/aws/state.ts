/**
 * What the loopback endpoint remembers: every resource by id, the tags on
 * each, the faults a test armed, and a record of who called what. Kept in
 * memory; the only thing on disk is each image's and instance's folder.
 */
import { randomBytes } from "node:crypto";

import { ACCOUNT_ID, type SpotPriceTable } from "./catalog.js";
import { Ec2Error, type QueryFilter, wildcardMatch } from "./query.js";

export type ResourceType =
  "instance" | "launch-template" | "fleet" | "image" | "snapshot" | "volume";

export type InstanceStateName =
  | "pending"
  | "running"
  | "shutting-down"
  | "terminated"
  | "stopping"
  | "stopped";

export const STATE_CODES: Readonly<Record<InstanceStateName, number>> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface MetadataOptions {
  httpTokens: "optional" | "required";
  httpPutResponseHopLimit: number;
  httpEndpoint: "enabled" | "disabled";
  instanceMetadataTags: "enabled" | "disabled";
}

export interface BlockDevice {
  deviceName: string;
  encrypted: boolean;
  volumeSize?: number;
  volumeType?: string;
  deleteOnTermination?: boolean;
  kmsKeyId?: string;
  snapshotId?: string;
}

/** What a launch asks for, whether from a template, RunInstances or both. */
export interface LaunchData {
  imageId?: string;
  instanceType?: string;
  userData?: string;
  iamInstanceProfile?: { arn?: string; name?: string };
  metadataOptions?: Partial<MetadataOptions>;
  instanceInitiatedShutdownBehavior?: "stop" | "terminate";
  blockDeviceMappings?: BlockDevice[];
  tagSpecifications?: { resourceType: string; tags: [string, string][] }[];
  marketType?: "spot";
  securityGroupIds?: string[];
}

export interface LaunchTemplateRecord {
  id: string;
  name: string;
  createTime: Date;
  createdBy: string;
  versionDescription?: string;
  data: LaunchData;
}

export interface ImageRecord {
  id: string;
  name: string;
  description?: string;
  ownerId: string;
  state: "pending" | "available" | "deregistered";
  creationDate: Date;
  /** The command each instance runs as its "operating system", in its own folder. */
  argv: string[];
  /** Extra environment for that command. */
  env: Record<string, string>;
  /** Copied into each instance's folder at launch. */
  root: string;
  imdsSupport?: "v2.0";
  sourceInstanceId?: string;
  rootDevice: BlockDevice;
}

export interface SnapshotRecord {
  id: string;
  volumeSize: number;
  encrypted: boolean;
  startTime: Date;
  description: string;
  imageId?: string;
}

export interface InstanceRecord {
  id: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  zone: string;
  zoneId: string;
  subnetId: string;
  lifecycle: "spot" | "on-demand";
  state: InstanceStateName;
  stateReason?: { code: string; message: string };
  stateTransitionReason: string;
  launchTime: Date;
  amiLaunchIndex: number;
  fleetId?: string;
  launchTemplate?: { id: string; name: string; version: string };
  userData?: string;
  metadataOptions: MetadataOptions;
  shutdownBehavior: "stop" | "terminate";
  role?: string;
  instanceProfileArn?: string;
  volumes: (BlockDevice & { volumeId: string })[];
  credentials?: {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken: string;
  };
  dir: string;
  pid?: number;
  exitCode?: number | null;
  exitSignal?: string | null;
  imdsUrl?: string;
  spotAction?: { action: string; time: string };
  rebalance?: { noticeTime: string };
}

export interface FleetPoolResult {
  launchTemplateId: string;
  launchTemplateName: string;
  version: string;
  overrides: {
    instanceType?: string;
    subnetId?: string;
    availabilityZone?: string;
    weightedCapacity?: number;
    priority?: number;
  };
  lifecycle: "spot" | "on-demand";
}

export interface FleetRecord {
  id: string;
  type: string;
  createTime: Date;
  state: "active" | "deleted";
  clientToken?: string;
  target: {
    total: number;
    onDemand: number;
    spot: number;
    defaultType: string;
  };
  spotAllocationStrategy: string;
  onDemandAllocationStrategy: string;
  instances: (FleetPoolResult & {
    instanceIds: string[];
    instanceType: string;
    zone: string;
    subnetId: string;
  })[];
  errors: (FleetPoolResult & { errorCode: string; errorMessage: string })[];
}

export interface CapacityRule {
  instanceType?: string;
  zone?: string;
  lifecycle?: "spot" | "on-demand";
  /** Matching launches that still succeed before the rule starts failing them. */
  afterInstances?: number;
}

export interface ApiCall {
  service: "ec2" | "ssm";
  action: string;
  accessKeyId?: string;
  /** "operator", or the instance whose role credentials signed the call. */
  principal: string;
  at: Date;
  error?: string;
}

export function newId(prefix: string, hexDigits = 17): string {
  return `${prefix}-${randomBytes(Math.ceil(hexDigits / 2))
    .toString("hex")
    .slice(0, hexDigits)}`;
}

export class AwsState {
  readonly launchTemplates = new Map<string, LaunchTemplateRecord>();
  readonly fleets = new Map<string, FleetRecord>();
  readonly instances = new Map<string, InstanceRecord>();
  readonly images = new Map<string, ImageRecord>();
  readonly snapshots = new Map<string, SnapshotRecord>();
  readonly kinds = new Map<string, ResourceType>();
  readonly tags = new Map<string, Map<string, string>>();
  readonly capacityRules: (CapacityRule & { launched: number })[] = [];
  readonly throttles = new Map<string, number>();
  readonly calls: ApiCall[] = [];
  /** Access key id → the instance whose role credentials it is. */
  readonly instanceKeys = new Map<string, string>();

  constructor(
    readonly region: string,
    readonly prices: SpotPriceTable,
    readonly accountId = ACCOUNT_ID,
  ) {}

  add(id: string, kind: ResourceType): void {
    this.kinds.set(id, kind);
    this.tags.set(id, new Map());
  }

  tagsOf(id: string): Map<string, string> {
    return this.tags.get(id) ?? new Map();
  }

  tagList(id: string): { key: string; value: string }[] {
    return [...this.tagsOf(id)].map(([key, value]) => ({ key, value }));
  }

  setTags(
    id: string,
    tags: Iterable<[string, string]>,
    internal = false,
  ): void {
    const map = this.tags.get(id);
    if (map === undefined) {
      throw new Ec2Error(notFoundCode(id), `The ID '${id}' does not exist`);
    }
    for (const [key, value] of tags) {
      if (!internal && key.toLowerCase().startsWith("aws:")) {
        throw new Ec2Error(
          "InvalidParameterValue",
          "Tag keys starting with 'aws:' are reserved for internal use",
        );
      }
      map.set(key, value);
    }
  }

  /** Applies `TagSpecification`s whose resource type is `kind` to `id`. */
  applyTagSpecifications(
    id: string,
    kind: string,
    specs: { resourceType: string; tags: [string, string][] }[] | undefined,
  ): void {
    for (const spec of specs ?? []) {
      if (spec.resourceType === kind) {
        this.setTags(id, spec.tags);
      }
    }
  }

  /** Counts a throttled call down; true when this call is to be refused. */
  takeThrottle(action: string): boolean {
    const left = this.throttles.get(action) ?? 0;
    if (left <= 0) {
      return false;
    }
    this.throttles.set(action, left - 1);
    return true;
  }

  private rulesFor(
    instanceType: string,
    zone: string,
    lifecycle: "spot" | "on-demand",
  ) {
    return this.capacityRules.filter(
      (r) =>
        (r.instanceType === undefined || r.instanceType === instanceType) &&
        (r.zone === undefined || r.zone === zone) &&
        (r.lifecycle === undefined || r.lifecycle === lifecycle),
    );
  }

  /** How many more instances this pool can launch before an injected capacity error. */
  capacityLeft(
    instanceType: string,
    zone: string,
    lifecycle: "spot" | "on-demand",
  ): number {
    return this.rulesFor(instanceType, zone, lifecycle).reduce(
      (left, r) =>
        Math.min(left, Math.max(0, (r.afterInstances ?? 0) - r.launched)),
      Number.POSITIVE_INFINITY,
    );
  }

  countLaunch(
    instanceType: string,
    zone: string,
    lifecycle: "spot" | "on-demand",
    n: number,
  ): void {
    for (const r of this.rulesFor(instanceType, zone, lifecycle)) {
      r.launched += n;
    }
  }
}

function notFoundCode(id: string): string {
  const prefix = id.split("-")[0];
  switch (prefix) {
    case "i":
      return "InvalidInstanceID.NotFound";
    case "ami":
      return "InvalidAMIID.NotFound";
    case "snap":
      return "InvalidSnapshot.NotFound";
    case "lt":
      return "InvalidLaunchTemplateId.NotFound";
    case "fleet":
      return "InvalidFleetId.NotFound";
    default:
      return "InvalidID";
  }
}

/**
 * Keeps the resources whose every filter matches: `values(name)` gives a
 * resource's values for a filter name (undefined for a name it does not
 * know, which EC2 refuses), and `tag:KEY`, `tag-key` and `tag-value` come
 * from its tags.
 */
export function applyFilters<T>(
  items: T[],
  list: QueryFilter[],
  tags: (item: T) => Map<string, string>,
  values: (item: T, name: string) => (string | undefined)[] | undefined,
): T[] {
  return items.filter((item) =>
    list.every((filter) => {
      let candidates: (string | undefined)[] | undefined;
      if (filter.name.startsWith("tag:")) {
        const value = tags(item).get(filter.name.slice(4));
        candidates = value === undefined ? [] : [value];
      } else if (filter.name === "tag-key") {
        candidates = [...tags(item).keys()];
      } else if (filter.name === "tag-value") {
        candidates = [...tags(item).values()];
      } else {
        candidates = values(item, filter.name);
      }
      if (candidates === undefined) {
        throw new Ec2Error(
          "InvalidParameterValue",
          `The filter '${filter.name}' is invalid`,
        );
      }
      return candidates.some(
        (c) =>
          c !== undefined && filter.values.some((v) => wildcardMatch(v, c)),
      );
    }),
  );
}
