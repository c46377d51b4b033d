/** The guard's decision, case by case: what ends a fleet, and in what order. */
import assert from "node:assert/strict";
import { it } from "node:test";

import { guardDecision, type GuardTick } from "../../infra/fleet.js";
import type { FleetRecord } from "../../infra/fleet-store.js";
import type { RebuildStatus } from "../../lib/rebuild/ledger.js";

const NOW = new Date("2026-12-07T12:00:00Z");

function tick(over: {
  left?: number;
  previews?: number;
  spend?: number;
  budget?: number | null;
  deadline?: Date;
  idle?: number;
  members?: ("running" | "ended")[];
  previewWorkers?: number;
}): GuardTick {
  const fleet = {
    name: "f",
    spec: { previewWorkers: over.previewWorkers ?? 1 },
    spend: over.spend ?? 0,
    budget: over.budget === undefined ? 1 : over.budget,
    deadline: over.deadline ?? new Date(NOW.getTime() + 3_600_000),
  } as unknown as FleetRecord;
  const status = {
    counts: {
      queued: over.left ?? 5,
      active: 0,
      done: 10,
      failed: 1,
      skipped: 0,
    },
  } as RebuildStatus;
  return {
    fleet,
    status,
    members: (over.members ?? ["running"]).map((state, i) => ({
      id: `i-${i}`,
      state,
      launchedAt: NOW,
    })),
    previewsLeft: over.previews ?? 0,
    idleSeconds: over.idle ?? 0,
  };
}

const STALL = 60_000;
const reason = (t: GuardTick) => guardDecision(t, STALL, NOW)?.reason;

it("nothing ends a working fleet within its caps", () => {
  assert.equal(reason(tick({})), undefined);
  assert.equal(reason(tick({ budget: null, idle: 59 })), undefined);
});

it("a drained queue ends the fleet, but not while previews remain", () => {
  assert.equal(reason(tick({ left: 0 })), "drained");
  assert.equal(reason(tick({ left: 0, previews: 3 })), undefined);
  // Nobody would do them: the previews stay queued for a later preview worker.
  assert.equal(
    reason(tick({ left: 0, previews: 3, previewWorkers: 0 })),
    "drained",
  );
  assert.match(
    guardDecision(tick({ left: 0 }), STALL, NOW)!.message,
    /10 done, 1 failed/,
  );
});

it("the budget, the deadline, lost instances and a stall each end it", () => {
  assert.equal(reason(tick({ spend: 1, budget: 1 })), "budget");
  assert.equal(reason(tick({ deadline: NOW })), "deadline");
  assert.equal(reason(tick({ members: ["ended", "ended"] })), "instances-gone");
  assert.equal(reason(tick({ members: ["ended", "running"] })), undefined);
  assert.equal(reason(tick({ idle: 60 })), "stalled");
});

it("a drained queue is told as drained even when a cap is reached at the same time", () => {
  assert.equal(reason(tick({ left: 0, spend: 2, budget: 1 })), "drained");
  assert.equal(reason(tick({ spend: 2, budget: 1, idle: 600 })), "budget");
});
