/**
 * `fitsfleet ami prune --keep N`: deregisters all but the newest N baked
 * images, deletes their snapshots and their bundles. Shows what it would
 * do; acts with --yes.
 */
import { Command } from "commander";

import type { PrunePlan, PruneReport } from "../../../ami/images.js";
import { packageVersion } from "../../../lib/paths.js";
import { wholeNumber } from "../../parse.js";
import { runContext } from "../../run.js";
import { REGION_OPTION } from "../fleet/common.js";
import { imagesTable } from "./common.js";

interface PruneFlags {
  keep: string;
  yes?: boolean;
  region?: string;
}

interface PruneResult extends PrunePlan {
  done: boolean;
  report?: PruneReport;
}

function describePrune(r: PruneResult): string {
  const current = packageVersion();
  const inUse = r.inUse.map(
    (u) =>
      `kept ${u.image.id} (${u.image.name}): in use by ${u.usedBy.join(", ")}`,
  );
  if (r.prune.length === 0) {
    return [`nothing to prune: ${r.keep.length} image(s) kept`, ...inUse].join(
      "\n",
    );
  }
  const lines = [
    `${r.done ? "pruned" : "would prune"} ${r.prune.length} image(s):`,
    imagesTable(r.prune, current),
    `kept ${r.keep.length}: ${r.keep.map((i) => i.id).join(", ") || "none"}`,
    ...inUse,
  ];
  if (r.report !== undefined) {
    lines.push(
      `deregistered ${r.report.images.length} image(s), deleted ${r.report.snapshots.length} snapshot(s) and ${r.report.bundles.length} bundle(s)`,
    );
  } else {
    lines.push("run it again with --yes to do it");
  }
  return lines.join("\n");
}

export function pruneCommand(): Command {
  return new Command("prune")
    .description(
      "deregister all but the newest --keep available baked images and delete their snapshots and bundles; an image still being baked, or used by an instance that has not ended or by a live fleet's launch template, is kept and shown with what uses it; shows what it would do, and does it with --yes",
    )
    .requiredOption("--keep <n>", "how many of the newest images to keep")
    .option("--yes", "do it (default: only show what would be pruned)")
    .option(...REGION_OPTION)
    .action(async (flags: PruneFlags, command: Command) => {
      const { config, output } = await runContext(command);
      const keep = wholeNumber("--keep", flags.keep, { min: 0, max: 10_000 });
      const region = (await import("../../../infra/aws.js")).awsRegion(
        flags.region,
      );
      const [images, { amiClients }] = await Promise.all([
        import("../../../ami/images.js"),
        import("./common.js"),
      ]);
      const clients = await amiClients(region, config.s3Endpoint);
      try {
        const all = await images.listBakedImages(clients.ec2);
        const plan = images.planPrune(
          all,
          keep,
          await images.imagesInUse(
            clients.ec2,
            all.map((i) => i.id),
          ),
        );
        const result: PruneResult = { ...plan, done: false };
        if (flags.yes === true && plan.prune.length > 0) {
          result.report = await images.pruneImages(
            clients.ec2,
            clients.s3,
            plan.prune,
          );
          result.done = true;
        }
        output.result(result, describePrune);
      } finally {
        clients.destroy();
      }
    });
}
