import { Command } from "commander";

import { PreconditionError } from "../../../lib/errors.js";
import { commandContext } from "../../context.js";
import { describeStack, stackReport } from "./up.js";

export function statusCommand(): Command {
  return new Command("status")
    .description(
      "show the embedded stack's servers and URLs (exit 3 unless both are running)",
    )
    .action((_options: unknown, command: Command) => {
      const { config, output } = commandContext(command);
      const report = stackReport(config.stackDir);
      output.result(report, describeStack);
      if (!report.running) {
        throw new PreconditionError(
          `the embedded stack under ${config.stackDir} is not running`,
          {
            suggestion: "start it with `fitsfleet stack up`",
          },
        );
      }
    });
}
