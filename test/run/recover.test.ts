/**
 * Recovery's paths (RELIABILITY.md section 3, tests 2 and 3): the youngest
 * snapshot not older than the allowed age plus the later events; a damaged
 * snapshot falls back to the next older one, then to all events, and, once
 * the events it needs are deleted, to the ledger and fleet tables. Each
 * path gives the state a fold of all events gives (or, from the ledger,
 * what the tables say), and says which path it took.
 */
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";

import { recordFleet, recordMembers } from "../../infra/fleet-store.js";
import { connect, type PgClient } from "../../lib/db/connect.js";
import {
  appendEvents,
  deleteEvents,
  readEvents,
} from "../../lib/run/events.js";
import { fold, initialState } from "../../lib/run/fold.js";
import { recover } from "../../lib/run/recover.js";
import { saveSnapshot } from "../../lib/run/snapshots.js";
import {
  insertRun,
  markRunEnded,
  markStepEnded,
  markStepStarted,
} from "../../lib/run/store.js";
import type { RunState } from "../../lib/run/types.js";
import { testDatabase } from "../helpers/db.js";
import { sampleEvent } from "../helpers/run-events.js";

async function client(t: TestContext): Promise<PgClient> {
  const db = await testDatabase(t);
  const c = await connect(db.url);
  t.after(() => c.end());
  return c;
}

/** 60 events, snapshots after the 20th and the 40th; the seqs and the state of all. */
async function history(c: PgClient) {
  const seqs = await appendEvents(
    c,
    "r",
    Array.from({ length: 60 }, (_, i) => sampleEvent(i, "r")),
  );
  const stored = (await readEvents(c, "r")).events;
  const at = (n: number): RunState =>
    fold(initialState("r"), stored.slice(0, n));
  await saveSnapshot(c, "r", seqs[19]!, at(20));
  await saveSnapshot(c, "r", seqs[39]!, at(40));
  return { seqs, all: at(60) };
}

async function damage(c: PgClient, seq: number): Promise<void> {
  await c.query(
    `UPDATE fitsfleet.run_snapshots SET state = set_byte(state, 5, get_byte(state, 5) # 255)
      WHERE run_id = 'r' AND seq = $1`,
    [seq],
  );
}

describe("recover", () => {
  it("starts from the youngest snapshot and folds in the later events", async (t) => {
    const c = await client(t);
    const { seqs, all } = await history(c);
    const r = await recover(c, "r");
    assert.equal(r.source, "snapshot");
    assert.equal(r.snapshotSeq, seqs[39]);
    assert.equal(r.replayed, 20);
    assert.deepStrictEqual(r.state, all);
  });

  it("ignores snapshots older than the maximum age, and replays everything when none is young enough", async (t) => {
    const c = await client(t);
    const { seqs, all } = await history(c);
    await c.query(
      "UPDATE fitsfleet.run_snapshots SET taken_at = now() - interval '10 minutes' WHERE seq = $1",
      [seqs[39]],
    );
    const older = await recover(c, "r", { snapshotMaxAgeMs: 60_000 });
    assert.equal(older.snapshotSeq, seqs[19]);
    assert.equal(older.replayed, 40);
    assert.deepStrictEqual(older.state, all);
    await c.query(
      "UPDATE fitsfleet.run_snapshots SET taken_at = now() - interval '10 minutes'",
    );
    const full = await recover(c, "r", { snapshotMaxAgeMs: 60_000 });
    assert.equal(full.source, "events");
    assert.equal(full.reason, "no snapshot young enough; replaying all events");
    assert.equal(full.replayed, 60);
    assert.deepStrictEqual(full.state, all);
  });

  it("skips a corrupt snapshot for the older one, then for a full replay", async (t) => {
    const c = await client(t);
    const { seqs, all } = await history(c);
    await damage(c, seqs[39]!);
    const older = await recover(c, "r");
    assert.equal(older.source, "snapshot");
    assert.equal(older.snapshotSeq, seqs[19]);
    assert.deepEqual(
      older.skippedSnapshots.map((s) => s.seq),
      [seqs[39]],
    );
    assert.deepStrictEqual(older.state, all);
    await damage(c, seqs[19]!);
    const full = await recover(c, "r", { pageSize: 7 });
    assert.equal(full.source, "events");
    assert.match(full.reason, /^2 snapshot\(s\) unusable \(checksum mismatch/);
    assert.equal(full.replayed, 60);
    assert.deepStrictEqual(full.state, all);
  });

  it("does not start from a snapshot older than deleted events", async (t) => {
    const c = await client(t);
    const { seqs, all } = await history(c);
    await deleteEvents(c, "r", seqs[29]!);
    const r = await recover(c, "r");
    assert.equal(r.snapshotSeq, seqs[39]);
    assert.deepStrictEqual(r.state, all);
    await damage(c, seqs[39]!);
    // The snapshot at 20 would need events 21..30, which are gone.
    const fallback = await recover(c, "r");
    assert.equal(fallback.source, "ledger");
  });

  it("with the snapshots corrupt and the events deleted, rebuilds what the ledger and fleet tables say", async (t) => {
    const c = await client(t);
    const { seqs } = await history(c);
    await c.query(
      `INSERT INTO fitsfleet.ingest_ledger (storage, path, filename, sortkey, state)
       SELECT '/archive', '', 'f' || i || '.fits', lpad(i::text, 5, '0'),
              (ARRAY['done', 'done', 'done', 'failed', 'queued', 'active', 'skipped'])[1 + i % 7]
         FROM generate_series(0, 69) AS i`,
    );
    await recordFleet(c, {
      name: "fleet-r",
      run: "r",
      provider: "ec2",
      spec: {},
      deadline: new Date(Date.now() + 3_600_000),
    });
    await recordFleet(c, {
      name: "fleet-other",
      run: "other",
      provider: "ec2",
      spec: {},
      deadline: new Date(Date.now() + 3_600_000),
    });
    const launched = new Date(Date.now() - 2 * 3_600_000);
    const ended = new Date(launched.getTime() + 3_600_000);
    await recordMembers(c, "fleet-r", [
      {
        instanceId: "i-1",
        instanceType: "c7g.large",
        hourlyPrice: 0.5,
        launchedAt: launched,
        endedAt: ended,
      },
      {
        instanceId: "i-2",
        instanceType: "c7g.large",
        hourlyPrice: 0.25,
        launchedAt: launched,
        endedAt: ended,
      },
    ]);
    await recordMembers(c, "fleet-other", [
      { instanceId: "i-9", hourlyPrice: 9, launchedAt: launched },
    ]);
    await damage(c, seqs[19]!);
    await damage(c, seqs[39]!);
    await deleteEvents(c, "r", seqs[59]!);
    const r = await recover(c, "r");
    assert.equal(r.source, "ledger");
    assert.match(
      r.reason,
      /events up to \d+ are deleted and no usable snapshot covers them/,
    );
    // Snapshots below the deleted events are not candidates at all.
    assert.deepEqual(r.skippedSnapshots, []);
    assert.deepEqual(r.state.progress, {
      done: 40,
      failed: 10,
      queued: 10,
      active: 10,
    });
    assert.deepEqual(Object.keys(r.state.instances).sort(), ["i-1", "i-2"]);
    assert.deepEqual(r.state.instances["i-1"], {
      instanceType: "c7g.large",
      hourlyPrice: 0.5,
      joinedAt: launched.toISOString(),
      leftAt: ended.toISOString(),
    });
    assert.ok(Math.abs(r.state.spendDollars - 0.75) < 1e-9);
    assert.equal(r.state.provider, "ec2");
    assert.equal(r.state.status, "running");
    assert.equal(r.state.steps.enqueue.status, "done");
    assert.equal(r.state.steps.drain.status, "pending");
    // Numbered after the deleted events, so the events that follow fold on top.
    assert.equal(r.state.seq, seqs[59]);
  });

  it("a run with no events at all is rebuilt from the tables (here: nothing)", async (t) => {
    const c = await client(t);
    const r = await recover(c, "new");
    assert.equal(r.source, "ledger");
    assert.deepStrictEqual(r.state, { ...initialState("new") });
  });

  it("without events, the steps and figures `rebuild run` committed in run_steps come back", async (t) => {
    const c = await client(t);
    await insertRun(c, {
      id: "r-steps-only",
      provider: "local",
      storage: "/archive",
      queue: "q",
      settings: {},
      coordinator: "elsewhere:1",
    });
    await markStepStarted(c, "r-steps-only", "init");
    await markStepEnded(c, "r-steps-only", "init", {
      status: "done",
      figures: { migrationsApplied: 7 },
    });
    await markStepEnded(c, "r-steps-only", "migrate", {
      status: "skipped",
      reason: "no --from",
    });
    await markStepStarted(c, "r-steps-only", "enqueue");
    await markStepEnded(c, "r-steps-only", "enqueue", {
      status: "failed",
      reason: "storage unreadable",
    });
    await markRunEnded(
      c,
      "r-steps-only",
      "failed",
      "enqueue: storage unreadable",
    );
    const r = await recover(c, "r-steps-only");
    assert.equal(r.source, "ledger");
    assert.equal(r.state.status, "failed");
    assert.equal(r.state.provider, "local");
    assert.equal(r.state.steps.init.status, "done");
    assert.deepEqual(r.state.steps.init.figures, { migrationsApplied: 7 });
    assert.ok(r.state.steps.init.endedAt !== undefined);
    assert.equal(r.state.steps.migrate.status, "skipped");
    assert.equal(r.state.steps.migrate.reason, "no --from");
    assert.equal(r.state.steps.enqueue.status, "failed");
    assert.equal(r.state.steps.enqueue.reason, "storage unreadable");
    assert.deepEqual(r.state.steps.launch, { status: "pending" });
  });
});
