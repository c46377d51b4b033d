/**
 * `fitsfleet instance boot`: what the image's boot unit runs on a fleet
 * instance (ami/boot.ts). Its exit is the instance's end: the unit powers
 * the machine off after it.
 */
import { Command } from "commander";

import type { BootResult } from "../../../ami/boot.js";
import { EXIT, FitsfleetError } from "../../../lib/errors.js";
import { duration, wholeNumber } from "../../parse.js";
import { runContext } from "../../run.js";
import { withWorkerSignals } from "../worker/common.js";

interface BootFlags {
  maxCrashes: string;
  crashWindow: string;
  restartDelay: string;
  stopGrace: string;
  spotWatch: boolean;
}

function describeBoot(r: BootResult): string {
  return [
    `instance ${r.instanceId} (fleet ${r.fleet}, run ${r.run})${r.stoppedBy === undefined ? "" : `, stopped by ${r.stoppedBy === "signal" ? "a signal" : "its deadline"}`}:`,
    ...r.workers.map(
      (w) =>
        `  ${w.name}: ${w.outcome}${w.exitCode === null ? "" : ` (exit ${w.exitCode})`}${w.starts > 1 ? `, started ${w.starts} times` : ""}`,
    ),
  ].join("\n");
}

export function bootCommand(): Command {
  return new Command("boot")
    .description(
      "on a fleet instance: read the fleet configuration from the user-data (IMDSv2) and the secrets from SSM Parameter Store (the instance role), run the configured ingest and preview workers until they are done, restarting one that crashes, and stop them on SIGTERM or at the configuration's deadline. Exit 0 when every worker ended cleanly, 1 when one did not; 2-4 when the instance could not start its workers (a bad configuration, a missing secret, a service out of reach)",
    )
    .option(
      "--max-crashes <n>",
      "a worker that crashes this many times within --crash-window is given up on",
      "3",
    )
    .option(
      "--crash-window <duration>",
      "the window for --max-crashes (90s, 10m, 1h)",
      "10m",
    )
    .option(
      "--restart-delay <duration>",
      "the delay before a crashed worker's first restart; each further crash within the window doubles it, up to 1 minute",
      "1s",
    )
    .option(
      "--stop-grace <duration>",
      "after a stop, how long the workers may take before they are killed (they hand their work back within their own 90 s)",
      "2m",
    )
    .option(
      "--no-spot-watch",
      "do not have the workers watch the metadata service for a spot interruption notice",
    )
    .action(async (flags: BootFlags, cmd: Command) => {
      const { logger, output } = await runContext(cmd);
      const options = {
        maxCrashes: wholeNumber("--max-crashes", flags.maxCrashes, {
          max: 1000,
        }),
        crashWindowMs: duration("--crash-window", flags.crashWindow),
        restartDelayMs: duration("--restart-delay", flags.restartDelay, 0),
        stopGraceMs: duration("--stop-grace", flags.stopGrace),
        spotWatch: flags.spotWatch,
      };
      const { bootInstance } = await import("../../../ami/boot.js");
      const result = await withWorkerSignals((stop, abandon) =>
        bootInstance({ ...options, logger, stop, abandon }),
      );
      output.result(result, describeBoot);
      if (!result.clean) {
        const bad = result.workers.filter(
          (w) => !["done", "stopped", "not-started"].includes(w.outcome),
        );
        throw new FitsfleetError(
          "workers-failed",
          EXIT.failed,
          `${bad.length} worker(s) of instance ${result.instanceId} did not end cleanly: ${bad.map((w) => `${w.name} ${w.outcome}${w.exitCode === null ? "" : ` (exit ${w.exitCode})`}`).join(", ")}`,
          {
            suggestion:
              "their errors are in this instance's console log above; the ledger keeps what was done, and `fitsfleet rebuild status` shows what is left",
          },
        );
      }
    });
}
