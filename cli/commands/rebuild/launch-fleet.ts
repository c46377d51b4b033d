/**
 * `fitsfleet rebuild launch-fleet`: workers for the queue, on EC2 spot
 * instances (`--provider ec2`, with `--image`) or as processes on this
 * machine (`--provider local`). With --watch (always, locally) the command
 * stays to guard the fleet and ends it when the queue drains, the budget or
 * time cap is reached, or progress stalls.
 */
import { randomBytes } from "node:crypto";

import { Command, Option } from "commander";

import { awsRegion } from "../../../infra/aws.js";
import type { Ec2FleetPlan, Ec2Options } from "../../../infra/ec2.js";
import type { GuardOutcome } from "../../../infra/fleet.js";
import type { FleetRecord } from "../../../infra/fleet-store.js";
import { DEFAULT_SSM_PREFIX } from "../../../infra/iam-policy.js";
import type { FleetLaunch, FleetSpec } from "../../../infra/provider.js";
import { EXIT, FitsfleetError, UsageError } from "../../../lib/errors.js";
import { wholeNumber } from "../../parse.js";
import { runContext } from "../../run.js";
import { onInterrupt } from "../../signals.js";
import {
  guardOutcomeError,
  guardTiming,
  guardWithProgress,
  money,
  REGION_OPTION,
  unguardedError,
  withGuardOptions,
} from "../fleet/common.js";
import { QUEUE_OPTION, storageLocation } from "./common.js";

export const DEFAULT_INSTANCE_TYPES = "c6i.large,c5.large,m6i.large,m5.large";
export const DEFAULT_INSTANCE_PROFILE = "fitsfleet-worker";

export interface LaunchFleetFlags {
  provider?: string;
  image?: string;
  allowVersionMismatch?: boolean;
  instances: string;
  minInstances?: string;
  instanceTypes: string;
  subnets?: string;
  onDemandBase: string;
  onDemandPrice?: string;
  instanceProfile: string;
  securityGroups?: string;
  rootVolumeGib?: string;
  kmsKeyId?: string;
  workersPerInstance?: string;
  previewWorkersPerInstance: string;
  queue: string;
  fastRebuild: boolean;
  makePreviews: boolean;
  maxHourlyCost?: string;
  maxHours: string;
  budget?: string;
  name?: string;
  run?: string;
  secretsPrefix: string;
  region?: string;
  dryRun?: boolean;
  watch?: boolean;
  stallAfter: string;
  interval: string;
}

function usd(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${flag} ${value}: US dollars, a positive number`);
  }
  return n;
}

function list(flag: string, value: string | undefined): string[] {
  const items = (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (value !== undefined && items.length === 0) {
    throw new UsageError(`${flag}: a comma-separated list`);
  }
  return items;
}

export function fleetName(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").slice(0, 13);
  return `ff-${stamp.toLowerCase()}-${randomBytes(3).toString("hex")}`;
}

interface Parsed {
  provider: "ec2" | "local";
  spec: FleetSpec;
  budget?: number;
  ec2?: Ec2Options;
  stallMs: number;
  intervalMs: number;
}

function parseFlags(
  flags: LaunchFleetFlags,
  storage: string | undefined,
  previews: string | undefined,
  logLevel: string | undefined,
  s3Endpoint: string | undefined,
): Parsed {
  const provider =
    flags.provider ?? (flags.image === undefined ? "local" : "ec2");
  if (provider !== "ec2" && provider !== "local") {
    throw new UsageError(`--provider ${provider}: ec2 or local`);
  }
  const instances = wholeNumber("--instances", flags.instances, { max: 5000 });
  const maxHours = Number(flags.maxHours);
  if (!Number.isFinite(maxHours) || maxHours <= 0 || maxHours > 24 * 14) {
    throw new UsageError(
      `--max-hours ${flags.maxHours}: hours, more than 0 and at most ${24 * 14}`,
    );
  }
  const name = flags.name ?? fleetName();
  if (!/^[a-z0-9][a-z0-9-]{2,62}$/.test(name)) {
    throw new UsageError(
      `--name ${name}: 3 to 63 lower-case letters, digits and dashes`,
    );
  }
  const maxHourlyCost = usd("--max-hourly-cost", flags.maxHourlyCost);
  const budget =
    usd("--budget", flags.budget) ??
    (maxHourlyCost === undefined ? undefined : maxHourlyCost * maxHours);
  const spec: FleetSpec = {
    name,
    run: flags.run ?? name,
    instances,
    ingestWorkers:
      flags.workersPerInstance === undefined
        ? provider === "local"
          ? 1
          : undefined
        : wholeNumber("--workers-per-instance", flags.workersPerInstance, {
            min: 0,
            max: 256,
          }),
    previewWorkers: wholeNumber(
      "--preview-workers-per-instance",
      flags.previewWorkersPerInstance,
      { min: 0, max: 256 },
    ),
    queue: flags.queue,
    fastRebuild: flags.fastRebuild,
    makePreviews: flags.makePreviews,
    storage,
    previews,
    logLevel,
    maxHourlyCost,
    deadline: new Date(Date.now() + maxHours * 3_600_000),
  };
  if ((spec.ingestWorkers ?? 1) + spec.previewWorkers === 0) {
    throw new UsageError(
      "--workers-per-instance 0 and --preview-workers-per-instance 0: an instance would run no worker",
    );
  }
  const parsed: Parsed = {
    provider,
    spec,
    budget,
    ...guardTiming(flags),
  };
  if (provider === "ec2") {
    const missing = [
      flags.image === undefined
        ? "--image (a baked image id: `fitsfleet ami list`)"
        : undefined,
      flags.subnets === undefined
        ? "--subnets (one or more subnet ids, ideally in several zones)"
        : undefined,
    ].filter((m) => m !== undefined);
    if (missing.length > 0) {
      throw new UsageError(`--provider ec2 needs ${missing.join(" and ")}`);
    }
    parsed.ec2 = {
      region: awsRegion(flags.region),
      image: flags.image!,
      instanceTypes: list("--instance-types", flags.instanceTypes),
      subnets: list("--subnets", flags.subnets),
      onDemandBase: wholeNumber("--on-demand-base", flags.onDemandBase, {
        min: 0,
        max: instances,
      }),
      onDemandPrice: usd("--on-demand-price", flags.onDemandPrice),
      minInstances:
        flags.minInstances === undefined
          ? undefined
          : wholeNumber("--min-instances", flags.minInstances, {
              max: instances,
            }),
      instanceProfile: flags.instanceProfile,
      securityGroups: list("--security-groups", flags.securityGroups),
      rootVolumeGiB:
        flags.rootVolumeGib === undefined
          ? undefined
          : wholeNumber("--root-volume-gib", flags.rootVolumeGib, {
              min: 8,
              max: 16384,
            }),
      kmsKeyId: flags.kmsKeyId,
      secretsPrefix: flags.secretsPrefix,
      s3Endpoint,
    };
  }
  return parsed;
}

export interface DryRunResult {
  dryRun: true;
  provider: "ec2" | "local";
  fleet: string;
  requests: { action: string; input: unknown }[];
  userData?: unknown;
  estimate?: Ec2FleetPlan["estimate"] & { prices: Ec2FleetPlan["prices"] };
  workersPerInstance: { ingest: number; preview: number };
}

export interface LaunchResult {
  fleet: FleetRecord;
  launch: FleetLaunch;
  guard?: GuardOutcome;
}

function describeDryRun(r: DryRunResult): string {
  const lines = [
    `dry run for fleet ${r.fleet} (${r.provider}): nothing was created`,
    `workers per instance: ${r.workersPerInstance.ingest} ingest, ${r.workersPerInstance.preview} preview`,
  ];
  for (const req of r.requests) {
    lines.push(`${req.action}:`, JSON.stringify(req.input, null, 2));
  }
  if (r.userData !== undefined) {
    lines.push(
      "user-data (decoded; no secret):",
      JSON.stringify(r.userData, null, 2),
    );
  }
  if (r.estimate !== undefined) {
    const e = r.estimate;
    lines.push(
      "spot prices now (USD/h): " +
        e.prices
          .map((p) => `${p.instanceType} ${p.zone} ${p.price}`)
          .join(", "),
      `estimated cost: ${money(e.hourlyLow)} to ${money(e.hourlyHigh)} per hour for ${e.spotInstances} spot and ${e.onDemandInstances} on-demand instance(s)`,
    );
  }
  return lines.join("\n");
}

function describeLaunch(r: LaunchResult): string {
  const f = r.fleet;
  const lines = [
    `fleet ${f.name} launched (${f.provider}${f.region === null ? "" : ` ${f.region}`}): ${r.launch.members.length} instance(s)${r.launch.ec2FleetIds.length > 0 ? `, EC2 fleet ${r.launch.ec2FleetIds.join(", ")}` : ""}`,
    `now ${money(f.hourlyRate)}/h; budget ${money(f.budget)}; deadline ${f.deadline.toISOString()}`,
  ];
  for (const e of r.launch.errors) {
    lines.push(`not filled: ${e.pool}: ${e.code} ${e.message}`);
  }
  if (r.guard === undefined) {
    lines.push(
      `guard it with \`fitsfleet fleet watch --fleet ${f.name}\`; end it with \`fitsfleet fleet terminate --fleet ${f.name}\``,
    );
  } else {
    lines.push(
      `fleet ended: ${r.guard.message}; spend ${money(r.guard.fleet.spend)}`,
    );
  }
  return lines.join("\n");
}

export function launchFleetCommand(): Command {
  const launchFleet = new Command("launch-fleet")
    .description(
      "launch workers for the queue: an EC2 spot fleet from a baked image (--provider ec2, --image) or worker processes on this machine (--provider local); with --watch, end it when the queue drains, the budget or time cap is reached, or progress stalls",
    )
    .addOption(
      new Option(
        "--provider <name>",
        "ec2 or local (default: ec2 with --image, else local)",
      ).choices(["ec2", "local"]),
    )
    .option(
      "--image <ami>",
      "the baked worker image (ec2): an image id, or latest, the newest baked from this fitsfleet version (`fitsfleet ami list`)",
    )
    .option(
      "--allow-version-mismatch",
      "launch an image baked from another fitsfleet version (refused by default)",
    )
    .option(
      "--instances <n>",
      "instances to launch (local: groups of worker processes)",
      "1",
    )
    .option(
      "--min-instances <n>",
      "accept a launch with at least this many (default: all); fewer, and everything launched is ended",
    )
    .option(
      "--instance-types <list>",
      "instance types to spread over, comma-separated",
      DEFAULT_INSTANCE_TYPES,
    )
    .option(
      "--subnets <list>",
      "subnet ids, comma-separated, ideally in several zones (ec2)",
    )
    .option(
      "--on-demand-base <n>",
      "instances launched on demand before the spot ones",
      "0",
    )
    .option(
      "--on-demand-price <usd>",
      "USD per hour of one on-demand instance (needed with --on-demand-base: the EC2 API has no price list)",
    )
    .option(
      "--instance-profile <name>",
      "the workers' instance profile (see `fitsfleet infra iam-policy`)",
      DEFAULT_INSTANCE_PROFILE,
    )
    .option(
      "--security-groups <list>",
      "security group ids, comma-separated (default: the subnet's VPC default)",
    )
    .option("--root-volume-gib <n>", "root volume size (default: the image's)")
    .option(
      "--kms-key-id <id>",
      "KMS key for the encrypted root volume (default: the account's EBS key)",
    )
    .option(
      "--workers-per-instance <n>",
      "ingest workers per instance (default: one per vCPU of the smallest type; local: 1)",
    )
    .option(
      "--preview-workers-per-instance <n>",
      "preview workers per instance (the ingest workers make previews too)",
      "0",
    )
    .option(...QUEUE_OPTION)
    .option(
      "--no-fast-rebuild",
      "ingest without --fast-rebuild (for a database that is not empty)",
    )
    .option("--no-make-previews", "ingest workers make no previews")
    .option(
      "--max-hourly-cost <usd>",
      "refuse a fleet that costs more per hour, and cap the spot request at it",
    )
    .option(
      "--max-hours <hours>",
      "the fleet ends after this long, whatever else happens",
      "48",
    )
    .option(
      "--budget <usd>",
      "end the fleet once it has cost this much (default: max hourly cost x max hours)",
    )
    .option(
      "--name <name>",
      "the fleet's name, tagged on every resource (default: ff-DATE-RANDOM)",
    )
    .option(
      "--run <id>",
      "the run id tagged on every resource (default: the fleet's name)",
    )
    .option(
      "--secrets-prefix <path>",
      "SSM path of the secrets the workers read (`fitsfleet fleet secrets put`)",
      DEFAULT_SSM_PREFIX,
    )
    .option(...REGION_OPTION)
    .option(
      "--dry-run",
      "print the exact API requests and the estimated hourly cost; create nothing",
    )
    .option(
      "--watch",
      "stay, and end the fleet when the queue drains or a cap is reached (always on with --provider local)",
    );
  return withGuardOptions(launchFleet, "with --watch: ").action(
    async (flags: LaunchFleetFlags, command: Command) => {
      const context = await runContext(command);
      const { config, output, logger } = context;
      const parsed = parseFlags(
        flags,
        config.storage === undefined ? undefined : storageLocation(config),
        config.previews,
        config.logLevel === "info" ? undefined : config.logLevel,
        config.s3Endpoint,
      );
      if (parsed.ec2 !== undefined) {
        const { resolveImageIn } = await import("../../../ami/images.js");
        const { packageVersion } = await import("../../../lib/paths.js");
        parsed.ec2.image = await resolveImageIn(
          parsed.ec2.region,
          parsed.ec2.image,
          {
            version: packageVersion(),
            allowVersionMismatch: flags.allowVersionMismatch === true,
            logger,
          },
        );
      }
      if (flags.dryRun === true) {
        output.result(await dryRun(parsed), describeDryRun);
        return;
      }
      const databaseUrl = context.databaseUrl();
      const infra = await import("../../../infra/fleet.js");
      let provider;
      let closeClient = () => undefined as void;
      if (parsed.provider === "ec2") {
        const { Ec2FleetProvider } = await import("../../../infra/ec2.js");
        const { ec2Client } = await import("../../../infra/aws.js");
        const ec2 = await ec2Client(parsed.ec2!.region);
        closeClient = () => ec2.destroy();
        provider = new Ec2FleetProvider(ec2, parsed.ec2);
      } else {
        const { LocalFleetProvider } = await import("../../../infra/local.js");
        provider = new LocalFleetProvider({
          databaseUrl,
          redisUrl: context.redisUrl(),
          s3Endpoint: config.s3Endpoint,
        });
      }
      // A signal during the launch is answered once the launch returns: ending what was made.
      let interrupted = false;
      const stopGuard = new AbortController();
      const unregister = onInterrupt(() => {
        interrupted = true;
        stopGuard.abort();
      });
      try {
        const { launch, fleet } = await infra.launchFleet(
          provider,
          parsed.spec,
          {
            databaseUrl,
            region: parsed.ec2?.region,
            budget: parsed.budget,
          },
        );
        /** Ends the fleet, and says so as an interruption. */
        const endInterrupted = async (reason: string, message: string) => {
          await infra.terminateFleet(provider, fleet.name, {
            databaseUrl,
            reason,
          });
          return new FitsfleetError(
            "interrupted",
            EXIT.interrupted,
            `interrupted: ${message}`,
          );
        };
        if (interrupted) {
          throw await endInterrupted(
            "interrupted during the launch",
            `fleet ${fleet.name} was ended`,
          );
        }
        if (flags.watch !== true && parsed.provider !== "local") {
          output.result({ fleet, launch }, describeLaunch);
          return;
        }
        // The summary's head now; the whole of it once the guard ends the fleet.
        output.note(
          describeLaunch({ fleet, launch }).split("\n").slice(0, 2).join("\n"),
        );
        const guard = await guardWithProgress(provider, fleet.name, output, {
          databaseUrl,
          intervalMs: parsed.intervalMs,
          stallMs: parsed.stallMs,
          signal: stopGuard.signal,
          logger,
        });
        if (guard === undefined) {
          // Local workers belong to this process, and end with it.
          throw parsed.provider === "local"
            ? await endInterrupted(
                "interrupted",
                `the local workers of fleet ${fleet.name} handed back their work and stopped`,
              )
            : unguardedError(fleet.name, fleet.deadline);
        }
        output.result({ fleet: guard.fleet, launch, guard }, describeLaunch);
        const failure = guardOutcomeError(guard);
        if (failure !== undefined) {
          throw failure;
        }
      } finally {
        unregister();
        closeClient();
      }
    },
  );
}

async function dryRun(parsed: Parsed): Promise<DryRunResult> {
  if (parsed.provider === "local") {
    return {
      dryRun: true,
      provider: "local",
      fleet: parsed.spec.name,
      requests: [],
      workersPerInstance: {
        ingest: parsed.spec.ingestWorkers ?? 1,
        preview: parsed.spec.previewWorkers,
      },
    };
  }
  const { planEc2Fleet } = await import("../../../infra/ec2.js");
  const { ec2Client } = await import("../../../infra/aws.js");
  const ec2 = await ec2Client(parsed.ec2!.region);
  try {
    const plan = await planEc2Fleet(ec2, parsed.spec, parsed.ec2!);
    return {
      dryRun: true,
      provider: "ec2",
      fleet: parsed.spec.name,
      requests: [
        { action: "CreateLaunchTemplate", input: plan.launchTemplate },
        { action: "CreateFleet", input: plan.fleet },
      ],
      userData: plan.userData,
      estimate: { ...plan.estimate, prices: plan.prices },
      workersPerInstance: {
        ingest: plan.ingestWorkers,
        preview: parsed.spec.previewWorkers,
      },
    };
  } finally {
    ec2.destroy();
  }
}
