/**
 * `fitsfleet ami sweep`: finds what bakes that were killed left behind
 * (builders, half-made images, their snapshots, bundles), leaves running
 * bakes alone, and ends the rest with --yes (ami/sweep.ts).
 */
import { Command } from "commander";

import type { BakeLeftovers, SweepPlan } from "../../../ami/sweep.js";
import { table } from "../../output.js";
import { runContext } from "../../run.js";
import { REGION_OPTION } from "../fleet/common.js";

interface SweepFlags {
  bundleLocation: string;
  yes?: boolean;
  region?: string;
}

interface SweepResult extends SweepPlan {
  region: string;
  acted: boolean;
  swept: string[];
}

function describeSweep(r: SweepResult): string {
  const shown = r.bakes.filter(
    (b) =>
      b.state === "running" ||
      b.builders.length +
        b.images.length +
        b.snapshots.length +
        b.objects.length >
        0,
  );
  if (shown.length === 0) {
    return `${r.region}, ${r.bundleLocation}: no bake left anything behind`;
  }
  const gone = shown.filter((b) => b.state === "gone");
  const list = (items: string[]) =>
    items.length === 0 ? "-" : items.join(" ");
  return [
    table(
      ["bake", "state", "why", "builders", "images", "snapshots", "objects"],
      shown.map((b: BakeLeftovers) => [
        b.build,
        b.state === "running"
          ? "running: left alone"
          : r.swept.includes(b.build)
            ? "gone: ended"
            : "gone",
        b.why,
        list(b.builders),
        list(b.images),
        list(b.snapshots),
        String(b.objects.length),
      ]),
    ),
    gone.length === 0
      ? "nothing to end"
      : r.acted
        ? `ended what ${r.swept.length} bake(s) left`
        : `run it again with --yes to end what ${gone.length} bake(s) left`,
  ].join("\n");
}

export function sweepCommand(): Command {
  return new Command("sweep")
    .description(
      "find what bakes that were killed left behind (their builder instances, half-made images, snapshots, and bundles under --bundle-location), judged by each bake's heartbeat in its bundle folder: a bake still running is left alone; end the rest with --yes",
    )
    .requiredOption(
      "--bundle-location <s3-url>",
      "the --bundle-location the bakes used, s3://bucket/prefix",
    )
    .option("--yes", "end what was found")
    .option(...REGION_OPTION)
    .action(async (flags: SweepFlags, command: Command) => {
      const { config, output } = await runContext(command);
      const region = (await import("../../../infra/aws.js")).awsRegion(
        flags.region,
      );
      const [sweep, { parseS3Url }, { amiClients }] = await Promise.all([
        import("../../../ami/sweep.js"),
        import("../../../ami/images.js"),
        import("./common.js"),
      ]);
      parseS3Url(flags.bundleLocation);
      const clients = await amiClients(region, config.s3Endpoint);
      try {
        const plan = await sweep.planSweep(
          clients.ec2,
          clients.s3,
          flags.bundleLocation,
        );
        const result: SweepResult = {
          ...plan,
          region,
          acted: false,
          swept: [],
        };
        if (flags.yes === true) {
          const swept = await sweep.sweepBakes(clients.ec2, clients.s3, plan);
          result.swept = swept.map((b) => b.build);
          result.acted = swept.length > 0;
        }
        output.result(result, describeSweep);
      } finally {
        clients.destroy();
      }
    });
}
