import { Command } from "commander";

import { EXIT, FitsfleetError, UsageError } from "../../../lib/errors.js";
import { runContext } from "../../run.js";
import { onInterrupt } from "../../signals.js";
import { FLEET_OPTION, money, providerFor, REGION_OPTION } from "./common.js";

interface WatchFlags {
  fleet: string;
  region?: string;
  stallAfter: string;
  interval: string;
}

export function watchCommand(): Command {
  return new Command("watch")
    .description(
      "guard a fleet: end it when the queue has drained, the budget or time cap is reached, progress has stalled, or every instance has gone; exit 0 only when the queue drained",
    )
    .requiredOption(...FLEET_OPTION)
    .option(...REGION_OPTION)
    .option(
      "--stall-after <duration>",
      "end the fleet when no file has finished for this long",
      "15m",
    )
    .option("--interval <duration>", "between checks", "10s")
    .action(async (flags: WatchFlags, command: Command) => {
      const { output, databaseUrl, logger } = await runContext(command);
      const { duration } = await import("../../parse.js");
      const stallMs = duration("--stall-after", flags.stallAfter, 10_000);
      const intervalMs = duration("--interval", flags.interval, 1000);
      const url = databaseUrl();
      const { getFleet } = await import("../../../infra/fleet-store.js");
      const { withClient } = await import("../../../lib/db/connect.js");
      const record = await withClient(url, (c) => getFleet(c, flags.fleet));
      if (record === undefined) {
        throw new UsageError(
          `--fleet ${flags.fleet}: no fleet of that name in this database`,
          {
            suggestion: "see `fitsfleet fleet status --all`",
          },
        );
      }
      const { provider, close } = await providerFor(record, flags.region);
      const stop = new AbortController();
      const unregister = onInterrupt(() => stop.abort());
      try {
        const { guardFleet } = await import("../../../infra/fleet.js");
        const { guardOutcomeError } =
          await import("../rebuild/launch-fleet.js");
        const outcome = await guardFleet(provider, flags.fleet, {
          databaseUrl: url,
          intervalMs,
          stallMs,
          signal: stop.signal,
          logger,
          onTick: (t) =>
            output.progress(
              {
                fleet: t.fleet.name,
                running: t.members.filter((m) => m.state === "running").length,
                done: t.status.counts.done,
                total: t.status.total,
                spend: t.fleet.spend,
              },
              `fleet ${t.fleet.name}: ${t.members.filter((m) => m.state === "running").length}/${t.members.length} running; ${t.status.counts.done}/${t.status.total} done, ${t.status.counts.failed} failed; spend ${money(t.fleet.spend)}`,
            ),
        });
        if (outcome === undefined) {
          throw new FitsfleetError(
            "interrupted",
            EXIT.interrupted,
            `interrupted: fleet ${flags.fleet} keeps running unguarded until ${record.deadline.toISOString()}`,
            {
              suggestion: `watch it again, or end it with \`fitsfleet fleet terminate --fleet ${flags.fleet}\``,
            },
          );
        }
        output.result(
          {
            fleet: flags.fleet,
            reason: outcome.reason,
            message: outcome.message,
            spend: outcome.fleet.spend,
            terminated: outcome.report,
          },
          (r) =>
            `fleet ${r.fleet} ended: ${r.message}; spend ${money(r.spend)}`,
        );
        const failure = guardOutcomeError(outcome);
        if (failure !== undefined) {
          throw failure;
        }
      } finally {
        unregister();
        close();
      }
    });
}
