/**
 * What the ledger records and what a later enqueue makes of it: a file
 * changed between its enqueue and its ingest is queued again once, not by
 * every later enqueue; an enqueue interrupted between its ledger commit and
 * its queue jobs is repaired by the next one. A delivery's statements on
 * the ledger visit only its own batch's rows, however many the fleet holds.
 */
import assert from "node:assert/strict";
import { statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import { type AnyClient, withClient } from "../../lib/db/connect.js";
import { createLogger } from "../../lib/logger.js";
import { enqueue, type EnqueueOptions } from "../../lib/rebuild/enqueue.js";
import {
  type Claim,
  claimRows,
  heldElsewhere,
  lockOwnedRows,
  releaseClaim,
  renewLease,
} from "../../lib/rebuild/ledger.js";
import { withIngestQueue } from "../../lib/rebuild/queue.js";
import { openStorage } from "../../lib/storage/index.js";
import { runIngestWorker } from "../../worker/ingest.js";
import { testArchive } from "../helpers/archive.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";

const logger = createLogger({ level: "error" });

/** A small archive, its own database and queue, and the options to enqueue it. */
async function setup(t: TestContext) {
  const archive = testArchive(t, { dumpsPerInstrument: 1 });
  const db = await testDatabase(t);
  const queue = uniqueQueueName("ledger");
  const storage = openStorage(archive.root);
  t.after(() => storage.close());
  const options: EnqueueOptions = {
    databaseUrl: db.url,
    redisUrl: testEnv().redisUrl,
    queue,
    storage,
    storageLocation: archive.root,
  };
  return { archive, db, queue, options };
}

describe("ledger", () => {
  it("records what was ingested: a file touched after its enqueue is not queued again by every later enqueue", async (t) => {
    const { archive, db, queue, options } = await setup(t);
    const first = await enqueue(options);
    assert.ok(first.queued > 0);
    // Touched after the listing, before the ingest reads it.
    const file = archive.good[0]!;
    const path = join(archive.root, file.path, file.name);
    const later = new Date(statSync(path).mtimeMs + 120_000);
    utimesSync(path, later, later);
    const work = (name: string) =>
      runIngestWorker({
        name,
        databaseUrl: db.url,
        redisUrl: testEnv().redisUrl,
        queue,
        concurrency: 1,
        empty: true,
        fastRebuild: false,
        makePreviews: false,
        logger,
      });
    await work("w1");
    const recorded = await withClient(
      db.url,
      async (c) =>
        (
          await c.query<{ lastmod: Date }>(
            "SELECT lastmod FROM fitsfleet.ingest_ledger WHERE filename = $1",
            [file.name],
          )
        ).rows[0]!.lastmod,
    );
    assert.equal(recorded.getTime(), later.getTime(), "the ingested mtime");
    // Only the failed (damaged) files are queued again, as enqueue always does.
    const again = await enqueue(options);
    assert.equal(again.requeued, archive.corrupt.length);
    assert.equal(again.queued, 0);
    const state = await withClient(
      db.url,
      async (c) =>
        (
          await c.query<{ state: string }>(
            "SELECT state FROM fitsfleet.ingest_ledger WHERE filename = $1",
            [file.name],
          )
        ).rows[0]!.state,
    );
    assert.equal(state, "done", "the touched file is not queued again");
  });

  it("an enqueue that committed its ledger rows but never queued their work is repaired by the next enqueue", async (t) => {
    const { archive, db, queue, options } = await setup(t);
    await enqueue(options);
    const total = archive.good.length + archive.corrupt.length;
    // As if the first enqueue was killed after its commit: its jobs are gone.
    await withIngestQueue(testEnv().redisUrl, queue, (q) =>
      q.obliterate({ force: true }),
    );
    const repaired = await enqueue(options);
    assert.equal(repaired.orphans, total);
    assert.equal(repaired.queued, 0);
    const summary = await runIngestWorker({
      name: "w",
      databaseUrl: db.url,
      redisUrl: testEnv().redisUrl,
      queue,
      concurrency: 2,
      empty: true,
      fastRebuild: true,
      makePreviews: false,
      logger,
    });
    assert.equal(summary.outcomes.new, archive.good.length);
    assert.equal(summary.outcomes.failed, archive.corrupt.length);
  });

  it("a delivery's statements visit only its batch's rows, however many the fleet holds", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await c.query(
        `INSERT INTO fitsfleet.ingest_ledger (storage, path, filename, sortkey)
         SELECT 's', '', 'N20240101S' || g || '.fits', 'z' || g FROM generate_series(1, 5200) g`,
      );
      // As autovacuum leaves a ledger after its enqueue: statistics that
      // count no active row.
      await c.query("ANALYZE fitsfleet.ingest_ledger");
      const claim = (token: string): Claim => ({
        token,
        worker: "w",
        leaseSeconds: 60,
      });
      const ours = claim("00000000-0000-4000-8000-000000000001");
      const batch = Array.from({ length: 200 }, (_, i) => i + 1);
      // The rest of the fleet: 5,000 rows in other deliveries' hands.
      const others = Array.from({ length: 5000 }, (_, i) => i + 201);
      await claimRows(c, batch, ours);
      await claimRows(c, others, claim("00000000-0000-4000-8000-000000000002"));
      // Each function's statement, run under EXPLAIN ANALYZE and rolled
      // back; the rows its scans of the ledger read, kept or thrown away.
      const visited = async (call: (spy: AnyClient) => Promise<unknown>) => {
        let read = 0;
        const walk = (node: Record<string, unknown>) => {
          if (
            node["Relation Name"] === "ingest_ledger" &&
            String(node["Node Type"]).endsWith("Scan")
          ) {
            read +=
              (Number(node["Actual Rows"] ?? 0) +
                Number(node["Rows Removed by Filter"] ?? 0)) *
              Number(node["Actual Loops"] ?? 1);
          }
          for (const child of (node.Plans as Record<string, unknown>[]) ?? []) {
            walk(child);
          }
        };
        const spy = {
          query: async (text: string, values: unknown[]) => {
            const { rows } = await c.query<{ "QUERY PLAN": unknown }>(
              `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
              values,
            );
            walk(
              (
                rows[0]!["QUERY PLAN"] as { Plan: Record<string, unknown> }[]
              )[0]!.Plan,
            );
            return { rows: [], rowCount: 0 };
          },
        } as unknown as AnyClient;
        await c.query("BEGIN");
        try {
          await call(spy);
        } finally {
          await c.query("ROLLBACK");
        }
        return read;
      };
      assert.equal(await visited((spy) => renewLease(spy, ours, batch)), 200);
      assert.equal(
        await visited((spy) => releaseClaim(spy, ours.token, batch)),
        200,
      );
      assert.equal(
        await visited((spy) => lockOwnedRows(spy, batch, ours.token)),
        200,
      );
      assert.equal(
        await visited((spy) => heldElsewhere(spy, batch, ours.token)),
        200,
      );
    });
  });
});
