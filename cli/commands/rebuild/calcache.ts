import { Command } from "commander";

import type {
  RebuildCalcacheOptions,
  RebuildCalcacheReport,
} from "../../../lib/cal/rebuild/index.js";
import { UsageError } from "../../../lib/errors.js";
import {
  formatCount,
  formatDuration,
  formatRate,
} from "../../../lib/progress.js";
import { table } from "../../output.js";
import { runContext } from "../../run.js";

interface CalcacheFlags {
  jobs?: string;
  instrument?: string[];
  since?: string;
  includeEng?: boolean;
  dryRun?: boolean;
}

/** The flags as `rebuildCalcache` options (everything but the database). */
export function calcacheOptions(
  flags: CalcacheFlags,
): Omit<RebuildCalcacheOptions, "databaseUrl"> {
  let jobs: number | undefined;
  if (flags.jobs !== undefined) {
    jobs = Number(flags.jobs);
    if (!Number.isInteger(jobs) || jobs < 1) {
      throw new UsageError(
        `--jobs ${JSON.stringify(flags.jobs)}: must be a whole number of at least 1`,
      );
    }
  }
  let since: Date | undefined;
  if (flags.since !== undefined) {
    since = new Date(
      /^\d{4}-\d{2}-\d{2}$/.test(flags.since)
        ? `${flags.since}T00:00:00Z`
        : flags.since,
    );
    if (Number.isNaN(since.getTime())) {
      throw new UsageError(
        `--since ${JSON.stringify(flags.since)}: not a date (YYYY-MM-DD or an ISO date and time, UTC)`,
      );
    }
  }
  const instruments = flags.instrument?.flatMap((i) =>
    i
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x !== ""),
  );
  return {
    jobs,
    since,
    instruments,
    includeEngineering: flags.includeEng === true,
    dryRun: flags.dryRun === true,
  };
}

export function describeCalcacheRebuild(r: RebuildCalcacheReport): string {
  const frames = table(
    ["instrument", "frames"],
    r.frames.map((f) => [f.instrument ?? "(none)", formatCount(f.frames)]),
  );
  if (r.dryRun) {
    return [
      `dry run, nothing written: would rebuild the calibration cache of ${formatCount(r.framesTotal)} frame(s) (${r.strategy === "swap" ? "a new table swapped in" : "their rows replaced in place"})`,
      frames,
      `would replace ${formatCount(r.rowsReplaced)} calcache row(s) and clear ${formatCount(r.queueCleared)} pending calcachequeue entr${r.queueCleared === 1 ? "y" : "ies"}`,
    ].join("\n");
  }
  const o = r.outcomes;
  const lines = [
    `calibration cache rebuilt for ${formatCount(r.framesTotal)} frame(s) in ${formatDuration(r.seconds)} (${formatRate(r.framesTotal / Math.max(r.seconds, 0.001))} frames/s, ${r.jobs} job(s), ${formatCount(r.statements)} statements over ${formatCount(r.shapes)} search shapes)`,
    `frames: ${formatCount(o.associated)} associated, ${formatCount(o.skipped)} skipped (no instrument, no ut_datetime or failed QA), ${formatCount(o.failed)} failed, ${formatCount(o.unsupported)} of instruments without rules yet`,
    `rows: ${formatCount(r.rowsWritten)} written, ${formatCount(r.rowsReplaced)} replaced${r.strategy === "swap" ? `, ${formatCount(r.rowsKept)} of other frames kept; the new table was swapped in` : "; replaced in place"}; ${formatCount(r.queueCleared)} calcachequeue entr${r.queueCleared === 1 ? "y" : "ies"} cleared`,
  ];
  if (r.associations.length > 0) {
    lines.push(
      table(
        ["instrument", "caltype", "associations"],
        r.associations.map((a) => [
          a.instrument ?? "(none)",
          a.caltype,
          formatCount(a.rows),
        ]),
      ),
    );
  }
  for (const f of r.failures) {
    lines.push(`failed: header ${f.headerId}: ${f.reason}`);
  }
  if (o.failed > r.failures.length) {
    lines.push(
      `… and ${formatCount(o.failed - r.failures.length)} more failed`,
    );
  }
  return lines.join("\n");
}

export function calcacheCommand(): Command {
  return new Command("calcache")
    .description(
      "rebuild the calibration cache (calcache) with set-based statements: the rows the per-frame association gives, for every canonical, non-engineering frame (or those of --instrument / --since), swapped in (or replaced in place when filtered) in one transaction; clears the covered calcachequeue entries. It first waits for the batches `worker calcache` has in hand, and workers take nothing until it ends",
    )
    .option(
      "--jobs <n>",
      "search threads, each planning frames and running its statements on its own connections (default: this machine's cores; with a remote database, the fewer of its cores and this machine's)",
    )
    .option(
      "--instrument <name...>",
      "only frames of these instruments (header.instrument, any case; GMOS also means GMOS-N and GMOS-S)",
    )
    .option(
      "--since <date>",
      "only frames observed on or after this date (YYYY-MM-DD or ISO time, UTC)",
    )
    .option("--include-eng", "engineering frames too")
    .option(
      "--dry-run",
      "count the frames per instrument and what would be replaced; write nothing",
    )
    .action(async (flags: CalcacheFlags, command: Command) => {
      const options = calcacheOptions(flags);
      const { output, databaseUrl } = await runContext(command);
      const { rebuildCalcache } =
        await import("../../../lib/cal/rebuild/index.js");
      const report = await rebuildCalcache({
        ...options,
        databaseUrl: databaseUrl(),
        onProgress: (p) =>
          output.progress(
            { ...p },
            p.phase === "wait"
              ? "waiting for calcache workers' current batches"
              : p.phase === "search"
                ? `searched ${formatCount(p.framesDone)}/${formatCount(p.framesTotal)} frames, ${formatRate(p.framesPerSecond)} frames/s, ETA ${formatDuration(p.etaSeconds)}`
                : p.phase === "rank"
                  ? "ranking and de-duplicating"
                  : p.phase === "index"
                    ? "indexing the new table"
                    : "replacing the cache (one transaction)",
          ),
      });
      output.result(report, describeCalcacheRebuild);
    });
}
