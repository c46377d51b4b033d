import { Command } from "commander";

import { sleep } from "../../../lib/exec.js";
import {
  formatCount,
  formatDuration,
  formatRate,
} from "../../../lib/progress.js";
import type { RebuildStatus } from "../../../lib/rebuild/ledger.js";
import { table } from "../../output.js";
import { runContext } from "../../run.js";
import { rebuildLibraries } from "./load.js";

export function describeRebuildStatus(s: RebuildStatus): string {
  const c = s.counts;
  const outcomes = Object.entries(s.outcomes)
    .map(([k, v]) => `${formatCount(v)} ${k}`)
    .join(", ");
  const lines = [
    `files: ${formatCount(s.total)} — queued ${formatCount(c.queued)}, active ${formatCount(c.active)}, done ${formatCount(c.done)}${outcomes === "" ? "" : ` (${outcomes})`}, failed ${formatCount(c.failed)}, skipped ${formatCount(c.skipped)}`,
    `rate: ${formatRate(s.filesPerSecond)} files/s over ${s.windowEnd === "now" ? "the last" : "the run's last"} ${s.windowMinutes} min${s.windowEnd === "now" ? "" : " of work"}, ${formatRate(s.runFilesPerSecond)} files/s over the whole run; ETA ${formatDuration(s.etaSeconds)}; ${formatCount(s.interruptions)} interruption(s) (taken over from a stopped or lost worker; not failures)`,
  ];
  if (s.workers.length > 0) {
    lines.push(
      table(
        ["worker", "active", `done in ${s.windowMinutes} min`, "last finished"],
        s.workers.map((w) => [
          w.worker,
          String(w.active),
          formatCount(w.recent),
          w.lastFinished ?? "",
        ]),
      ),
    );
  }
  if (c.failed > 0) {
    lines.push("see `fitsfleet rebuild failures` for the failed files and why");
  }
  return lines.join("\n");
}

export function statusCommand(): Command {
  return new Command("status")
    .description(
      "files queued, active, done, failed and skipped; files/s over the last minutes (of work, once none remains) and over the whole run; ETA; active workers by name (read from the ledger)",
    )
    .option(
      "--watch [seconds]",
      "repeat every few seconds (default 2) until interrupted, each time on stdout with the time",
    )
    .option("--window <minutes>", "minutes the rate is measured over", "5")
    .action(
      async (
        flags: { watch?: boolean | string; window: string },
        command: Command,
      ) => {
        const { output, databaseUrl } = await runContext(command);
        const { withClient, rebuildStatus } = await rebuildLibraries();
        const url = databaseUrl();
        const window = Math.max(1, Number(flags.window) || 5);
        const every =
          flags.watch === undefined
            ? 0
            : flags.watch === true
              ? 2
              : Math.max(1, Number(flags.watch) || 2);
        await withClient(url, async (client) => {
          for (;;) {
            const status = await rebuildStatus(client, window);
            if (every === 0) {
              output.result(status, describeRebuildStatus);
              return;
            }
            output.snapshot(status, describeRebuildStatus);
            await sleep(every * 1000);
          }
        });
      },
    );
}
