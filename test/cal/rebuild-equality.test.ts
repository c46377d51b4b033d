/**
 * The set-based rebuild against the per-frame evaluator, its oracle: on
 * generated archives of all four instruments, the cache the rebuild leaves
 * holds, for every covered frame, exactly the rows `evaluateFrame` gives,
 * ranks included.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import { calcacheRows, evaluateFrame } from "../../lib/cal/evaluate.js";
import { rebuildCalcache } from "../../lib/cal/rebuild/index.js";
import { withClient } from "../../lib/db/connect.js";
import {
  generateCalArchive,
  replicateCalArchive,
} from "../helpers/cal-archive.js";
import { testDatabase } from "../helpers/db.js";

const PER_INSTRUMENT = Number(process.env.FFTEST_CAL_REBUILD_FRAMES ?? "200");

const CASES = [
  { seed: 20190615, frames: PER_INSTRUMENT, copies: 0, shiftDays: 0 },
  { seed: 7, frames: PER_INSTRUMENT, copies: 0, shiftDays: 0 },
  // Copies 250 days apart: windows reach into the neighbouring copies, so
  // the D-day buckets of the time-window join meet at every offset.
  { seed: 3, frames: 60, copies: 3, shiftDays: 250 },
];

for (const { seed, frames, copies, shiftDays } of CASES) {
  it(`rebuild equals the per-frame evaluator, row for row (seed ${seed}, ${frames} frames per instrument, ${copies} copies)`, async (t) => {
    const db = await testDatabase(t);
    const outcomes = { skipped: 0, unsupported: 0, failed: 0, associated: 0 };
    const expected = await withClient(db.url, async (c) => {
      await generateCalArchive(c, seed, frames);
      if (copies > 0) {
        await replicateCalArchive(c, copies, shiftDays);
      }
      const { rows } = await c.query<{ id: number }>(
        `SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id
          WHERE d.canonical AND h.engineering = false ORDER BY h.id`,
      );
      const out: string[] = [];
      for (const { id } of rows) {
        const e = await evaluateFrame(c, id);
        outcomes[e.outcome] += 1;
        for (const r of calcacheRows(e)) {
          out.push(`${r.obsHid} ${r.caltype} ${r.rank} ${r.calHid}`);
        }
      }
      return out;
    });
    const report = await rebuildCalcache({
      databaseUrl: db.url,
      jobs: 2,
      batchSize: 97,
    });
    const actual = await withClient(db.url, async (c) => {
      const { rows } = await c.query<{ line: string }>(
        `SELECT obs_hid || ' ' || caltype || ' ' || rank || ' ' || cal_hid AS line FROM calcache`,
      );
      return rows.map((r) => r.line);
    });
    const e = new Set(expected);
    const a = new Set(actual);
    const missing = expected.filter((x) => !a.has(x));
    const extra = actual.filter((x) => !e.has(x));
    t.diagnostic(
      JSON.stringify({
        expected: expected.length,
        actual: actual.length,
        missing: missing.length,
        extra: extra.length,
        shapes: report.shapes,
        statements: report.statements,
      }),
    );
    assert.deepEqual(
      { missing: missing.slice(0, 10), extra: extra.slice(0, 10) },
      { missing: [], extra: [] },
    );
    assert.deepEqual(report.outcomes, outcomes);
    assert.ok(outcomes.failed > 0 && outcomes.skipped > 0);
    assert.ok(expected.length > 500, `only ${expected.length} rows`);
  });
}
