/**
 * Where the pipeline's events go. `rebuild run` calls `record` inside the
 * transaction that changes a step's state (`client` is in that
 * transaction), so an event log that writes through the same client
 * commits its events exactly when the state they describe commits, and a
 * run killed between the two leaves neither.
 *
 * `rebuild run` uses `coordinatorJournal` (lib/run/coordinated.ts): the
 * events go to the run's event log under the coordinator's lease epoch, so
 * a stale coordinator's state change is refused whole. `loggingJournal`
 * only logs.
 */
import type { AnyClient } from "../db/connect.js";
import type { Logger } from "../logger.js";
import type { RunEvent } from "./types.js";

export interface RunJournal {
  /** Called inside the transaction of the state change the events describe; must use `client`. */
  record(client: AnyClient, runId: string, events: RunEvent[]): Promise<void>;
  /** Called after that transaction committed (a coordinator folds the events in then). */
  committed?(): Promise<void>;
}

/** A journal that writes nothing: each event becomes a debug log line. */
export function loggingJournal(logger?: Logger): RunJournal {
  return {
    record(_client, runId, events) {
      for (const event of events) {
        logger?.debug("run event", { run: runId, ...event });
      }
      return Promise.resolve();
    },
  };
}
