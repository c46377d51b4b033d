import { Command } from "commander";

import { withClient } from "../../../lib/db/connect.js";
import { databaseUrl } from "../../../lib/endpoints.js";
import { listFailures } from "../../../lib/rebuild/ledger.js";
import { commandContext } from "../../context.js";

export function failuresCommand(): Command {
  return new Command("failures")
    .description(
      "the files that could not be ingested, with the reason for each",
    )
    .option("--limit <n>", "at most this many", "100")
    .action(async (flags: { limit: string }, command: Command) => {
      const { config, logger, output } = commandContext(command);
      const result = await withClient(databaseUrl(config, logger), (c) =>
        listFailures(c, Math.max(1, Number(flags.limit) || 100)),
      );
      output.result(result, (r) =>
        r.total === 0
          ? "no failed files"
          : [
              `${r.total} failed file(s)${r.total > r.failures.length ? `, the first ${r.failures.length}` : ""}:`,
              ...r.failures.map(
                (f) =>
                  `${f.path === "" ? "" : `${f.path}/`}${f.filename}\n  ${f.error.replaceAll("\n", "\n  ")}`,
              ),
              "",
              "fix or replace them, then `fitsfleet rebuild retry-failed`",
            ].join("\n"),
      );
    });
}
