import { Command } from "commander";

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

export function downCommand(): Command {
  return new Command("down")
    .description(
      "stop the embedded stack (idempotent); --purge also deletes its data",
    )
    .option("--purge", "delete the state folder and all data after stopping")
    .action(async (options: { purge?: boolean }, command: Command) => {
      const { config, output } = commandContext(command);
      output.result(await downStack(config.stackDir, options), describeDown);
    });
}
