/**
 * What a command's action needs to run, loaded when it runs rather than
 * when the command tree is built: the configuration (and with it zod) and
 * the endpoints (the embedded stack's state), so that `--help` of a command
 * reads the tree and nothing behind it (cli/program.ts, start-up).
 */
import type { Command } from "commander";

export async function runContext(command: Command) {
  const [{ commandContext }, endpoints] = await Promise.all([
    import("./context.js"),
    import("../lib/endpoints.js"),
  ]);
  const context = commandContext(command);
  return {
    ...context,
    databaseUrl: () => endpoints.databaseUrl(context.config, context.logger),
    redisUrl: () => endpoints.redisUrl(context.config, context.logger),
  };
}
