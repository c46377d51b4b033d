import { Command } from "commander";

import type { FleetStatus } from "../../../infra/fleet.js";
import type { FleetRecord } from "../../../infra/fleet-store.js";
import { UsageError } from "../../../lib/errors.js";
import { sleep } from "../../../lib/exec.js";
import { table } from "../../output.js";
import { duration } from "../../parse.js";
import { runContext } from "../../run.js";
import {
  describeFleetRecord,
  describeFleetStatus,
  FLEET_OPTION,
  money,
  providerFor,
  REGION_OPTION,
} from "./common.js";

interface StatusFlags {
  fleet?: string;
  all?: boolean;
  region?: string;
  window: string;
  watch?: string | boolean;
}

function describeFleets(fleets: FleetRecord[]): string {
  if (fleets.length === 0) {
    return "no live fleet recorded in this database (--all shows ended ones)";
  }
  return table(
    [
      "fleet",
      "run",
      "provider",
      "state",
      "instances",
      "launched",
      "deadline",
      "spend",
      "now/h",
      "ended because",
    ],
    fleets.map((f) => [
      f.name,
      f.run,
      f.provider,
      f.state,
      String(f.instances),
      f.launchedAt.toISOString(),
      f.deadline.toISOString(),
      money(f.spend),
      money(f.hourlyRate),
      f.endReason ?? "",
    ]),
  );
}

export function statusCommand(): Command {
  return new Command("status")
    .description(
      "fleets recorded in the database; with --fleet, one fleet's instances by state, type and zone, their age, the workers the ledger has seen on each, files/s per instance, and spend so far",
    )
    .option(...FLEET_OPTION)
    .option("--all", "list ended fleets too")
    .option(...REGION_OPTION)
    .option("--window <minutes>", "minutes the rates are measured over", "5")
    .option(
      "--watch [interval]",
      "repeat (default every 10s) until interrupted",
    )
    .action(async (flags: StatusFlags, command: Command) => {
      const { output, databaseUrl } = await runContext(command);
      const url = databaseUrl();
      const store = await import("../../../infra/fleet-store.js");
      const { withClient } = await import("../../../lib/db/connect.js");
      const every =
        typeof flags.watch === "string"
          ? duration("--watch", flags.watch)
          : flags.watch === true
            ? 10_000
            : 0;
      const window = Math.max(1, Number(flags.window) || 5);
      for (;;) {
        if (flags.fleet === undefined) {
          const fleets = await withClient(url, (c) =>
            store.listFleets(c, { liveOnly: flags.all !== true }),
          );
          if (every === 0) {
            output.result({ fleets }, (r) => describeFleets(r.fleets));
            return;
          }
          output.snapshot({ fleets }, (r) => describeFleets(r.fleets));
        } else {
          const name = flags.fleet;
          const record = await withClient(url, (c) => store.getFleet(c, name));
          if (record === undefined) {
            throw new UsageError(
              `--fleet ${name}: no fleet of that name in this database`,
              {
                suggestion: "see `fitsfleet fleet status --all`",
              },
            );
          }
          if (record.provider === "local") {
            // Its workers belong to the process that launched it: the record is what others can see.
            output.result({ fleet: record }, (r) =>
              describeFleetRecord(r.fleet),
            );
            return;
          }
          const { provider, close } = await providerFor(record, flags.region);
          let status: FleetStatus;
          try {
            const { fleetStatus } = await import("../../../infra/fleet.js");
            status = await fleetStatus(provider, name, url, window);
          } finally {
            close();
          }
          if (every === 0) {
            output.result(status, describeFleetStatus);
            return;
          }
          output.snapshot(status, describeFleetStatus);
        }
        await sleep(every);
      }
    });
}
