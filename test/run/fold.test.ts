/**
 * The fold's contract (RELIABILITY.md section 3, tests 1 and 4), by
 * property: for any sequence of events and every cut k, the state from all
 * events equals the state from a snapshot of the first k plus the rest,
 * whether the snapshot is held in memory, serialised, or stored in and
 * loaded from the snapshot table; and replaying from the snapshot's own
 * number (an off-by-one) applies nothing twice.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import fc from "fast-check";

import { connect } from "../../lib/db/connect.js";
import { appendEvents, readEvents } from "../../lib/run/events.js";
import {
  evolve,
  fold,
  initialState,
  type SequencedEvent,
} from "../../lib/run/fold.js";
import { loadSnapshot, saveSnapshot } from "../../lib/run/snapshots.js";
import type { RunState } from "../../lib/run/types.js";
import { testDatabase } from "../helpers/db.js";
import { runEventArb } from "../helpers/run-events.js";

/** Events with increasing, not necessarily consecutive, numbers (as the log hands them out). */
const sequenced = fc
  .array(fc.tuple(runEventArb, fc.integer({ min: 1, max: 5 })), {
    maxLength: 60,
  })
  .map((pairs) => {
    let seq = 0;
    return pairs.map(([event, step]): SequencedEvent => {
      seq += step;
      return { seq, event };
    });
  });

const roundTrip = (s: RunState): RunState =>
  JSON.parse(JSON.stringify(s)) as RunState;

describe("fold", () => {
  it("a snapshot of any prefix plus the later events gives the state of all events", () => {
    fc.assert(
      fc.property(sequenced, (events) => {
        const all = fold(initialState("prop"), events);
        assert.equal(all.seq, events[events.length - 1]?.seq ?? 0);
        for (let k = 0; k <= events.length; k++) {
          const snap = roundTrip(
            fold(initialState("prop"), events.slice(0, k)),
          );
          assert.deepStrictEqual(fold(snap, events.slice(k)), all);
          // Replay that starts one event early: the boundary event is skipped.
          assert.deepStrictEqual(
            fold(snap, events.slice(Math.max(0, k - 1))),
            all,
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it("replaying any event again changes nothing, and evolve never changes its input", () => {
    fc.assert(
      fc.property(sequenced, fc.nat(), (events, pick) => {
        const all = fold(initialState("prop"), events);
        const frozen = roundTrip(all);
        if (events.length > 0) {
          const again = events[pick % events.length]!;
          assert.equal(evolve(all, again), all);
        }
        assert.deepStrictEqual(all, frozen);
      }),
      { numRuns: 200 },
    );
  });

  it("the fold reads events it does not know as taking a number only", () => {
    const s = evolve(initialState("x"), {
      seq: 3,
      event: { type: "from-a-newer-build", at: "t" } as never,
    });
    assert.deepStrictEqual(s, { ...initialState("x"), seq: 3 });
  });

  it("for every cut, the stored and loaded snapshot plus the stored later events gives the state of all stored events", async (t) => {
    const db = await testDatabase(t);
    const c = await connect(db.url);
    t.after(() => c.end());
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(runEventArb, { maxLength: 25 }),
        fc.integer({ min: 1, max: 4 }),
        async (events, batch) => {
          const runId = `prop-${run++}`;
          for (let i = 0; i < events.length; i += batch) {
            await appendEvents(c, runId, events.slice(i, i + batch));
          }
          const stored = (await readEvents(c, runId)).events;
          assert.equal(stored.length, events.length);
          const all = fold(initialState(runId), stored);
          for (let k = 0; k <= stored.length; k++) {
            const prefix = fold(initialState(runId), stored.slice(0, k));
            await saveSnapshot(c, runId, prefix.seq, prefix);
            const { snapshot } = await loadSnapshot(c, runId, {
              maxSeq: prefix.seq,
            });
            assert.equal(snapshot?.seq, prefix.seq);
            const rest = await readEvents(c, runId, { from: prefix.seq + 1 });
            assert.deepStrictEqual(fold(snapshot!.state, rest.events), all);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
