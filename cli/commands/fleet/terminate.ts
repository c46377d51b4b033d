import { Command } from "commander";

import type { TerminateReport } from "../../../infra/provider.js";
import { runContext } from "../../run.js";
import {
  describeTerminate,
  FLEET_OPTION,
  providerFor,
  REGION_OPTION,
} from "./common.js";

interface TerminateFlags {
  fleet: string;
  region?: string;
  chunk: string;
}

export function terminateCommand(): Command {
  return new Command("terminate")
    .description(
      "end a fleet: delete its EC2 fleet and launch template and terminate every instance tagged with its name, in chunks; running it again finds nothing and succeeds",
    )
    .requiredOption(...FLEET_OPTION)
    .option(...REGION_OPTION)
    .option("--chunk <n>", "instances per TerminateInstances call", "1000")
    .action(async (flags: TerminateFlags, command: Command) => {
      const { output, databaseUrl } = await runContext(command);
      const { wholeNumber } = await import("../../parse.js");
      const chunk = wholeNumber("--chunk", flags.chunk, { max: 1000 });
      const url = databaseUrl();
      const store = await import("../../../infra/fleet-store.js");
      const { withClient } = await import("../../../lib/db/connect.js");
      const record = await withClient(url, (c) =>
        store.getFleet(c, flags.fleet),
      );
      let report: TerminateReport;
      if (record?.provider === "local") {
        await providerFor(record, flags.region); // explains why not
        return;
      }
      // Tagged resources are ended even when this database never recorded the fleet.
      const { awsRegion, ec2Client } = await import("../../../infra/aws.js");
      const ec2 = await ec2Client(
        awsRegion(flags.region ?? record?.region ?? undefined),
      );
      try {
        const { terminateTagged } = await import("../../../infra/ec2.js");
        report = await terminateTagged(ec2, flags.fleet, { chunk });
      } finally {
        ec2.destroy();
      }
      if (record !== undefined) {
        await withClient(url, async (c) => {
          await store.endMembers(c, flags.fleet);
          await store.recordSpend(c, flags.fleet);
          await store.setFleetState(
            c,
            flags.fleet,
            "ended",
            "terminated by the operator",
          );
        });
      }
      output.result({ fleet: flags.fleet, ...report }, (r) =>
        describeTerminate(r.fleet, r),
      );
    });
}
