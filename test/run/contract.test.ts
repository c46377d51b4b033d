/**
 * The event log and the snapshot store against the Akka persistence TCK's
 * JournalSpec and SnapshotStoreSpec cases (RELIABILITY.md section 3), on
 * the real tables of migration 0005.
 */
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";

import { connect, type PgClient } from "../../lib/db/connect.js";
import {
  appendEvents,
  deleteEvents,
  highestSeq,
  readEvents,
} from "../../lib/run/events.js";
import { fold, initialState } from "../../lib/run/fold.js";
import {
  deleteSnapshot,
  deleteSnapshots,
  listSnapshots,
  loadSnapshot,
  pruneSnapshots,
  saveSnapshot,
} from "../../lib/run/snapshots.js";
import type { RunEvent, RunState } from "../../lib/run/types.js";
import { testDatabase } from "../helpers/db.js";
import { sampleEvent } from "../helpers/run-events.js";

async function client(t: TestContext): Promise<PgClient> {
  const db = await testDatabase(t);
  const c = await connect(db.url);
  t.after(() => c.end());
  return c;
}

/** Five events for run `a` (and a neighbour's in between); their numbers. */
async function writeFive(c: PgClient): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < 5; i++) {
    seqs.push(...(await appendEvents(c, "a", [sampleEvent(i, "a")])));
    await appendEvents(c, "b", [sampleEvent(i, "b")]);
  }
  return seqs;
}

const seqsOf = (page: { events: { seq: number }[] }) =>
  page.events.map((e) => e.seq);

describe("journal (Akka JournalSpec)", () => {
  it("replays all messages, in order, with their content", async (t) => {
    const c = await client(t);
    const seqs = await writeFive(c);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
    );
    const page = await readEvents(c, "a");
    assert.deepEqual(seqsOf(page), seqs);
    assert.deepEqual(
      page.events.map((e) => e.event),
      [0, 1, 2, 3, 4].map((i) => sampleEvent(i, "a")),
    );
    assert.equal(page.safeTo, seqs[4]);
    assert.deepEqual(page.waitingOn, []);
  });

  it("replays with a lower bound, an upper bound, a count limit and their combinations", async (t) => {
    const c = await client(t);
    const s = await writeFive(c);
    assert.deepEqual(
      seqsOf(await readEvents(c, "a", { from: s[2] })),
      s.slice(2),
    );
    assert.deepEqual(
      seqsOf(await readEvents(c, "a", { to: s[2] })),
      s.slice(0, 3),
    );
    assert.deepEqual(
      seqsOf(await readEvents(c, "a", { limit: 3 })),
      s.slice(0, 3),
    );
    assert.deepEqual(
      seqsOf(await readEvents(c, "a", { from: s[1], to: s[3] })),
      s.slice(1, 4),
    );
    assert.deepEqual(
      seqsOf(await readEvents(c, "a", { from: s[1], to: s[3], limit: 2 })),
      s.slice(1, 3),
    );
  });

  it("replays a single message when lower bound equals upper bound", async (t) => {
    const c = await client(t);
    const s = await writeFive(c);
    assert.deepEqual(
      seqsOf(await readEvents(c, "a", { from: s[2], to: s[2] })),
      [s[2]],
    );
    assert.deepEqual(
      seqsOf(await readEvents(c, "a", { from: s[2], to: s[2], limit: 1 })),
      [s[2]],
    );
  });

  it("replays nothing when the count is 0 or the lower bound is above the upper", async (t) => {
    const c = await client(t);
    const s = await writeFive(c);
    assert.deepEqual(seqsOf(await readEvents(c, "a", { limit: 0 })), []);
    assert.deepEqual(
      seqsOf(await readEvents(c, "a", { from: s[3], to: s[2] })),
      [],
    );
    assert.deepEqual(seqsOf(await readEvents(c, "a", { from: s[4]! + 1 })), []);
  });

  it("replays nothing for an unknown run, whose highest number is 0", async (t) => {
    const c = await client(t);
    await writeFive(c);
    assert.deepEqual(seqsOf(await readEvents(c, "unknown")), []);
    assert.equal(await highestSeq(c, "unknown"), 0);
  });

  it("does not replay deleted messages, and does not reset the highest number after a range deletion or a full cleanup", async (t) => {
    const c = await client(t);
    const s = await writeFive(c);
    assert.equal(await highestSeq(c, "a"), s[4]);
    assert.equal(await deleteEvents(c, "a", s[2]!), 3);
    assert.deepEqual(seqsOf(await readEvents(c, "a")), s.slice(3));
    assert.equal(await highestSeq(c, "a"), s[4]);
    // Deleting past the end removes everything; the highest number stays.
    assert.equal(await deleteEvents(c, "a", Number.MAX_SAFE_INTEGER), 2);
    assert.deepEqual(seqsOf(await readEvents(c, "a")), []);
    assert.equal(await highestSeq(c, "a"), s[4]);
    // The neighbour run is untouched, and a new append goes above the old highest.
    assert.equal((await readEvents(c, "b")).events.length, 5);
    const [next] = await appendEvents(c, "a", [sampleEvent(5, "a")]);
    assert.ok(next! > s[4]!);
    assert.equal(await highestSeq(c, "a"), next);
  });

  it("refuses an event that cannot be stored without writing any of its append, and its neighbours' appends still succeed", async (t) => {
    const c = await client(t);
    const [before] = await appendEvents(c, "a", [sampleEvent(0, "a")]);
    const cyclic: Record<string, unknown> = { type: "spend", at: "x" };
    cyclic.self = cyclic;
    await assert.rejects(
      appendEvents(c, "a", [
        sampleEvent(1, "a"),
        cyclic as unknown as RunEvent,
      ]),
      /run a: event 1 \(spend\) cannot be stored/,
    );
    const [after] = await appendEvents(c, "a", [sampleEvent(2, "a")]);
    assert.deepEqual(seqsOf(await readEvents(c, "a")), [before, after]);
  });

  it("appends several events atomically: one the database refuses leaves none of them written", async (t) => {
    const c = await client(t);
    // jsonb has no NUL character: PostgreSQL refuses the third event.
    const nul: RunEvent = {
      type: "step-failed",
      step: "drain",
      at: "x",
      reason: "a\u0000b",
    };
    await assert.rejects(
      appendEvents(c, "a", [sampleEvent(1), sampleEvent(5), nul]),
      /unsupported Unicode escape sequence/,
    );
    assert.deepEqual(seqsOf(await readEvents(c, "a")), []);
  });
});

function stateAt(seq: number, runId = "a"): RunState {
  return fold(initialState(runId), [
    { seq, event: sampleEvent(seq % 10, runId) },
  ]);
}

describe("snapshot store (Akka SnapshotStoreSpec)", () => {
  /** Snapshots at 1..5, taken in that order; the times they were taken. */
  async function saveFive(c: PgClient): Promise<Date[]> {
    const times: Date[] = [];
    for (let seq = 1; seq <= 5; seq++) {
      times.push((await saveSnapshot(c, "a", seq, stateAt(seq))).takenAt);
      // Distinct timestamps (now() is per transaction and microsecond-precise).
      await c.query("SELECT pg_sleep(0.002)");
    }
    return times;
  }

  it("has no snapshot for an unknown run, a non-matching timestamp or non-matching sequence criteria", async (t) => {
    const c = await client(t);
    const times = await saveFive(c);
    assert.equal((await loadSnapshot(c, "unknown")).snapshot, undefined);
    const earlier = new Date(times[0]!.getTime() - 1000);
    assert.equal(
      (await loadSnapshot(c, "a", { maxTimestamp: earlier })).snapshot,
      undefined,
    );
    assert.equal(
      (await loadSnapshot(c, "a", { maxSeq: 0 })).snapshot,
      undefined,
    );
    assert.equal(
      (await loadSnapshot(c, "a", { minSeq: 6 })).snapshot,
      undefined,
    );
  });

  it("loads the most recent snapshot, whole", async (t) => {
    const c = await client(t);
    const times = await saveFive(c);
    const { snapshot, skipped } = await loadSnapshot(c, "a");
    assert.equal(snapshot?.seq, 5);
    assert.deepEqual(snapshot!.state, stateAt(5));
    assert.equal(snapshot!.takenAt.getTime(), times[4]!.getTime());
    assert.deepEqual(skipped, []);
  });

  it("loads the most recent snapshot under an upper sequence bound, and under a timestamp bound", async (t) => {
    const c = await client(t);
    const times = await saveFive(c);
    assert.equal((await loadSnapshot(c, "a", { maxSeq: 3 })).snapshot?.seq, 3);
    assert.equal(
      (await loadSnapshot(c, "a", { maxTimestamp: times[1] })).snapshot?.seq,
      2,
    );
    assert.equal(
      (await loadSnapshot(c, "a", { maxSeq: 4, maxTimestamp: times[1] }))
        .snapshot?.seq,
      2,
    );
    assert.equal(
      (await loadSnapshot(c, "a", { maxSeq: 2, maxTimestamp: times[3] }))
        .snapshot?.seq,
      2,
    );
  });

  it("honours a maximum age: old snapshots are not offered", async (t) => {
    const c = await client(t);
    await saveFive(c);
    await c.query(
      "UPDATE fitsfleet.run_snapshots SET taken_at = taken_at - interval '1 hour' WHERE seq >= 4",
    );
    assert.equal(
      (await loadSnapshot(c, "a", { maxAgeMs: 60_000 })).snapshot?.seq,
      3,
    );
    await c.query(
      "UPDATE fitsfleet.run_snapshots SET taken_at = taken_at - interval '1 hour'",
    );
    assert.equal(
      (await loadSnapshot(c, "a", { maxAgeMs: 60_000 })).snapshot,
      undefined,
    );
    assert.equal((await loadSnapshot(c, "a")).snapshot?.seq, 5);
  });

  it("deletes a single snapshot", async (t) => {
    const c = await client(t);
    await saveFive(c);
    assert.equal(await deleteSnapshot(c, "a", 5), true);
    assert.equal(await deleteSnapshot(c, "a", 5), false);
    assert.equal((await loadSnapshot(c, "a")).snapshot?.seq, 4);
    assert.equal((await loadSnapshot(c, "a", { maxSeq: 5 })).snapshot?.seq, 4);
  });

  it("deletes snapshots by criteria", async (t) => {
    const c = await client(t);
    const times = await saveFive(c);
    assert.equal(
      await deleteSnapshots(c, "a", { maxSeq: 4, maxTimestamp: times[2] }),
      3,
    );
    assert.deepEqual(
      (await listSnapshots(c, "a")).map((s) => s.seq),
      [5, 4],
    );
    assert.equal(await deleteSnapshots(c, "a", {}), 2);
    assert.equal((await loadSnapshot(c, "a")).snapshot, undefined);
  });

  it("replaces a snapshot saved again at the same sequence number", async (t) => {
    const c = await client(t);
    await saveFive(c);
    const other = { ...stateAt(5), spendDollars: 42 };
    await saveSnapshot(c, "a", 5, other);
    assert.deepEqual((await loadSnapshot(c, "a")).snapshot?.state, other);
    assert.equal((await listSnapshots(c, "a")).length, 5);
  });

  it("keeps the youngest N", async (t) => {
    const c = await client(t);
    await saveFive(c);
    await saveSnapshot(c, "b", 1, stateAt(1, "b"));
    assert.equal(await pruneSnapshots(c, "a", 2), 3);
    assert.deepEqual(
      (await listSnapshots(c, "a")).map((s) => s.seq),
      [5, 4],
    );
    assert.equal((await listSnapshots(c, "b")).length, 1);
  });

  it("skips a damaged snapshot for the next older one and says why", async (t) => {
    const c = await client(t);
    await saveFive(c);
    // One byte of the stored state flipped; another row that is valid JSON
    // with a matching checksum but the state of another number.
    await c.query(
      `UPDATE fitsfleet.run_snapshots
          SET state = set_byte(state, 10, get_byte(state, 10) # 1)
        WHERE run_id = 'a' AND seq = 5`,
    );
    const wrong = Buffer.from(JSON.stringify(stateAt(3)));
    const { createHash } = await import("node:crypto");
    await c.query(
      "UPDATE fitsfleet.run_snapshots SET state = $1, sha256 = $2 WHERE run_id = 'a' AND seq = 4",
      [wrong, createHash("sha256").update(wrong).digest()],
    );
    const { snapshot, skipped } = await loadSnapshot(c, "a");
    assert.equal(snapshot?.seq, 3);
    assert.deepEqual(snapshot!.state, stateAt(3));
    assert.deepEqual(
      skipped.map((s) => [s.seq, s.reason]),
      [
        [5, "checksum mismatch: the stored state was altered or damaged"],
        [4, "not the state of run a at 4"],
      ],
    );
  });
});
