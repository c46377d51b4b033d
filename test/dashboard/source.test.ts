/**
 * The dashboard's data source over a real ledger, without a browser: the
 * rate and ETA from known finish times, a late commit's older finishes
 * (the high-water-mark hazard), a requeue, which fleet is shown, and the
 * steps panel without a run.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { recordFleet, setFleetState } from "../../infra/fleet-store.js";
import {
  DashboardSource,
  readDashboardSnapshot,
} from "../../lib/dashboard/source.js";
import { withClient } from "../../lib/db/connect.js";
import { testDatabase } from "../helpers/db.js";
import { claim, enqueueFiles, ingest } from "./helpers.js";

const finished = (s: DashboardSource) =>
  s.snapshot().progress.history.at(-1)?.finished ?? 0;

describe("dashboard source", () => {
  it("measures the rate and ETA from the finish times", async (t) => {
    const db = await testDatabase(t);
    // A whole number of 10 s buckets, so that the window's edges are exact.
    const now = Math.floor(Date.now() / 10_000) * 10_000;
    await withClient(db.url, async (c) => {
      const ids = await enqueueFiles(c, 100);
      await ingest(c, ids.slice(0, 60), "w");
      // One finish every 5 s over the last 5 minutes.
      await c.query(
        `WITH r AS (SELECT id, row_number() OVER (ORDER BY id) AS k
                      FROM fitsfleet.ingest_ledger WHERE state = 'done')
         UPDATE fitsfleet.ingest_ledger l
            SET finished_at = to_timestamp($1 - 5 * r.k),
                started_at = to_timestamp($1 - 5 * r.k - 1)
           FROM r WHERE l.id = r.id`,
        [now / 1000],
      );
      const snap = await readDashboardSnapshot(c, { now: () => now });
      assert.equal(snap.progress.filesPerSecond, 60 / 300);
      assert.equal(snap.progress.etaSeconds, 40 / 0.2);
      assert.equal(snap.progress.total, 100);
      assert.equal(snap.progress.history.at(-1)!.finished, 60);
      assert.equal(snap.progress.history.at(-1)!.t, now / 1000);
      // Each point's ETA is for what was left then.
      const mid = snap.progress.history.find((p) => p.finished === 30);
      assert.ok(mid !== undefined && mid.rate > 0);
      assert.ok(Math.abs(mid.etaSeconds! - 70 / mid.rate) < 1e-6);
    });
  });

  it("finds a late commit's older finishes, and reads everything again after a requeue", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      const ids = await enqueueFiles(c, 10);
      const source = new DashboardSource();
      await ingest(c, ids.slice(0, 3), "w");
      await source.poll(c);
      assert.equal(finished(source), 3);
      await ingest(c, ids.slice(3, 5), "w");
      assert.ok((await source.poll(c)).has("progress"));
      assert.equal(finished(source), 5);
      // A delivery whose transaction began two minutes ago commits now: its
      // finished_at (the transaction's start) is older than what was read.
      await claim(c, ids.slice(5, 6), "slow");
      await c.query(
        `UPDATE fitsfleet.ingest_ledger
            SET state = 'done', outcome = 'new', finished_at = now() - interval '2 minutes',
                claim = NULL, lease_until = NULL
          WHERE id = $1`,
        [ids[5]],
      );
      await source.poll(c);
      assert.equal(source.snapshot().progress.counts.done, 6);
      assert.equal(finished(source), 6, "the late finish is in the history");
      // Failed files queued again (retry-failed): fewer finished than before.
      await ingest(c, ids.slice(6, 8), "w", new Map([[ids[6]!, "broken"]]));
      await source.poll(c);
      assert.equal(source.snapshot().failures.total, 1);
      await c.query(
        "UPDATE fitsfleet.ingest_ledger SET state = 'queued' WHERE state = 'failed'",
      );
      const changed = await source.poll(c);
      assert.ok(changed.has("failures") && changed.has("progress"));
      assert.equal(source.snapshot().failures.total, 0);
      assert.equal(finished(source), 7);
      assert.equal(source.snapshot().progress.counts.queued, 3);
      // Nothing moved: nothing to push.
      assert.deepEqual([...(await source.poll(c))], []);
    });
  });

  it("shows --fleet, else the run's newest fleet, else the newest live one; no run without a loader", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      const deadline = new Date(Date.now() + 3_600_000);
      for (const [name, run] of [
        ["a", "run-1"],
        ["b", "run-2"],
        ["c", "run-1"],
      ] as const) {
        await recordFleet(c, {
          name,
          run,
          provider: "local",
          spec: {},
          deadline,
        });
        await setFleetState(c, name, "running");
        await new Promise((r) => setTimeout(r, 20));
      }
      await setFleetState(c, "c", "ended", "drained");
      const shown = async (options: { runId?: string; fleet?: string }) =>
        (await readDashboardSnapshot(c, options)).fleet?.name;
      assert.equal(await shown({}), "b", "the newest live one");
      assert.equal(await shown({ runId: "run-1" }), "a", "the run's live one");
      assert.equal(await shown({ fleet: "c" }), "c");
      assert.equal(await shown({ runId: "run-9" }), undefined);
      const snap = await readDashboardSnapshot(c, { runId: "run-1" });
      assert.equal(snap.steps.status, "no run");
      assert.equal(snap.steps.runId, "run-1");
      assert.deepEqual(snap.steps.steps, []);
      assert.equal(snap.spend.source, "fleet");
      assert.equal(snap.error, null);
    });
  });

  it("keeps the last figures and says why when the database fails", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await enqueueFiles(c, 2);
      const source = new DashboardSource();
      await source.poll(c);
      await c.query("ALTER TABLE fitsfleet.ingest_ledger RENAME TO gone");
      const changed = await source.poll(c);
      assert.deepEqual([...changed], ["error"]);
      assert.match(source.snapshot().error ?? "", /ingest_ledger/);
      assert.equal(source.snapshot().progress.total, 2);
      await c.query("ALTER TABLE fitsfleet.gone RENAME TO ingest_ledger");
      assert.deepEqual([...(await source.poll(c))], ["error"]);
      assert.equal(source.snapshot().error, null);
    });
  });
});
