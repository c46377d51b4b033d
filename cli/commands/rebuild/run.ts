/**
 * `rebuild run`: the whole rebuild as one resumable pipeline
 * (lib/run/pipeline.ts). The flags become the run's settings, recorded in
 * the database; `--resume RUN` takes them from there.
 */
import { Command } from "commander";

import { DEFAULT_SSM_PREFIX } from "../../../infra/iam-policy.js";
import { UsageError } from "../../../lib/errors.js";
import type { RunReport } from "../../../lib/run/pipeline.js";
import type { PreflightReport } from "../../../lib/run/preflight.js";
import {
  DEFAULT_RUN_SETTINGS,
  type RunSettings,
} from "../../../lib/run/settings.js";
import { duration, wholeNumber } from "../../parse.js";
import { runContext } from "../../run.js";
import { onInterrupt } from "../../signals.js";
import { REGION_OPTION } from "../fleet/common.js";
import { QUEUE_OPTION, storageLocation } from "./common.js";
import {
  DEFAULT_INSTANCE_PROFILE,
  DEFAULT_INSTANCE_TYPES,
} from "./launch-fleet.js";
import { describeRunReport } from "./runs.js";

interface RunFlags {
  resume?: string;
  standby?: string;
  snapshotEvery: string;
  snapshotMaxAge?: string;
  dryRun?: boolean;
  provider: string;
  instances: string;
  workersPerInstance?: string;
  previewWorkersPerInstance: string;
  queue: string;
  from?: string;
  preset: string[];
  table: string[];
  excludeTable: string[];
  mapping?: string;
  manifest?: string;
  truncateTarget?: boolean;
  fastRebuild: boolean;
  makePreviews?: boolean;
  batchSize?: string;
  maxHours: string;
  budget?: string;
  maxHourlyCost?: string;
  stallAfter: string;
  interval: string;
  calcache: boolean;
  verifySample: string;
  image?: string;
  subnets?: string;
  instanceTypes: string;
  instanceProfile: string;
  secretsPrefix: string;
  region?: string;
}

const collect = (value: string, previous: string[] = []) => [
  ...previous,
  value,
];

function usd(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${flag} ${value}: US dollars, more than 0`);
  }
  return n;
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** The run's settings from its flags; every problem is a UsageError naming the flag. */
export async function runSettingsFromFlags(
  flags: RunFlags,
  storage: string,
  extra: { previews?: string; s3Endpoint?: string },
): Promise<RunSettings> {
  if (flags.provider !== "local" && flags.provider !== "ec2") {
    throw new UsageError(`--provider ${flags.provider}: local or ec2`);
  }
  const maxHours = Number(flags.maxHours);
  if (!Number.isFinite(maxHours) || maxHours <= 0 || maxHours > 24 * 14) {
    throw new UsageError(
      `--max-hours ${flags.maxHours}: hours, more than 0 and at most ${24 * 14}`,
    );
  }
  const settings: RunSettings = {
    ...DEFAULT_RUN_SETTINGS,
    provider: flags.provider,
    storage,
    queue: flags.queue,
    from: flags.from,
    preset: flags.preset,
    table: flags.table,
    excludeTable: flags.excludeTable,
    mapping: flags.mapping,
    manifest: flags.manifest,
    truncateTarget: flags.truncateTarget === true,
    instances: wholeNumber("--instances", flags.instances, { max: 5000 }),
    workersPerInstance:
      flags.workersPerInstance === undefined
        ? undefined
        : wholeNumber("--workers-per-instance", flags.workersPerInstance, {
            max: 256,
          }),
    previewWorkersPerInstance: wholeNumber(
      "--preview-workers-per-instance",
      flags.previewWorkersPerInstance,
      { min: 0, max: 256 },
    ),
    fastRebuild: flags.fastRebuild,
    makePreviews: flags.makePreviews === true,
    previews: extra.previews,
    batchSize:
      flags.batchSize === undefined
        ? undefined
        : wholeNumber("--batch-size", flags.batchSize, { max: 100_000 }),
    maxHours,
    budget: usd("--budget", flags.budget),
    maxHourlyCost: usd("--max-hourly-cost", flags.maxHourlyCost),
    stallMinutes: duration("--stall-after", flags.stallAfter, 10_000) / 60_000,
    intervalMs: duration("--interval", flags.interval, 100),
    calcache: flags.calcache,
    verifySample: wholeNumber("--verify-sample", flags.verifySample, {
      min: 0,
      max: 100_000,
    }),
    s3Endpoint: extra.s3Endpoint,
  };
  if (settings.provider === "ec2") {
    const missing = [
      flags.image === undefined ? "--image" : undefined,
      flags.subnets === undefined ? "--subnets" : undefined,
    ].filter((m) => m !== undefined);
    if (missing.length > 0) {
      throw new UsageError(`--provider ec2 needs ${missing.join(" and ")}`, {
        suggestion: "see `fitsfleet ami list` for images",
      });
    }
    const { awsRegion } = await import("../../../infra/aws.js");
    settings.ec2 = {
      region: awsRegion(flags.region),
      image: flags.image!,
      instanceTypes: list(flags.instanceTypes),
      subnets: list(flags.subnets),
      instanceProfile: flags.instanceProfile,
      secretsPrefix: flags.secretsPrefix,
      s3Endpoint: extra.s3Endpoint,
    };
  }
  return settings;
}

export function describePreflight(r: PreflightReport): string {
  return [
    `dry run, nothing written: ${r.ok ? "every check passed" : "checks failed"}`,
    ...r.checks.map(
      (c) => `  ${c.ok ? "ok  " : "FAIL"} ${c.check}: ${c.detail}`,
    ),
  ].join("\n");
}

export function runCommand(): Command {
  return new Command("run")
    .description(
      "the whole rebuild as one pipeline: db init, migrate-tables (--from), enqueue, launch workers (local or an EC2 fleet), wait for the queue to drain, the calibration cache, terminate, verify, report. Every step's state is kept in the database with the run's events: `--resume RUN` continues a stopped run without repeating a finished step or listing the storage again, and `--standby RUN` on another machine takes over when the active coordinator dies. One run acts on a database at a time. Exit codes: 0 done, 1 a step failed (see `rebuild runs show`), 2 usage, 3 refused (another run is active, a precondition), 4 a service unreachable",
    )
    .option("--resume <run>", "continue this run where it stopped")
    .option(
      "--standby <run>",
      "stand by for this run (on another machine): wait while its coordinator is active; when it dies, recover the run's state (snapshot and later events) and continue the run as --resume would; exit 0 if the run ends meanwhile",
    )
    .option(
      "--snapshot-every <events>",
      "the coordinator snapshots the run's state after this many events",
      "1000",
    )
    .option(
      "--snapshot-max-age <duration>",
      "on taking over, ignore snapshots older than this (replay the events instead)",
    )
    .option(
      "--dry-run",
      "run every preflight check (database, migrations, Redis, storage, the dump, AWS) and write nothing",
    )
    .option("--provider <name>", "where workers run: local or ec2", "local")
    .option(
      "--instances <n>",
      "instances (local: groups of worker processes)",
      "2",
    )
    .option(
      "--workers-per-instance <n>",
      "ingest workers per instance (default: local 1, ec2 one per vCPU)",
    )
    .option(
      "--preview-workers-per-instance <n>",
      "preview workers per instance",
      "0",
    )
    .option(...QUEUE_OPTION)
    .option(
      "--from <source>",
      "carry the preserved tables over from this previous version first (as `upgrade migrate-tables --from`)",
    )
    .option("--preset <names>", "migrate: table presets", collect, [])
    .option("--table <name>", "migrate: add a table (repeatable)", collect, [])
    .option(
      "--exclude-table <name>",
      "migrate: leave a table out (repeatable)",
      collect,
      [],
    )
    .option("--mapping <file>", "migrate: schema mapping file")
    .option("--manifest <file>", "migrate: checksum manifest of the dump")
    .option(
      "--truncate-target",
      "migrate: replace the rows already in the target tables",
    )
    .option("--no-fast-rebuild", "workers commit a file per transaction")
    .option("--make-previews", "ingest workers render each file's preview")
    .option("--batch-size <files>", "files per queued job")
    .option(
      "--max-hours <hours>",
      "the fleet's time cap; the drain fails past it",
      "48",
    )
    .option("--budget <usd>", "the fleet's spend cap (ec2)")
    .option("--max-hourly-cost <usd>", "refuse a fleet dearer than this (ec2)")
    .option(
      "--stall-after <duration>",
      "fail the drain when no file has finished for this long",
      "15m",
    )
    .option(
      "--interval <duration>",
      "between looks at the queue (500ms, 2s, 1m)",
      "2s",
    )
    .option("--no-calcache", "leave the calibration cache out")
    .option(
      "--verify-sample <n>",
      "files the verify step checks in the storage",
      "100",
    )
    .option("--image <ami>", "ec2: the baked worker image")
    .option("--subnets <list>", "ec2: subnet ids, comma-separated")
    .option(
      "--instance-types <list>",
      "ec2: instance types, comma-separated",
      DEFAULT_INSTANCE_TYPES,
    )
    .option(
      "--instance-profile <name>",
      "ec2: the workers' instance profile",
      DEFAULT_INSTANCE_PROFILE,
    )
    .option(
      "--secrets-prefix <path>",
      "ec2: SSM path of the workers' secrets",
      DEFAULT_SSM_PREFIX,
    )
    .option(...REGION_OPTION)
    .action(async (flags: RunFlags, command: Command) => {
      const { config, output, logger, databaseUrl, redisUrl } =
        await runContext(command);
      const pipeline = await import("../../../lib/run/pipeline.js");
      const controller = new AbortController();
      const off = onInterrupt(() => controller.abort());
      const options = {
        coordinator: {
          snapshotEvery: wholeNumber("--snapshot-every", flags.snapshotEvery, {
            max: 10_000_000,
          }),
          snapshotMaxAgeMs:
            flags.snapshotMaxAge === undefined
              ? undefined
              : duration("--snapshot-max-age", flags.snapshotMaxAge, 1000),
        },
        databaseUrl: databaseUrl(),
        redisUrl: redisUrl(),
        logger,
        signal: controller.signal,
        onProgress: (p: {
          step: string;
          message: string;
          fields: Record<string, unknown>;
        }) => output.progress({ step: p.step, ...p.fields }, p.message),
        onStep: (step: string, status: string, detail: string) =>
          output.progress(
            { step, status, detail },
            `${step}: ${status}${detail === "" ? "" : ` (${detail})`}`,
          ),
      };
      try {
        if (flags.standby !== undefined) {
          if (flags.resume !== undefined || flags.dryRun === true) {
            throw new UsageError(
              "--standby excludes --resume and --dry-run (the standby resumes the run itself when it takes over)",
            );
          }
          logger.info("standing by for the run's coordinator lease", {
            run: flags.standby,
          });
          const outcome = await pipeline.standbyPipeline(
            flags.standby,
            options,
          );
          output.result(outcome, (o) =>
            [
              o.endedWhileStandingBy
                ? `run ${o.report.run.id} ended (${o.report.run.state}) while this coordinator stood by; nothing to take over`
                : `took over run ${o.report.run.id}: state recovered from ${o.recovery.source} (${o.recovery.reason}; ${o.recovery.replayed} events replayed)`,
              describeRunReport(o.report),
            ].join("\n"),
          );
          return;
        }
        if (flags.resume !== undefined) {
          if (flags.dryRun === true) {
            throw new UsageError("--resume and --dry-run exclude each other");
          }
          output.result(
            await pipeline.resumePipeline(flags.resume, options),
            describeRunReport,
          );
          return;
        }
        const settings = await runSettingsFromFlags(
          flags,
          storageLocation(config),
          { previews: config.previews, s3Endpoint: config.s3Endpoint },
        );
        if (flags.dryRun === true) {
          const report = await pipeline.dryRun(settings, options);
          output.result(report, describePreflight);
          if (!report.ok) {
            const { preflightError } =
              await import("../../../lib/run/preflight.js");
            throw preflightError(report);
          }
          return;
        }
        const report: RunReport = await pipeline.runPipeline(settings, options);
        output.result(report, describeRunReport);
      } finally {
        off();
      }
    });
}
