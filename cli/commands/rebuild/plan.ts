/** `rebuild plan`: what a rebuild of the storage will take, before it starts (lib/run/plan.ts). */
import { Command } from "commander";

import { UsageError } from "../../../lib/errors.js";
import {
  formatCount,
  formatDuration,
  formatMegabytes,
} from "../../../lib/progress.js";
import type { RebuildPlan, Shape } from "../../../lib/run/plan.js";
import { table } from "../../output.js";
import { duration, wholeNumber } from "../../parse.js";
import { runContext } from "../../run.js";
import { REGION_OPTION } from "../fleet/common.js";
import { storageLocation } from "./common.js";
import { DEFAULT_INSTANCE_TYPES } from "./launch-fleet.js";

interface PlanFlags {
  provider: string;
  workers?: string;
  instances: string;
  instanceTypes: string;
  region?: string;
  deadline?: string;
  budget?: string;
  sampleFiles: string;
  sampleFolders: string;
  measure?: boolean;
  priceDays: string;
  databaseRate: string;
}

function counts(flag: string, value: string): number[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => wholeNumber(flag, s, { max: 100_000 }));
}

function shapeName(s: Shape): string {
  return s.provider === "local"
    ? `${s.instances} local worker(s)`
    : `${s.instances} x ${s.instanceType} (${s.workersPerInstance} workers each)`;
}

export function describePlan(p: RebuildPlan): string {
  const c = p.count;
  const lines = [
    `storage ${c.storage}: ${formatCount(c.files)} files, ${formatMegabytes(c.bytes)}${
      c.method === "exact"
        ? " (listed in full)"
        : ` (estimated from ${c.foldersSampled} of ${c.folders} folders listed in full: ±${formatCount(c.filesError)} files, ±${formatMegabytes(c.bytesError)} at 95%)`
    }`,
    p.cost.source === "ledger"
      ? `cost: ${(p.cost.secondsPerByte * 1e6).toFixed(3)} worker-s per MB, from run ${p.cost.run}'s ledger (${formatCount(p.cost.files)} files)`
      : `cost: ${(p.cost.secondsPerByte * 1e6).toFixed(3)} worker-s per MB, measured on ${p.cost.files} sampled file(s) (read, checksums, headers, rows), plus ${(p.cost.secondsPerFile * 1000).toFixed(1)} ms per file for the database write; previews not counted`,
    table(
      ["shape", "time", "$ (mean)", "$ (high)", "bound by"],
      p.shapes.map((s) => [
        shapeName(s),
        formatDuration(s.hours * 3600),
        s.dollars.toFixed(2),
        s.dollarsHigh.toFixed(2),
        s.databaseBound ? "database" : "workers",
      ]),
    ),
    p.recommended === null
      ? `no recommendation: ${p.reason}`
      : `recommended: ${shapeName(p.recommended)}, ${formatDuration(p.recommended.hours * 3600)}, $${p.recommended.dollars.toFixed(2)} (${p.reason})`,
  ];
  return lines.join("\n");
}

export function planCommand(): Command {
  return new Command("plan")
    .description(
      "what a rebuild of the storage (--storage) will take before it starts: files and bytes (an S3 store with many folders sampled, with the error), the ingest's cost per byte (measured on a sample of the files, or from the last run's ledger), wall time and money for fleet shapes from the spot price history (or local workers), and the shape for --deadline or --budget; writes nothing",
    )
    .option("--provider <name>", "local or ec2", "local")
    .option(
      "--workers <list>",
      "local: worker counts to consider, comma-separated (default 1 to the cores)",
    )
    .option(
      "--instances <list>",
      "ec2: instance counts to consider, comma-separated",
      "1,2,5,10,20,50,100,200,500",
    )
    .option(
      "--instance-types <list>",
      "ec2: instance types, comma-separated",
      DEFAULT_INSTANCE_TYPES,
    )
    .option(...REGION_OPTION)
    .option(
      "--deadline <duration>",
      "the cheapest shape done within this (e.g. 6h)",
    )
    .option("--budget <usd>", "the fastest shape costing at most this")
    .option("--sample-files <n>", "files to measure the ingest on", "20")
    .option(
      "--sample-folders <n>",
      "S3: folders listed in full when there are more",
      "50",
    )
    .option(
      "--measure",
      "measure on a sample even when a run's ledger has rates",
    )
    .option("--price-days <n>", "days of spot price history to average", "7")
    .option(
      "--database-rate <files/s>",
      "the central database's ceiling (docs/BENCHMARKS.md)",
      "6000",
    )
    .action(async (flags: PlanFlags, command: Command) => {
      const { config, output, databaseUrl, redisUrl } =
        await runContext(command);
      if (flags.provider !== "local" && flags.provider !== "ec2") {
        throw new UsageError(`--provider ${flags.provider}: local or ec2`);
      }
      const budget =
        flags.budget === undefined ? undefined : Number(flags.budget);
      if (budget !== undefined && !(budget > 0)) {
        throw new UsageError(
          `--budget ${flags.budget}: US dollars, more than 0`,
        );
      }
      const rate = Number(flags.databaseRate);
      if (!(rate > 0)) {
        throw new UsageError(
          `--database-rate ${flags.databaseRate}: files per second, more than 0`,
        );
      }
      let url: string | undefined;
      try {
        url = databaseUrl();
      } catch {
        // No database configured: the plan measures a sample instead.
      }
      let queueUrl: string | undefined;
      try {
        queueUrl = redisUrl();
      } catch {
        // No Redis configured: the start-up probe's workers skip it.
      }
      const { planRebuild } = await import("../../../lib/run/plan.js");
      let ec2;
      if (flags.provider === "ec2") {
        const { awsRegion, ec2Client } = await import("../../../infra/aws.js");
        ec2 = await ec2Client(awsRegion(flags.region));
      }
      try {
        const plan = await planRebuild({
          storage: storageLocation(config),
          s3Endpoint: config.s3Endpoint,
          databaseUrl: url,
          redisUrl: flags.provider === "local" ? queueUrl : undefined,
          measure: flags.measure,
          sampleFiles: wholeNumber("--sample-files", flags.sampleFiles, {
            max: 10_000,
          }),
          sampleFolders: wholeNumber("--sample-folders", flags.sampleFolders, {
            max: 100_000,
          }),
          provider: flags.provider,
          localWorkers:
            flags.workers === undefined
              ? undefined
              : counts("--workers", flags.workers),
          instanceCounts: counts("--instances", flags.instances),
          instanceTypes: flags.instanceTypes
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== ""),
          ec2,
          priceDays: wholeNumber("--price-days", flags.priceDays, { max: 90 }),
          deadlineHours:
            flags.deadline === undefined
              ? undefined
              : duration("--deadline", flags.deadline, 60_000) / 3_600_000,
          budget,
          databaseFilesPerSecond: rate,
        });
        output.result(plan, describePlan);
      } finally {
        ec2?.destroy();
      }
    });
}
