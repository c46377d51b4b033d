/**
 * What the fleet commands share: the region flag, the provider a recorded
 * fleet runs on, the guard with its progress lines and its outcome as an
 * exit status, and how a fleet is shown. `rebuild launch-fleet` uses them
 * too, so nothing here loads the AWS SDK or the database driver until a
 * command runs (infra/aws.ts makes the clients).
 */
import type { Command } from "commander";

import type {
  FleetStatus,
  GuardOptions,
  GuardOutcome,
  GuardTick,
} from "../../../infra/fleet.js";
import type { FleetRecord } from "../../../infra/fleet-store.js";
import type {
  FleetProvider,
  TerminateReport,
} from "../../../infra/provider.js";
import { EXIT, FitsfleetError, UsageError } from "../../../lib/errors.js";
import {
  formatCount,
  formatDuration,
  formatRate,
} from "../../../lib/progress.js";
import { type Output, table } from "../../output.js";
import { duration } from "../../parse.js";

export const REGION_OPTION = [
  "--region <name>",
  "AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION)",
] as const;

export const FLEET_OPTION = [
  "--fleet <name>",
  "the fleet's name, as `rebuild launch-fleet` printed it",
] as const;

/**
 * The provider that can reach a recorded fleet from this process. A local
 * fleet's workers belong to the process that launched it; another process
 * can only record its end.
 */
export async function providerFor(
  fleet: FleetRecord,
  regionFlag: string | undefined,
): Promise<{ provider: FleetProvider; close: () => void }> {
  if (fleet.provider === "local") {
    throw new UsageError(
      `fleet ${fleet.name} runs on the local provider: its workers belong to the process that launched it (stop that process, or its workers, with Ctrl-C)`,
    );
  }
  const { awsRegion, ec2Client } = await import("../../../infra/aws.js");
  const ec2 = await ec2Client(
    awsRegion(regionFlag ?? fleet.region ?? undefined),
  );
  const { Ec2FleetProvider } = await import("../../../infra/ec2.js");
  return {
    provider: new Ec2FleetProvider(ec2),
    close: () => ec2.destroy(),
  };
}

export function money(usd: number | null): string {
  return usd === null ? "-" : `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

export function describeFleetRecord(f: FleetRecord): string {
  return [
    `fleet ${f.name} (run ${f.run}, ${f.provider}${f.region === null ? "" : ` ${f.region}`}): ${f.state}${f.endReason === null ? "" : ` — ${f.endReason}`}`,
    `launched ${f.launchedAt.toISOString()}, deadline ${f.deadline.toISOString()}; ${f.instances} instance(s) recorded; spend ${money(f.spend)} of budget ${money(f.budget)}, now ${money(f.hourlyRate)}/h (cap ${money(f.maxHourlyCost)}/h)`,
  ].join("\n");
}

export function describeFleetStatus(s: FleetStatus): string {
  const byState = new Map<string, number>();
  for (const m of s.members) {
    const key =
      `${m.state} ${m.instanceType ?? "local"} ${m.zone ?? ""}`.trim();
    byState.set(key, (byState.get(key) ?? 0) + 1);
  }
  const lines = [describeFleetRecord(s.fleet)];
  if (byState.size > 0) {
    lines.push(
      `instances: ${[...byState].map(([k, n]) => `${n} ${k}`).join(", ")}`,
    );
    lines.push(
      table(
        [
          "instance",
          "state",
          "type",
          "zone",
          "age",
          "workers seen",
          "active files",
          "files/s",
        ],
        s.members.map((m) => [
          m.id,
          m.state,
          m.instanceType ?? "-",
          m.zone ?? "-",
          formatDuration(m.ageSeconds),
          String(m.workersSeen),
          String(m.activeFiles),
          formatRate(m.filesPerSecond),
        ]),
      ),
    );
  }
  const c = s.status.counts;
  lines.push(
    `ledger: ${c.queued} queued, ${c.active} active, ${c.done} done, ${c.failed} failed; ${formatRate(s.status.filesPerSecond)} files/s; ETA ${formatDuration(s.status.etaSeconds)}`,
  );
  return lines.join("\n");
}

export function describeTerminate(name: string, r: TerminateReport): string {
  if (r.instances.length + r.fleets.length + r.templates.length === 0) {
    return `fleet ${name}: nothing left to end`;
  }
  return `fleet ${name}: ended ${r.instances.length} instance(s), deleted ${r.fleets.length} EC2 fleet(s) and ${r.templates.length} launch template(s)`;
}

function describeTick(t: GuardTick): string {
  const c = t.status.counts;
  const running = t.members.filter((m) => m.state === "running").length;
  return `fleet ${t.fleet.name}: ${running}/${t.members.length} running; ${formatCount(c.done + c.failed + c.skipped)}/${formatCount(t.status.total)} files, ${formatCount(c.failed)} failed; ${formatRate(t.status.filesPerSecond)} files/s, ETA ${formatDuration(t.status.etaSeconds)}; spend ${money(t.fleet.spend)}${t.fleet.budget === null ? "" : ` of ${money(t.fleet.budget)}`}`;
}

/** The guard's two clocks, --stall-after and --interval; `note` heads their help ("with --watch: "). */
export function withGuardOptions(command: Command, note = ""): Command {
  return command
    .option(
      "--stall-after <duration>",
      `${note}end the fleet when no file has finished for this long`,
      "15m",
    )
    .option(
      "--interval <duration>",
      `${note}between checks (1500ms, 10s, 1m)`,
      "10s",
    );
}

export function guardTiming(flags: { stallAfter: string; interval: string }): {
  stallMs: number;
  intervalMs: number;
} {
  return {
    stallMs: duration("--stall-after", flags.stallAfter, 10_000),
    intervalMs: duration("--interval", flags.interval, 1000),
  };
}

/**
 * Guards the fleet (infra/fleet.ts) with a progress line a check on stderr
 * (a JSON object with --json); undefined when `signal` stopped the guard
 * before the fleet ended, which leaves the fleet running.
 */
export async function guardWithProgress(
  provider: FleetProvider,
  fleet: string,
  output: Output,
  options: Omit<GuardOptions, "onTick">,
): Promise<GuardOutcome | undefined> {
  const { guardFleet } = await import("../../../infra/fleet.js");
  return guardFleet(provider, fleet, {
    ...options,
    onTick: (tick) =>
      output.progress(
        {
          fleet: tick.fleet.name,
          running: tick.members.filter((m) => m.state === "running").length,
          instances: tick.members.length,
          done: tick.status.counts.done,
          failed: tick.status.counts.failed,
          total: tick.status.total,
          filesPerSecond: tick.status.filesPerSecond,
          etaSeconds: tick.status.etaSeconds,
          spend: tick.fleet.spend,
        },
        describeTick(tick),
      ),
  });
}

/** The end of a guarded fleet as an exit status: drained is success; any other end leaves work undone. */
export function guardOutcomeError(
  outcome: GuardOutcome,
): FitsfleetError | undefined {
  if (outcome.reason === "drained") {
    return undefined;
  }
  return new FitsfleetError(
    `fleet-${outcome.reason}`,
    EXIT.failed,
    `fleet ${outcome.fleet.name} ended before the queue drained: ${outcome.message}`,
    {
      suggestion:
        "the ledger keeps what was done: see `fitsfleet rebuild status`, then launch again (or run `fitsfleet worker ingest --empty`) to finish the rest",
      context: { reason: outcome.reason },
    },
  );
}

/** An interrupted guard of a fleet that keeps running (on EC2) until its deadline. */
export function unguardedError(fleet: string, deadline: Date): FitsfleetError {
  return new FitsfleetError(
    "interrupted",
    EXIT.interrupted,
    `interrupted: fleet ${fleet} keeps running unguarded until its deadline ${deadline.toISOString()}`,
    {
      suggestion: `guard it again with \`fitsfleet fleet watch --fleet ${fleet}\`, or end it with \`fitsfleet fleet terminate --fleet ${fleet}\``,
    },
  );
}
