/**
 * `worker calcache`, incremental: a new calibration, written by the
 * archive writer as ingest writes it, reaches exactly the frames whose
 * associations it changes (its dependents), where the reference's way
 * (--no-dependents) leaves them stale; a new version of a calibration
 * reaches the frames that used the old one.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NOT_FAILED } from "../../lib/archive-writer.js";
import { calcacheRows, evaluateFrame } from "../../lib/cal/evaluate.js";
import { DEPENDENT_NOTE, dependentsOf } from "../../lib/cal/queue.js";
import { withClient } from "../../lib/db/connect.js";
import { generateCalArchive, ingestFrame } from "../helpers/cal-archive.js";
import { testDatabase } from "../helpers/db.js";
import {
  cacheOf,
  canonicalOnly,
  copyOf,
  differing,
  expectedOf,
  PER_INSTRUMENT,
  queueAll,
  queueState,
  rowIdsOf,
  worker,
} from "./worker-helpers.js";

describe("worker calcache, incremental", () => {
  it("dependents cover every frame a calibration can reach (the widest windows hold on a generated archive)", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await generateCalArchive(c, 7, 2 * PER_INSTRUMENT);
      // Canonical frames only: an older version's rows are nobody's concern.
      const { rows } = await c.query<{ id: number }>(
        `SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id
          WHERE d.canonical ORDER BY h.id`,
      );
      const reachedBy = new Map<number, Set<number>>();
      for (const { id } of rows) {
        for (const r of calcacheRows(await evaluateFrame(c, id))) {
          const set = reachedBy.get(r.calHid) ?? new Set();
          set.add(id);
          reachedBy.set(r.calHid, set);
        }
      }
      assert.ok(reachedBy.size > 10, `${reachedBy.size} calibrations in use`);
      for (const [cal, frames] of reachedBy) {
        const dependents = new Set(
          (await dependentsOf(c, cal)).map((d) => d.id),
        );
        const missed = [...frames].filter(
          (f) => f !== cal && !dependents.has(f),
        );
        if (missed.length > 0) {
          const { rows: detail } = await c.query(
            `SELECT h.id, h.instrument, h.observation_type, h.reduction, h.ut_datetime::text,
                    h.qa_state, h.engineering, d.canonical
               FROM header h JOIN diskfile d ON d.id = h.diskfile_id
              WHERE h.id = ANY($1::int[])`,
            [[cal, ...missed]],
          );
          assert.fail(
            `frames that take ${cal} but are not its dependents: ${JSON.stringify(detail)}`,
          );
        }
      }
    });
  });

  it("a new calibration from ingest updates exactly the frames it changes; the reference's way leaves them stale", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await generateCalArchive(c, 20190615, PER_INSTRUMENT);
      await queueAll(c);
    });
    await worker(db.url, "first");
    await withClient(db.url, async (c) => {
      // A science frame with a raw bias; a copy of that bias at the frame's
      // own time must become its best bias.
      const { rows } = await c.query<{
        obs_hid: number;
        cal_hid: number;
        ut: string;
      }>(
        `SELECT c.obs_hid, c.cal_hid, to_char(s.ut_datetime, 'YYYY-MM-DD"T"HH24:MI:SS') AS ut
           FROM calcache c JOIN header s ON s.id = c.obs_hid JOIN header b ON b.id = c.cal_hid
          WHERE c.caltype = 'bias' AND c.rank = 0 AND b.reduction = 'RAW'
          ORDER BY c.obs_hid LIMIT 2`,
      );
      assert.equal(rows.length, 2, "the archive has frames with biases");
      const before = await canonicalOnly(c, await cacheOf(c));
      const idsBefore = await rowIdsOf(c);

      // ours: dependents on.
      const bias = await copyOf(
        c,
        rows[0]!.cal_hid,
        "N20190615S9001.fits",
        rows[0]!.ut,
      );
      await c.query("BEGIN");
      const newHid = await ingestFrame(c, bias);
      await c.query("COMMIT");
      const queued = await queueState(c);
      assert.deepEqual(
        queued.filter((q) => !q.failed).map((q) => q.obs_hid),
        [newHid],
        "ingest queued the new frame",
      );
      const expected = await canonicalOnly(c, await expectedOf(c));
      const should = differing(before, expected);
      assert.ok(
        should.includes(rows[0]!.obs_hid),
        "the frame at the bias's time takes it",
      );
      assert.ok(should.filter((id) => id !== newHid).length >= 1);

      const run = await worker(db.url, "incremental");
      assert.ok(run.dependentsQueued > 0);
      const after = await canonicalOnly(c, await cacheOf(c));
      assert.deepEqual(
        differing(after, expected),
        [],
        "every frame as the evaluator has it now",
      );
      const idsAfter = await rowIdsOf(c);
      const rewritten = [...new Set([...idsBefore.keys(), ...idsAfter.keys()])]
        .filter((id) => idsBefore.get(id) !== idsAfter.get(id))
        .sort((a, b) => a - b);
      assert.deepEqual(
        rewritten,
        should,
        "exactly the changed frames were rewritten",
      );
      assert.equal(run.outcomes.associated, should.length);
      assert.ok(
        run.outcomes.unchanged > 0,
        "other dependents were evaluated and left alone",
      );

      // the reference's: only the new frame.
      const before2 = await canonicalOnly(c, await cacheOf(c));
      const second = await copyOf(
        c,
        rows[1]!.cal_hid,
        "N20190615S9002.fits",
        rows[1]!.ut,
      );
      await c.query("BEGIN");
      const secondHid = await ingestFrame(c, second);
      await c.query("COMMIT");
      const expected2 = await canonicalOnly(c, await expectedOf(c));
      await worker(db.url, "reference-like", { dependents: false });
      const after2 = await canonicalOnly(c, await cacheOf(c));
      const left = differing(after2, expected2);
      assert.ok(
        left.includes(rows[1]!.obs_hid),
        "the science frame was not re-evaluated",
      );
      assert.ok(!left.includes(secondHid), "the new frame was");
      assert.ok(differing(before2, expected2).includes(rows[1]!.obs_hid));
      // Queuing it, as the reference's cron does, brings it up to date.
      await c.query(
        `INSERT INTO calcachequeue (obs_hid, inprogress, fail_dt, added, sortkey, filename)
         SELECT unnest($1::int[]), false, $2, now(), 'z', 'requeued'`,
        [left, NOT_FAILED],
      );
      await worker(db.url, "cron");
      assert.deepEqual(
        differing(await canonicalOnly(c, await cacheOf(c)), expected2),
        [],
      );
    });
  });

  it("a new version of a calibration file reaches the frames that used the old one", async (t) => {
    const db = await testDatabase(t);
    let usedBy: number[] = [];
    await withClient(db.url, async (c) => {
      await generateCalArchive(c, 20190615, PER_INSTRUMENT);
      await queueAll(c);
    });
    await worker(db.url, "first");
    await withClient(db.url, async (c) => {
      const { rows } = await c.query<{
        cal_hid: number;
        name: string;
        obs: number[];
      }>(
        `SELECT c.cal_hid, f.name, array_agg(DISTINCT c.obs_hid) AS obs
           FROM calcache c JOIN header b ON b.id = c.cal_hid
           JOIN diskfile d ON d.id = b.diskfile_id JOIN file f ON f.id = d.file_id
          WHERE c.caltype = 'bias'
          GROUP BY c.cal_hid, f.name ORDER BY count(*) DESC LIMIT 1`,
      );
      usedBy = rows[0]!.obs;
      const { rows: ut } = await c.query<{ ut: string }>(
        `SELECT to_char(ut_datetime, 'YYYY-MM-DD"T"HH24:MI:SS') AS ut FROM header WHERE id = $1`,
        [rows[0]!.cal_hid],
      );
      // The new version failed QA: no longer anyone's calibration.
      const frame = await copyOf(c, rows[0]!.cal_hid, rows[0]!.name, ut[0]!.ut);
      frame.header.qa_state = "Fail";
      await c.query("BEGIN");
      await ingestFrame(c, frame);
      await c.query("COMMIT");
      const expected = await canonicalOnly(c, await expectedOf(c));
      await worker(db.url, "incremental");
      const after = await canonicalOnly(c, await cacheOf(c));
      assert.deepEqual(differing(after, expected), []);
      for (const obs of usedBy) {
        assert.ok(
          !(after.get(obs) ?? []).some((r) =>
            r.endsWith(` ${rows[0]!.cal_hid}`),
          ),
        );
      }
      const { rows: notes } = await c.query<{ n: string }>(
        "SELECT count(*) AS n FROM calcachequeue WHERE error LIKE $1",
        [`${DEPENDENT_NOTE}%`],
      );
      assert.equal(notes[0]!.n, "0", "dependents are worked and deleted");
    });
    assert.ok(usedBy.length > 0);
  });
});
