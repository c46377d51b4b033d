/**
 * Gap safety (RELIABILITY.md section 3, test 5; Marten discussion #4953):
 * sequence numbers are not commit-ordered, so a reader must stop before a
 * number an open transaction holds, pass it once that transaction commits
 * (and see its event) or rolls back (the gap is dead on that evidence), and
 * never pass it because time went by.
 */
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";

import { connect, type PgClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import { appendEvents, readEvents } from "../../lib/run/events.js";
import { testDatabase } from "../helpers/db.js";
import { sampleEvent } from "../helpers/run-events.js";

async function clients(t: TestContext, n: number): Promise<PgClient[]> {
  const db = await testDatabase(t);
  const cs: PgClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await connect(db.url);
    t.after(() => c.end());
    cs.push(c);
  }
  return cs;
}

const seqsOf = (page: { events: { seq: number }[] }) =>
  page.events.map((e) => e.seq);

/** T1 holds a number in an open transaction; T2 draws the next one and commits. */
async function openGap(t: TestContext) {
  const [t1, t2, reader] = await clients(t, 3);
  const [first] = await appendEvents(t2!, "r", [sampleEvent(0)]);
  await t1!.query("BEGIN");
  const [held] = await appendEvents(t1!, "r", [sampleEvent(1)], {
    inTransaction: true,
  });
  const { rows } = await t1!.query<{ xid: string }>(
    "SELECT pg_current_xact_id()::text AS xid",
  );
  const [later] = await appendEvents(t2!, "r", [sampleEvent(2)]);
  assert.ok(first! < held! && held! < later!);
  return {
    t1: t1!,
    t2: t2!,
    reader: reader!,
    first,
    held,
    later,
    xid: rows[0]!.xid,
  };
}

describe("gap safety", () => {
  it("stops before a number held by an open transaction, and sees it once that commits", async (t) => {
    const { t1, reader, first, held, later, xid } = await openGap(t);
    const blocked = await readEvents(reader, "r");
    assert.deepEqual(seqsOf(blocked), [first]);
    assert.equal(blocked.safeTo, first);
    assert.deepEqual(blocked.waitingOn, [xid]);
    // Reading on from where it stopped is held back too.
    assert.deepEqual(
      seqsOf(await readEvents(reader, "r", { from: first! + 1 })),
      [],
    );
    // Time alone never moves it.
    await sleep(1500);
    assert.deepEqual(seqsOf(await readEvents(reader, "r")), [first]);
    await t1.query("COMMIT");
    const page = await readEvents(reader, "r");
    assert.deepEqual(seqsOf(page), [first, held, later]);
    assert.deepEqual(page.waitingOn, []);
  });

  it("passes a number whose transaction rolled back, on that evidence", async (t) => {
    const { t1, reader, first, later, xid } = await openGap(t);
    assert.deepEqual((await readEvents(reader, "r")).waitingOn, [xid]);
    await t1.query("ROLLBACK");
    const { rows } = await reader.query<{ status: string }>(
      "SELECT pg_xact_status($1::xid8) AS status",
      [xid],
    );
    assert.equal(rows[0]?.status, "aborted");
    const page = await readEvents(reader, "r");
    assert.deepEqual(seqsOf(page), [first, later]);
    assert.deepEqual(page.waitingOn, []);
  });

  it("a transaction that draws its number after the committed ones does not hold them back", async (t) => {
    const [w1, w2, reader] = await clients(t, 3);
    const committed = await appendEvents(w1!, "r", [
      sampleEvent(0),
      sampleEvent(1),
    ]);
    await w2!.query("BEGIN");
    await appendEvents(w2!, "r", [sampleEvent(2)], { inTransaction: true });
    const page = await readEvents(reader!, "r");
    assert.deepEqual(seqsOf(page), committed);
    assert.deepEqual(page.waitingOn, []);
    await w2!.query("ROLLBACK");
  });

  it("a reader tailing the log while writers commit out of order and roll back misses nothing and sees nothing twice", async (t) => {
    const cs = await clients(t, 5);
    const reader = cs[0]!;
    const writers = cs.slice(1);
    let writing = true;
    const seen: number[] = [];
    const tail = (async () => {
      let from = 1;
      let heldBack = 0;
      for (;;) {
        const done = !writing;
        const page = await readEvents(reader, "r", { from, limit: 50 });
        seen.push(...seqsOf(page));
        from = page.safeTo + 1;
        if (page.waitingOn.length > 0) {
          heldBack++;
        }
        if (done && page.events.length === 0 && page.waitingOn.length === 0) {
          return heldBack;
        }
        await sleep(1);
      }
    })();
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    await Promise.all(
      writers.map(async (w, wi) => {
        for (let i = 0; i < 40; i++) {
          await w.query("BEGIN");
          await appendEvents(
            w,
            "r",
            [sampleEvent(wi * 100 + i), sampleEvent(i)],
            {
              inTransaction: true,
            },
          );
          // Commit (or roll back) after a while, so later numbers commit first.
          await sleep(Math.floor(random() * 15));
          await w.query(random() < 0.2 ? "ROLLBACK" : "COMMIT");
        }
      }),
    );
    writing = false;
    const heldBack = await tail;
    const { rows } = await reader.query<{ seq: string }>(
      "SELECT seq FROM fitsfleet.run_events WHERE run_id = 'r' ORDER BY seq",
    );
    const committed = rows.map((r) => Number(r.seq));
    assert.ok(committed.length > 0);
    assert.deepEqual(seen, committed);
    // The drill is only a drill if the reader was actually held back at times.
    assert.ok(heldBack > 0, "the reader met an open transaction at least once");
  });

  it("refuses to append in a repeatable-read transaction, whose snapshot predates its numbers", async (t) => {
    const [c] = await clients(t, 1);
    await c!.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    await assert.rejects(
      appendEvents(c!, "r", [sampleEvent(0)], { inTransaction: true }),
      /run r: events must be appended at READ COMMITTED, not repeatable read/,
    );
    await c!.query("ROLLBACK");
  });
});
