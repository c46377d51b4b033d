import { Command } from "commander";

import type { Failure } from "../../../lib/rebuild/ledger.js";
import { runContext } from "../../run.js";
import { rebuildLibraries } from "./load.js";

/**
 * One failure a line: the file, then the reason without the file's name
 * again (the error as recorded starts with it; `--json` keeps it whole).
 */
export function describeFailures(r: {
  total: number;
  failures: readonly Failure[];
}): string {
  if (r.total === 0) {
    return "no failed files";
  }
  const width = Math.max(...r.failures.map((f) => f.file.length));
  const indent = `\n${" ".repeat(width + 2)}`;
  return [
    `${r.total} failed file(s)${r.total > r.failures.length ? `, the first ${r.failures.length}` : ""}:`,
    ...r.failures.map(
      (f) => `${f.file.padEnd(width)}  ${f.reason.replaceAll("\n", indent)}`,
    ),
    "",
    "fix or replace them, then `fitsfleet rebuild retry-failed`",
  ].join("\n");
}

export function failuresCommand(): Command {
  return new Command("failures")
    .description(
      "the files that could not be ingested, with the reason for each",
    )
    .option("--limit <n>", "at most this many", "100")
    .action(async (flags: { limit: string }, command: Command) => {
      const { output, databaseUrl } = await runContext(command);
      const { withClient, listFailures } = await rebuildLibraries();
      const result = await withClient(databaseUrl(), (c) =>
        listFailures(c, Math.max(1, Number(flags.limit) || 100)),
      );
      output.result(result, describeFailures);
    });
}
