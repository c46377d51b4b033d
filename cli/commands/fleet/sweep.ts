import { Command } from "commander";

import type { TaggedResources } from "../../../infra/ec2.js";
import { table } from "../../output.js";
import { runContext } from "../../run.js";
import { REGION_OPTION } from "./common.js";

interface SweepFlags {
  region?: string;
  yes?: boolean;
}

interface SweepResult {
  region: string;
  acted: boolean;
  orphans: {
    fleet: string;
    instances: string[];
    fleets: string[];
    templates: string[];
  }[];
  live: string[];
}

function describeSweep(r: SweepResult): string {
  if (r.orphans.length === 0) {
    return `${r.region}: no fitsfleet resource outside a live fleet${r.live.length > 0 ? ` (live: ${r.live.join(", ")})` : ""}`;
  }
  return [
    r.acted
      ? `${r.region}: ended what no live fleet answers for:`
      : `${r.region}: these belong to no live fleet (run again with --yes to end them):`,
    table(
      ["fleet", "instances", "EC2 fleets", "launch templates"],
      r.orphans.map((o) => [
        o.fleet === "" ? "(no name)" : o.fleet,
        o.instances.join(" ") || "-",
        o.fleets.join(" ") || "-",
        o.templates.join(" ") || "-",
      ]),
    ),
  ].join("\n");
}

export function sweepCommand(): Command {
  return new Command("sweep")
    .description(
      "find every fitsfleet-tagged instance, EC2 fleet and launch template that belongs to no live fleet of this database (ended, failed, past its deadline, or left by a launcher that died) and show it; end them with --yes",
    )
    .option(...REGION_OPTION)
    .option("--yes", "end what was found")
    .action(async (flags: SweepFlags, command: Command) => {
      const { output, databaseUrl } = await runContext(command);
      const { awsRegion, ec2Client } = await import("../../../infra/aws.js");
      const region = awsRegion(flags.region);
      const url = databaseUrl();
      const ec2m = await import("../../../infra/ec2.js");
      const store = await import("../../../infra/fleet-store.js");
      const { withClient } = await import("../../../lib/db/connect.js");
      const ec2 = await ec2Client(region);
      try {
        const found = await ec2m.findTagged(ec2);
        const names = [...ec2m.fleetNames(found)];
        const live = await withClient(url, (c) =>
          store.liveFleetNames(c, names),
        );
        const dead = new Set(names.filter((n) => !live.has(n)));
        const orphans: TaggedResources = ec2m.onlyFleets(found, dead);
        const result: SweepResult = {
          region,
          acted: false,
          live: [...live],
          orphans: [...dead].sort().map((fleet) => {
            const mine = ec2m.onlyFleets(orphans, new Set([fleet]));
            return {
              fleet,
              instances: mine.instances.map((i) => i.InstanceId ?? ""),
              fleets: mine.fleets.map((f) => f.id),
              templates: mine.templates.map((t) => t.name),
            };
          }),
        };
        if (flags.yes === true && dead.size > 0) {
          await ec2m.terminateTagged(ec2, undefined, { found: orphans });
          await withClient(url, async (c) => {
            for (const name of dead) {
              await store.endMembers(c, name);
              await store.recordSpend(c, name);
              await store.setFleetState(
                c,
                name,
                "ended",
                "swept: no live launcher or guard answered for it",
              );
            }
          });
          result.acted = true;
        }
        output.result(result, describeSweep);
      } finally {
        ec2.destroy();
      }
    });
}
