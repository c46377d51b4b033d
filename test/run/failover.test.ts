/**
 * Active/standby (RELIABILITY.md section 3, test 6): a standby takes the
 * lease when the active coordinator is killed with SIGKILL mid-stream, with
 * the state a rebuild from scratch gives, and carries on under a new epoch;
 * a stale active's appends are refused; a takeover waits for the appends
 * still running under the old epoch, so nothing the old one wrote is missed.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it, type TestContext } from "node:test";

import { connect, type PgClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import { packageRoot } from "../../lib/paths.js";
import { Coordinator } from "../../lib/run/coordinator.js";
import {
  appendEvents,
  readEvents,
  StaleEpochError,
} from "../../lib/run/events.js";
import { fold, initialState } from "../../lib/run/fold.js";
import {
  acquireLease,
  describeLease,
  releaseLease,
  renewLease,
  watchLease,
} from "../../lib/run/lease.js";
import { recover } from "../../lib/run/recover.js";
import type { RunState } from "../../lib/run/types.js";
import { testDatabase } from "../helpers/db.js";
import { sampleEvent } from "../helpers/run-events.js";

type Fact = Record<string, unknown>;

/** A coordinator process; `next(pred)` resolves with the first matching line it prints (or rejects after `ms`). */
function coordinatorProcess(t: TestContext, args: string[]) {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(packageRoot(), "test/helpers/coordinator-process.ts"),
      ...args,
    ],
    { cwd: packageRoot(), stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
    }
  });
  const facts: Fact[] = [];
  const waiters: { pred: (f: Fact) => boolean; resolve: (f: Fact) => void }[] =
    [];
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const fact = JSON.parse(line) as Fact;
    facts.push(fact);
    for (const w of [...waiters]) {
      if (w.pred(fact)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(fact);
      }
    }
  });
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  return {
    child,
    facts,
    exited,
    next(pred: (f: Fact) => boolean, ms: number, what: string): Promise<Fact> {
      const seen = facts.find(pred);
      if (seen !== undefined) {
        return Promise.resolve(seen);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(new Error(`no ${what} within ${ms} ms; stderr: ${stderr}`)),
          ms,
        );
        waiters.push({
          pred,
          resolve: (f) => {
            clearTimeout(timer);
            resolve(f);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          if (!facts.some(pred)) {
            reject(new Error(`exited before ${what}; stderr: ${stderr}`));
          }
        });
      });
    },
  };
}

async function fromScratch(
  c: PgClient,
  runId: string,
  to: number,
): Promise<RunState> {
  return fold(initialState(runId), (await readEvents(c, runId, { to })).events);
}

async function client(t: TestContext, url: string): Promise<PgClient> {
  const c = await connect(url);
  t.after(() => c.end());
  return c;
}

describe("coordinator failover", () => {
  it("kill -9 of the active coordinator while it appends: the standby takes over with the state of a rebuild from scratch, and continues", async (t) => {
    const db = await testDatabase(t);
    const c = await client(t, db.url);
    const active = coordinatorProcess(t, [
      db.url,
      "run-1",
      "active",
      "--snapshot-every",
      "150",
    ]);
    await active.next((f) => f.ready === true, 60_000, "active coordinator");
    await active.next(
      (f) => typeof f.appended === "number" && (f.appended as number) > 400,
      60_000,
      "400 events",
    );
    const standby = coordinatorProcess(t, [
      db.url,
      "run-1",
      "standby",
      "--continue",
      "3",
    ]);
    // It stands by while the active one lives: the lease is held and renewed.
    await standby.next(
      (f) => f.log === "standing by",
      60_000,
      "the standby waiting",
    );
    await sleep(1500);
    assert.ok(
      !standby.facts.some((f) => f.ready === true),
      "no takeover while the active one lives",
    );
    assert.equal((await describeLease(c, "run-1"))?.epoch, 1);

    active.child.kill("SIGKILL");
    await active.exited;
    // A generous bound on waiting only: a hang fails here, a slow machine does not.
    const ready = await standby.next(
      (f) => f.ready === true,
      60_000,
      "takeover",
    );
    assert.equal(ready.epoch, 2);
    assert.equal(ready.source, "snapshot");
    const state = ready.state as RunState;
    assert.ok(state.seq > 400);
    assert.deepStrictEqual(state, await fromScratch(c, "run-1", state.seq));
    // Nothing the old epoch wrote lies beyond what the standby recovered.
    const { rows } = await c.query<{ last: string }>(
      "SELECT max(seq) AS last FROM fitsfleet.run_events WHERE run_id = 'run-1' AND epoch = 1",
    );
    assert.equal(Number(rows[0]?.last), state.seq);

    const done = await standby.next(
      (f) => Array.isArray(f.continued),
      60_000,
      "continued events",
    );
    await standby.exited;
    assert.equal(standby.child.exitCode, 0);
    const continued = done.continued as number[];
    assert.equal(continued.length, 3);
    const after = await readEvents(c, "run-1", { from: state.seq + 1 });
    assert.deepEqual(
      after.events.map((e) => [e.seq, e.epoch]),
      continued.map((s) => [s, 2]),
    );
    assert.deepStrictEqual(
      done.state,
      await fromScratch(c, "run-1", continued[2]!),
    );
    // And a third coordinator recovers the same from the tables.
    assert.deepStrictEqual((await recover(c, "run-1")).state, done.state);
  });

  it("refuses a stale active's appends and renewals once a standby has taken over the expired lease", async (t) => {
    const db = await testDatabase(t);
    const a = await client(t, db.url);
    const b = await client(t, db.url);
    const old = await acquireLease(a, "r", "a", { ttlMs: 300 });
    assert.equal(old?.epoch, 1);
    assert.equal(await acquireLease(b, "r", "b", { ttlMs: 300 }), undefined);
    const [first] = await appendEvents(a, "r", [sampleEvent(0)], { epoch: 1 });
    // `a` hangs (stops renewing); its lease runs out and `b` takes over.
    const fresh = await watchLease(b, "r", "b", { ttlMs: 60_000, pollMs: 50 });
    assert.equal(fresh.epoch, 2);
    await assert.rejects(
      appendEvents(a, "r", [sampleEvent(1)], { epoch: 1 }),
      (e: unknown) =>
        e instanceof StaleEpochError &&
        e.message ===
          "run r: append under lease epoch 1 refused: epoch 2 has taken over",
    );
    await assert.rejects(
      appendEvents(a, "r", [sampleEvent(1)]),
      /append without a lease epoch refused: coordinator epoch 2 holds the run/,
    );
    assert.equal(await renewLease(a, old!), undefined);
    const [next] = await appendEvents(b, "r", [sampleEvent(2)], { epoch: 2 });
    assert.deepEqual(
      (await readEvents(b, "r")).events.map((e) => [e.seq, e.epoch]),
      [
        [first, 1],
        [next, 2],
      ],
    );
    // Released, the row keeps its epoch: the next holder gets 3, never 1 again.
    await releaseLease(b, fresh);
    assert.equal((await acquireLease(a, "r", "a"))?.epoch, 3);
  });

  it("takes over at once, before the lease expires, when the holder's connection is gone", async (t) => {
    const db = await testDatabase(t);
    const a = await connect(db.url);
    const b = await client(t, db.url);
    const held = await acquireLease(a, "r", "a", { ttlMs: 600_000 });
    assert.ok(held !== undefined);
    await a.end();
    // Ten minutes of lease left: only the connection's end can explain a takeover.
    const lease = await watchLease(b, "r", "b", { pollMs: 50 });
    assert.equal(lease.epoch, 2);
    assert.ok(lease.expiresAt.getTime() < held.expiresAt.getTime());
  });

  it("a takeover waits for an append still running under the old epoch, and then sees its events", async (t) => {
    const db = await testDatabase(t);
    const a = await client(t, db.url);
    const b = await client(t, db.url);
    await acquireLease(a, "r", "a", { ttlMs: 100 });
    await a.query("BEGIN");
    const [late] = await appendEvents(a, "r", [sampleEvent(5)], {
      epoch: 1,
      inTransaction: true,
    });
    for (
      let i = 0;
      i < 100 && (await describeLease(b, "r"))?.expired !== true;
      i++
    ) {
      await sleep(50);
    }
    assert.equal((await describeLease(b, "r"))?.expired, true);
    // Expired, but the old holder's append is open: no takeover yet.
    assert.equal(await acquireLease(b, "r", "b"), undefined);
    await a.query("COMMIT");
    assert.equal((await acquireLease(b, "r", "b"))?.epoch, 2);
    const r = await recover(b, "r");
    assert.deepEqual(r.state.seq, late);
  });

  it("Coordinator: a second active is refused, a standby takes over a released lease, and the old one learns it lost", async (t) => {
    const db = await testDatabase(t);
    let lostReason: string | undefined;
    const first = await Coordinator.start(db.url, "r", {
      holder: "first",
      // Renewals out of the way: the test plays a paused process.
      renewMs: 600_000,
      snapshotEvery: 5,
      onLost: (why) => (lostReason = why),
    });
    t.after(() => first.close());
    await first.append(sampleEvent(0, "r"), sampleEvent(1, "r"));
    for (let i = 2; i < 12; i++) {
      await first.append(sampleEvent(i, "r"));
    }
    await assert.rejects(
      Coordinator.start(db.url, "r", { holder: "second" }),
      /run r has an active coordinator: first \(epoch 1, lease until/,
    );
    const standby = Coordinator.standby(db.url, "r", {
      holder: "standby",
      pollMs: 50,
    });
    // Let the standby look once while the lease is held.
    await sleep(200);
    const c = await client(t, db.url);
    // The first one is paused (no renewals, like a hung process) and its lease runs out.
    const lease = await describeLease(c, "r");
    await c.query(
      "UPDATE fitsfleet.run_leases SET expires_at = '-infinity' WHERE run_id = 'r'",
    );
    const second = await standby;
    t.after(() => second.close());
    assert.equal(second.epoch, lease!.epoch + 1);
    assert.equal(second.recovery.source, "snapshot");
    assert.deepStrictEqual(second.state, first.state);
    await assert.rejects(first.append(sampleEvent(20, "r")), StaleEpochError);
    assert.equal(
      lostReason,
      "run r: append under lease epoch 1 refused: epoch 2 has taken over",
    );
    assert.equal(first.lost, lostReason);
    const [seq] = await second.append(sampleEvent(21, "r"));
    assert.equal(second.state.seq, seq);
  });

  it("Coordinator.transact: the pipeline's own rows and the events that tell of them commit together, or not at all", async (t) => {
    const db = await testDatabase(t);
    const c = await client(t, db.url);
    await c.query("CREATE TABLE steps (step text PRIMARY KEY, status text)");
    const co = await Coordinator.start(db.url, "r", { renewMs: 600_000 });
    t.after(() => co.close());
    const { seqs, result } = await co.transact(async (tx) => {
      await tx.query("INSERT INTO steps VALUES ('init', 'running')");
      return {
        events: [{ type: "step-started", step: "init", at: "t" }],
        result: "ok",
      };
    });
    assert.equal(result, "ok");
    assert.equal(co.state.steps.init.status, "running");
    assert.equal(co.state.seq, seqs[0]);
    await assert.rejects(
      co.transact(async (tx) => {
        await tx.query("UPDATE steps SET status = 'done'");
        return {
          events: [
            { type: "step-finished", step: "init", at: "t", figures: {} },
            {
              type: "step-failed",
              step: "migrate",
              at: "t",
              reason: "a\u0000b",
            },
          ],
          result: undefined,
        };
      }),
      /unsupported Unicode escape sequence/,
    );
    assert.equal(co.state.steps.init.status, "running");
    const { rows } = await c.query("SELECT status FROM steps");
    assert.deepEqual(rows, [{ status: "running" }]);
    assert.equal((await readEvents(c, "r")).events.length, 1);
    // Taken over: the stale coordinator's writes are rolled back with its refused events.
    await c.query("UPDATE fitsfleet.run_leases SET expires_at = '-infinity'");
    const other = await acquireLease(c, "r", "other");
    assert.equal(other?.epoch, 2);
    await assert.rejects(
      co.transact(async (tx) => {
        await tx.query("UPDATE steps SET status = 'stale'");
        return { events: [sampleEvent(5, "r")], result: undefined };
      }),
      StaleEpochError,
    );
    assert.deepEqual((await c.query("SELECT status FROM steps")).rows, [
      { status: "running" },
    ]);
  });
});
