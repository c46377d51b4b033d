/**
 * `worker calcache` against real PostgreSQL on generated archives: it
 * drains the queue to exactly the evaluator's rows; a frame the reference
 * raises on keeps its entry, failed, with the reason; two workers leave
 * what one leaves; a SIGKILLed worker's entries are taken by the next.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";

import { evaluateFrame } from "../../lib/cal/evaluate.js";
import { REFERENCE_FAILURE } from "../../lib/cal/queue.js";
import { connect, withClient } from "../../lib/db/connect.js";
import { CALCACHE_FRAME_LOCK_CLASS } from "../../lib/db/locks.js";
import { packageRoot } from "../../lib/paths.js";
import { generateCalArchive } from "../helpers/cal-archive.js";
import { testDatabase } from "../helpers/db.js";
import {
  cacheOf,
  differing,
  expectedOf,
  PER_INSTRUMENT,
  queueAll,
  queueState,
  until,
  worker,
} from "./worker-helpers.js";

describe("worker calcache", () => {
  it("drains the queue to exactly the evaluator's rows, failed frames kept with their reason", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await generateCalArchive(c, 20190615, PER_INSTRUMENT);
      // A frame the reference raises on: types it cannot literal_eval.
      await c.query(
        "UPDATE header SET types = 'not a set' WHERE id = (SELECT min(id) FROM header)",
      );
      await queueAll(c);
    });
    const summary = await worker(db.url, "drain", { batchSize: 7 });
    await withClient(db.url, async (c) => {
      const expected = await expectedOf(c);
      const cached = await cacheOf(c);
      assert.ok(
        expected.size > 20,
        `a real mix: ${expected.size} frames with rows`,
      );
      assert.deepEqual(differing(cached, expected), []);
      const queue = await queueState(c);
      assert.ok(
        queue.every((q) => q.failed),
        "only failed entries are left",
      );
      const { rows: hids } = await c.query<{ id: number }>(
        "SELECT id FROM header",
      );
      const failed: number[] = [];
      for (const { id } of hids) {
        const e = await evaluateFrame(c, id);
        if (e.outcome === "failed") {
          failed.push(id);
          const entry = queue.find((q) => q.obs_hid === id);
          assert.equal(entry?.error, `${REFERENCE_FAILURE}: ${e.reason}`);
        }
      }
      const { rows: first } = await c.query<{ id: number }>(
        "SELECT min(id) AS id FROM header",
      );
      assert.ok(failed.includes(first[0]!.id));
      assert.deepEqual(
        queue.map((q) => q.obs_hid).sort((a, b) => a - b),
        failed.sort((a, b) => a - b),
        "one failed entry per failing frame",
      );
      assert.equal(summary.outcomes.failed, failed.length);
      assert.ok(
        summary.outcomes.associated > 0 && summary.outcomes.skipped > 0,
      );
    });
  });

  it("two workers at once leave the same rows and queue as one", async (t) => {
    const one = await testDatabase(t);
    const two = await testDatabase(t);
    for (const db of [one, two]) {
      await withClient(db.url, async (c) => {
        await generateCalArchive(c, 11, PER_INSTRUMENT);
        await queueAll(c);
      });
    }
    await worker(one.url, "alone", { batchSize: 3 });
    const [a, b] = await Promise.all([
      worker(two.url, "a", { batchSize: 3 }),
      worker(two.url, "b", { batchSize: 3 }),
    ]);
    assert.ok(a.frames > 0 && b.frames > 0, "both took work");
    const [cacheOne, queueOne] = await withClient(
      one.url,
      async (c) => [await cacheOf(c), await queueState(c)] as const,
    );
    const [cacheTwo, queueTwo] = await withClient(
      two.url,
      async (c) => [await cacheOf(c), await queueState(c)] as const,
    );
    assert.ok(cacheOne.size > 20);
    assert.deepEqual(differing(cacheOne, cacheTwo), []);
    // The same frames fail, for the same reasons. Two workers may leave a
    // failing frame a second entry: a frame evaluated while another worker
    // commits a new calibration near it is queued again as that
    // calibration's dependent (its evaluation could not see it), and fails
    // again. That entry carries the dependent note before the reason.
    const failures = (queue: typeof queueOne) =>
      [
        ...new Set(
          queue.map((q) =>
            JSON.stringify([
              q.obs_hid,
              q.failed,
              (q.error ?? "").replace(/^fitsfleet: re-evaluate[^\n]*\n\n/, ""),
            ]),
          ),
        ),
      ].sort();
    assert.deepEqual(failures(queueTwo), failures(queueOne));
    assert.deepEqual(
      queueOne.map((q) => [q.obs_hid, q.failed, q.error]),
      [...new Set(queueOne.map((q) => q.obs_hid))].map((id) => {
        const q = queueOne.find((e) => e.obs_hid === id)!;
        return [q.obs_hid, q.failed, q.error];
      }),
      "one worker leaves one entry per failing frame",
    );
    // No frame has a row twice.
    await withClient(two.url, async (c) => {
      const { rows } = await c.query<{ n: string }>(
        `SELECT count(*) AS n FROM (SELECT obs_hid, caltype, rank, cal_hid FROM calcache
           GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d`,
      );
      assert.equal(rows[0]!.n, "0");
    });
  });

  it("a worker killed with SIGKILL mid-frame leaves its entries to the next, which finishes them", async (t) => {
    const db = await testDatabase(t);
    const total = await withClient(db.url, async (c) => {
      await generateCalArchive(c, 3, 10);
      return (await queueAll(c)).length;
    });
    // Hold the frame lock of the entry the worker takes first, so the kill
    // lands while it holds its batch.
    const holder = await withClient(db.url, async (c) => {
      const { rows } = await c.query<{ obs_hid: number }>(
        "SELECT obs_hid FROM calcachequeue ORDER BY sortkey DESC, id LIMIT 1",
      );
      return rows[0]!.obs_hid;
    });
    const lock = await connect(db.url);
    t.after(() => lock.end().catch(() => undefined));
    await lock.query("SELECT pg_advisory_lock($1, $2)", [
      CALCACHE_FRAME_LOCK_CLASS,
      holder,
    ]);
    const child = spawn(
      process.execPath,
      [
        join(packageRoot(), "dist", "cli", "main.js"),
        "worker",
        "calcache",
        "--name",
        "doomed",
        "--empty",
        "--batch-size",
        "4",
      ],
      {
        env: {
          ...process.env,
          FITSFLEET_DATABASE_URL: db.url,
          FITSFLEET_LOG_LEVEL: "error",
        },
        stdio: "ignore",
      },
    );
    t.after(() => child.kill("SIGKILL"));
    const pid = await until(async () => {
      const { rows } = await lock.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE application_name = 'fitsfleet worker calcache doomed' AND wait_event_type = 'Lock'`,
      );
      return rows[0]?.pid;
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    // Its backend notices the closed connection while still waiting.
    await until(async () => {
      const { rows } = await lock.query(
        "SELECT 1 FROM pg_stat_activity WHERE pid = $1",
        [pid],
      );
      return rows.length === 0 ? true : undefined;
    });
    await lock.query("SELECT pg_advisory_unlock($1, $2)", [
      CALCACHE_FRAME_LOCK_CLASS,
      holder,
    ]);
    await withClient(db.url, async (c) => {
      const queue = await queueState(c);
      assert.equal(queue.length, total, "every entry is still there");
      assert.ok(queue.every((q) => !q.failed && q.inprogress === false));
      const { rows } = await c.query<{ n: string }>(
        "SELECT count(*) AS n FROM calcache",
      );
      assert.equal(rows[0]!.n, "0", "nothing of the killed batch was written");
    });
    const next = await worker(db.url, "next");
    assert.equal(next.frames >= total, true);
    await withClient(db.url, async (c) => {
      assert.deepEqual(differing(await cacheOf(c), await expectedOf(c)), []);
      assert.ok((await queueState(c)).every((q) => q.failed));
    });
  });
});
