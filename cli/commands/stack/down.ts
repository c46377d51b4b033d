import type { Command } from "commander";

import { stackDown } from "../../../lib/stack/index.js";
import { commandContext } from "../../context.js";

export interface StackDownResult {
  dir: string;
  stopped: string[];
  purged: boolean;
}

export async function downStack(
  dir: string,
  options: { purge?: boolean } = {},
): Promise<StackDownResult> {
  return { dir, ...(await stackDown(dir, options)) };
}

function describeDown(result: StackDownResult): string {
  const stopped =
    result.stopped.length > 0
      ? `stopped ${result.stopped.join(", ")}`
      : "nothing was running";
  return `${stopped}${result.purged ? `; deleted ${result.dir}` : `; data kept in ${result.dir}`}`;
}

export interface DownFlags {
  purge?: boolean;
}

/** `stack down`'s action (cli/commands/stack/index.ts loads this module for it). */
export async function downAction(
  flags: DownFlags,
  command: Command,
): Promise<void> {
  const { config, output } = commandContext(command);
  output.result(await downStack(config.stackDir, flags), describeDown);
}
