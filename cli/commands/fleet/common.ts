/**
 * What the fleet commands share: the region and the EC2 client, the
 * provider a recorded fleet runs on, and how a fleet is shown.
 */
import type { EC2Client } from "@aws-sdk/client-ec2";

import type { FleetStatus } from "../../../infra/fleet.js";
import type { FleetRecord } from "../../../infra/fleet-store.js";
import type {
  FleetProvider,
  TerminateReport,
} from "../../../infra/provider.js";
import { ConfigError, UsageError } from "../../../lib/errors.js";
import { formatDuration, formatRate } from "../../../lib/progress.js";
import { table } from "../../output.js";

export const REGION_OPTION = [
  "--region <name>",
  "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION)",
] as const;

export const FLEET_OPTION = [
  "--fleet <name>",
  "the fleet's name, as `rebuild launch-fleet` printed it",
] as const;

export function regionOf(flag: string | undefined): string {
  const region =
    flag ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (region === undefined || region === "") {
    throw new ConfigError([
      "region: not set; give --region, or set AWS_REGION",
    ]);
  }
  return region;
}

/**
 * An EC2 client on the default credential chain (AWS_ENDPOINT_URL_EC2 is
 * honoured by the SDK). Imported when needed: the SDK is slow to load, and
 * `rebuild enqueue` shares this module's command group.
 */
export async function ec2Client(region: string): Promise<EC2Client> {
  const { EC2Client } = await import("@aws-sdk/client-ec2");
  return new EC2Client({ region });
}

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
  const ec2 = await ec2Client(
    regionOf(regionFlag ?? fleet.region ?? undefined),
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
