import { Command } from "commander";

import { UsageError } from "../../../lib/errors.js";
import { runContext } from "../../run.js";
import { onInterrupt } from "../../signals.js";
import {
  FLEET_OPTION,
  guardOutcomeError,
  guardTiming,
  guardWithProgress,
  money,
  providerFor,
  REGION_OPTION,
  unguardedError,
  withGuardOptions,
} from "./common.js";

interface WatchFlags {
  fleet: string;
  region?: string;
  stallAfter: string;
  interval: string;
}

export function watchCommand(): Command {
  return withGuardOptions(
    new Command("watch")
      .description(
        "guard a fleet: end it when the queue has drained, the budget or time cap is reached, progress has stalled, or every instance has gone; exit 0 only when the queue drained",
      )
      .requiredOption(...FLEET_OPTION)
      .option(...REGION_OPTION),
  ).action(async (flags: WatchFlags, command: Command) => {
    const { output, databaseUrl, logger } = await runContext(command);
    const { stallMs, intervalMs } = guardTiming(flags);
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
      const outcome = await guardWithProgress(provider, flags.fleet, output, {
        databaseUrl: url,
        intervalMs,
        stallMs,
        signal: stop.signal,
        logger,
      });
      if (outcome === undefined) {
        throw unguardedError(flags.fleet, record.deadline);
      }
      output.result(
        {
          fleet: flags.fleet,
          reason: outcome.reason,
          message: outcome.message,
          spend: outcome.fleet.spend,
          terminated: outcome.report,
        },
        (r) => `fleet ${r.fleet} ended: ${r.message}; spend ${money(r.spend)}`,
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
