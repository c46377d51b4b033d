/**
 * The pipeline's journal over the coordinator (lib/run/coordinated.ts): a
 * step-state change and its events commit together under the lease epoch
 * and the coordinator folds them in and snapshots every N; once another
 * epoch has taken over, a change through the stale coordinator is refused
 * whole (neither the run_steps row nor an event) and the coordinator knows
 * it has lost the lease.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import { connect } from "../../lib/db/connect.js";
import { coordinatorJournal, readRunState } from "../../lib/run/coordinated.js";
import { Coordinator } from "../../lib/run/coordinator.js";
import { StaleEpochError } from "../../lib/run/events.js";
import { recover } from "../../lib/run/recover.js";
import {
  getRun,
  insertRun,
  markStepEnded,
  markStepStarted,
  transition,
} from "../../lib/run/store.js";
import { testDatabase } from "../helpers/db.js";

it("records under the lease epoch, snapshots every N, and a superseded coordinator records nothing more", async (t) => {
  const db = await testDatabase(t);
  const c = await connect(db.url);
  t.after(() => c.end());
  const runId = "r-fenced-run";
  let lostReason: string | undefined;
  const coordinator = await Coordinator.start(db.url, runId, {
    snapshotEvery: 2,
    onLost: (reason) => (lostReason = reason),
  });
  t.after(() => coordinator.close());
  const journal = coordinatorJournal(coordinator);
  const at = () => new Date().toISOString();
  await transition(
    c,
    journal,
    runId,
    [
      { type: "run-started", runId, at: at(), provider: "local" },
      { type: "step-started", step: "init", at: at() },
      { type: "step-finished", step: "init", at: at(), figures: { n: 1 } },
    ],
    async (w) => {
      await insertRun(w, {
        id: runId,
        provider: "local",
        storage: "/a",
        queue: "q",
        settings: {},
        coordinator: "here",
      });
      await markStepStarted(w, runId, "init");
      await markStepEnded(w, runId, "init", {
        status: "done",
        figures: { n: 1 },
      });
    },
  );
  assert.equal(coordinator.state.steps.init.status, "done");
  assert.equal(coordinator.state.seq > 0, true);
  const recovered = await recover(c, runId);
  assert.equal(recovered.source, "snapshot", "three events, snapshot every 2");
  assert.deepEqual(recovered.state, coordinator.state);
  assert.deepEqual(await readRunState(c, runId), coordinator.state);
  assert.equal(await readRunState(c, "r-no-such-run"), undefined);

  // Another coordinator takes over (as a standby does when this one hangs).
  await c.query(
    "UPDATE fitsfleet.run_leases SET epoch = epoch + 1 WHERE run_id = $1",
    [runId],
  );
  const events = async () =>
    Number(
      (
        await c.query<{ n: string }>(
          "SELECT count(*) AS n FROM fitsfleet.run_events WHERE run_id = $1",
          [runId],
        )
      ).rows[0]!.n,
    );
  const before = await events();
  await assert.rejects(
    transition(
      c,
      journal,
      runId,
      [{ type: "step-started", step: "migrate", at: at() }],
      (w) => markStepStarted(w, runId, "migrate"),
    ),
    StaleEpochError,
  );
  assert.equal(await events(), before);
  const run = await getRun(c, runId);
  assert.equal(
    run!.steps.find((s) => s.step === "migrate")!.status,
    "pending",
    "the step's row rolled back with its refused events",
  );
  assert.match(coordinator.lost ?? "", /epoch 1 refused/);
  assert.equal(lostReason, coordinator.lost);
});
