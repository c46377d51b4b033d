/**
 * Where workers run, behind one interface: `local` (groups of worker
 * processes on this machine: the embedded default, the demo's) and `ec2`
 * (a spot fleet). The rest of the toolkit launches, watches and ends a
 * fleet through this (infra/fleet.ts) and never knows which provider it
 * has.
 */
/**
 * A fleet: `instances` machines (or, locally, groups of worker processes),
 * each running `ingestWorkers` ingest and `previewWorkers` preview workers
 * with --empty, until the queue drains or the deadline passes.
 */
export interface FleetSpec {
  /** The fleet's name: FLEET_TAG's value on every resource. */
  name: string;
  run: string;
  instances: number;
  /** Per instance; default (EC2): one per vCPU of the smallest type. */
  ingestWorkers?: number;
  previewWorkers: number;
  queue: string;
  fastRebuild: boolean;
  makePreviews: boolean;
  storage?: string;
  previews?: string;
  logLevel?: string;
  maxHourlyCost?: number;
  /** Workers stop, and the fleet is ended, at this time. */
  deadline: Date;
}

export interface FleetMember {
  id: string;
  state: "pending" | "running" | "ending" | "ended";
  instanceType?: string;
  zone?: string;
  lifecycle?: "spot" | "on-demand";
  launchedAt: Date;
  /** USD per hour; known at launch. */
  hourlyPrice?: number;
  stateReason?: string;
}

export interface FleetLaunch {
  members: FleetMember[];
  ec2FleetIds: string[];
  launchTemplateId?: string;
  /** Pools that could not be filled, as the provider said. */
  errors: { pool: string; code: string; message: string }[];
}

export interface TerminateReport {
  instances: string[];
  fleets: string[];
  templates: string[];
}

export interface LaunchHooks {
  /** Hears of each cloud resource as soon as it exists, so that it is recorded before the next step. */
  onResource?: (resource: {
    launchTemplateId?: string;
    fleetId?: string;
  }) => Promise<void>;
}

/** Launches, lists and ends a fleet, wherever it runs (infra/ec2.ts, infra/local.ts). */
export interface FleetProvider {
  readonly kind: "local" | "ec2";
  launch(spec: FleetSpec, hooks?: LaunchHooks): Promise<FleetLaunch>;
  members(fleet: string): Promise<FleetMember[]>;
  /** Ends every member and resource of the fleet; ending an ended fleet succeeds. */
  terminate(fleet: string): Promise<TerminateReport>;
}
