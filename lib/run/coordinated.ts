/**
 * The pipeline's side of the coordinator (lib/run/coordinator.ts): a
 * journal that appends each step-state change's events under the lease
 * epoch in the pipeline's own transaction (its steps need their session:
 * temporary tables, the run lock), so the run_steps row and its events
 * commit together and a stale coordinator's change is refused whole; once
 * committed, the coordinator folds them in and snapshots every N.
 */
import type { AnyClient } from "../db/connect.js";
import { PreconditionError } from "../errors.js";
import type { Coordinator } from "./coordinator.js";
import { appendEvents, StaleEpochError } from "./events.js";
import type { RunJournal } from "./journal.js";
import { recover } from "./recover.js";
import type { RunEvent, RunState } from "./types.js";

export function coordinatorJournal(coordinator: Coordinator): RunJournal {
  let pending: { seqs: number[]; events: RunEvent[] } | undefined;
  return {
    async record(client, runId, events) {
      pending = undefined;
      try {
        const seqs = await appendEvents(client, runId, events, {
          epoch: coordinator.epoch,
          inTransaction: true,
        });
        pending = { seqs, events };
      } catch (error) {
        if (error instanceof StaleEpochError) {
          coordinator.fenced(error);
        }
        throw error;
      }
    },
    async committed() {
      const done = pending;
      pending = undefined;
      if (done !== undefined) {
        await coordinator.absorb(done.seqs, done.events);
      }
    },
  };
}

/** A coordinator that lost its lease stops: this error says so and why. */
export function leaseLostError(
  runId: string,
  reason: string,
): PreconditionError {
  return new PreconditionError(
    `run ${runId}: this coordinator lost its lease (${reason}) and stopped; another coordinator continues the run`,
    {
      suggestion: `see \`fitsfleet rebuild runs show ${runId}\` for the coordinator that holds it now`,
      context: { runId },
    },
  );
}

/**
 * The run's state for a reader (the dashboard): the youngest snapshot plus
 * the later events, or the ledger and run tables when there are none; no
 * lease taken and nothing written. Undefined when the run is unknown.
 */
export async function readRunState(
  client: AnyClient,
  runId: string,
): Promise<RunState | undefined> {
  const recovery = await recover(client, runId);
  if (recovery.source !== "ledger") {
    return recovery.state;
  }
  const { rows } = await client.query<{ known: boolean }>(
    `SELECT to_regclass('fitsfleet.runs') IS NOT NULL
            AND EXISTS (SELECT 1 FROM fitsfleet.runs WHERE id = $1) AS known`,
    [runId],
  );
  return rows[0]?.known === true ? recovery.state : undefined;
}
