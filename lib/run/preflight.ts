/**
 * `rebuild run`'s preflight: every check a run depends on, all run and all
 * reported, nothing written. `--dry-run` is exactly this; a real run runs
 * the cheap ones before it writes anything.
 */
import { connect } from "../db/connect.js";
import { loadMigrations, runMigrations } from "../db/migrate.js";
import { coerceError, EXIT, type ExitCode, FitsfleetError } from "../errors.js";
import type { Logger } from "../logger.js";
import { openRedis } from "../rebuild/queue.js";
import { redactUrl } from "../redact.js";
import { openStorage } from "../storage/index.js";
import { withUpgradeSource } from "../upgrade/steps.js";
import { runLockHolder } from "./lock.js";
import type { RunSettings } from "./settings.js";
import { upgradeSelection } from "./step-database.js";
import { fleetSpecFor } from "./step-spec.js";

export interface PreflightCheck {
  check: string;
  ok: boolean;
  detail: string;
  exitCode?: ExitCode;
}

export interface PreflightReport {
  ok: boolean;
  checks: PreflightCheck[];
}

async function probe(
  checks: PreflightCheck[],
  check: string,
  fn: () => Promise<string>,
): Promise<void> {
  try {
    checks.push({ check, ok: true, detail: await fn() });
  } catch (error) {
    const e = coerceError(error);
    checks.push({
      check,
      ok: false,
      detail: `${e.message}${e.suggestion === undefined ? "" : ` (${e.suggestion})`}`,
      exitCode: e.exitCode,
    });
  }
}

export interface PreflightOptions {
  databaseUrl: string;
  redisUrl: string;
  logger: Logger;
  /** Also open the dump and plan the EC2 fleet (the slow checks --dry-run adds). */
  thorough: boolean;
  redisTimeoutMs?: number;
  /** The run doing this preflight (its own lock is no obstacle). */
  runId?: string;
}

export async function preflight(
  settings: RunSettings,
  options: PreflightOptions,
): Promise<PreflightReport> {
  const checks: PreflightCheck[] = [];
  await probe(checks, "database", async () => {
    const client = await connect(options.databaseUrl, {
      applicationName: "fitsfleet rebuild run (preflight)",
    });
    try {
      const report = await runMigrations(client, loadMigrations(), {
        dryRun: true,
      });
      const holder = await runLockHolder(client);
      if (holder !== undefined && holder.runId !== options.runId) {
        throw new FitsfleetError(
          "precondition",
          EXIT.precondition,
          `run ${holder.runId ?? "(unnamed)"} is acting on this database`,
          { suggestion: "only one run may act on a database at a time" },
        );
      }
      return `${redactUrl(options.databaseUrl)} reachable; ${report.applied.length} migration(s) to apply`;
    } finally {
      await client.end().catch(() => undefined);
    }
  });
  await probe(checks, "redis", async () => {
    const redis = await openRedis(options.redisUrl, {
      timeoutMs: options.redisTimeoutMs ?? 5000,
    });
    redis.disconnect();
    return `${redactUrl(options.redisUrl)} reachable`;
  });
  await probe(checks, "storage", async () => {
    const storage = openStorage(settings.storage, {
      s3Endpoint: settings.s3Endpoint,
    });
    try {
      for await (const page of storage.list({ recursive: true })) {
        return `${storage.description} readable (${page.length} entries in its first page)`;
      }
      return `${storage.description} readable, and empty`;
    } finally {
      await storage.close();
    }
  });
  if (settings.from !== undefined && options.thorough) {
    await probe(checks, "dump", () =>
      withUpgradeSource(
        upgradeSelection(settings),
        { s3Endpoint: settings.s3Endpoint, logger: options.logger },
        (opened) =>
          Promise.resolve(
            `${settings.from} readable${opened.manifestPath === undefined ? "" : `, manifest ${opened.manifestPath} verified`}`,
          ),
      ),
    );
  }
  if (settings.provider === "ec2" && options.thorough) {
    await probe(checks, "ec2", async () => {
      const [{ ec2Client }, { planEc2Fleet }] = await Promise.all([
        import("../../infra/aws.js"),
        import("../../infra/ec2.js"),
      ]);
      const ec2 = await ec2Client(settings.ec2!.region);
      try {
        const plan = await planEc2Fleet(
          ec2,
          fleetSpecFor("dry-run", "preflight", settings),
          settings.ec2!,
        );
        return `image ${settings.ec2!.image} available; ${plan.estimate.spotInstances} spot instance(s) at $${plan.estimate.hourlyLow.toFixed(2)} to $${plan.estimate.hourlyHigh.toFixed(2)} an hour`;
      } finally {
        ec2.destroy();
      }
    });
  }
  return { ok: checks.every((c) => c.ok), checks };
}

/** A failed preflight as one error: every failed check, with the first one's exit code. */
export function preflightError(report: PreflightReport): FitsfleetError {
  const failed = report.checks.filter((c) => !c.ok);
  return new FitsfleetError(
    "run-preflight",
    failed[0]?.exitCode ?? EXIT.precondition,
    `preflight failed (${failed.length} of ${report.checks.length} checks):\n${failed.map((c) => `  - ${c.check}: ${c.detail}`).join("\n")}`,
    {
      suggestion: "fix these, then run again; nothing was written",
      context: { checks: report.checks },
    },
  );
}
