import type { Command } from "commander";

import { PreconditionError } from "../../../lib/errors.js";
import { stackReport } from "../../../lib/stack/report.js";
import { commandContext } from "../../context.js";
import { describeStack } from "./up.js";

/** `stack status`'s action (cli/commands/stack/index.ts loads this module for it). */
export function statusAction(_flags: unknown, command: Command): void {
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
}
