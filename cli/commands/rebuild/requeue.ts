import { Command } from "commander";

import { runContext } from "../../run.js";
import { QUEUE_OPTION } from "./common.js";
import { rebuildLibraries } from "./load.js";

export function retryFailedCommand(): Command {
  return new Command("retry-failed")
    .description("queue the failed files again (a success clears their error)")
    .option(...QUEUE_OPTION)
    .action(async (flags: { queue: string }, command: Command) => {
      const { output, databaseUrl, redisUrl } = await runContext(command);
      const { withClient, retryFailed, withIngestQueue } =
        await rebuildLibraries();
      const redis = redisUrl();
      const result = await withIngestQueue(redis, flags.queue, (queue) =>
        withClient(databaseUrl(), (c) => retryFailed(c, queue)),
      );
      output.result(
        result,
        (r) => `queued ${r.files} failed file(s) again in ${r.jobs} job(s)`,
      );
    });
}

export function reconcileCommand(): Command {
  return new Command("reconcile")
    .description(
      "re-create the queue's work from the ledger (after Redis lost it): every file no live worker holds is queued again (workers also do this by themselves when the queue is empty)",
    )
    .option(...QUEUE_OPTION)
    .action(async (flags: { queue: string }, command: Command) => {
      const { output, databaseUrl, redisUrl } = await runContext(command);
      const { withClient, reconcile, withIngestQueue } =
        await rebuildLibraries();
      const redis = redisUrl();
      const result = await withIngestQueue(redis, flags.queue, (queue) =>
        withClient(databaseUrl(), (c) => reconcile(c, queue)),
      );
      output.result(
        result,
        (r) =>
          `queued ${r.files} unfinished file(s) from the ledger in ${r.jobs} job(s)`,
      );
    });
}
