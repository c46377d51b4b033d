/**
 * The evaluator against the reference itself: the pinned reference's
 * calibration code (shared/docs/reference/fitsstorage-cal), run by
 * reference-oracle.py on the same generated archive, must write exactly the
 * calcache rows the evaluator gives, frame by frame, in the same order.
 *
 * Needs Debian's python3 with python3-sqlalchemy (1.4) and python3-psycopg2;
 * without them, or without the reference copy, the test is skipped.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";

import { calcacheRows, evaluateFrame } from "../../lib/cal/evaluate.js";
import { withClient } from "../../lib/db/connect.js";
import { packageRoot } from "../../lib/paths.js";
import { generateCalArchive } from "../helpers/cal-archive.js";
import { testDatabase } from "../helpers/db.js";

const PYTHON = "/usr/bin/python3";
const REFERENCE = join(
  packageRoot(),
  "..",
  "shared",
  "docs",
  "reference",
  "fitsstorage-cal",
);
const SCRIPT = join(packageRoot(), "test", "cal", "reference-oracle.py");

function oracleMissing(): string | false {
  if (!existsSync(join(REFERENCE, "fits_storage"))) {
    return `no reference copy at ${REFERENCE}`;
  }
  const probe = spawnSync(PYTHON, ["-c", "import sqlalchemy, psycopg2"]);
  return probe.status === 0
    ? false
    : "needs /usr/bin/python3 with python3-sqlalchemy and python3-psycopg2";
}

const PER_INSTRUMENT = Number(process.env.FFTEST_CAL_ORACLE_FRAMES ?? "150");

for (const seed of [20190615, 7]) {
  it(
    `writes the reference's calcache rows for every frame of a generated archive (seed ${seed})`,
    {
      skip: oracleMissing(),
    },
    async (t) => {
      const db = await testDatabase(t);
      const ours = new Map<number, { rows: unknown[]; failed: boolean }>();
      const hids = await withClient(db.url, async (c) => {
        const archive = await generateCalArchive(c, seed, PER_INSTRUMENT);
        const all = Object.values(archive.headerIds).flat();
        for (const hid of all) {
          const evaluation = await evaluateFrame(c, hid);
          assert.notEqual(evaluation.outcome, "unsupported");
          ours.set(hid, {
            failed: evaluation.outcome === "failed",
            rows: calcacheRows(evaluation).map((r) => [
              r.caltype,
              r.rank,
              r.calHid,
            ]),
          });
        }
        return all;
      });
      const run = spawnSync(
        PYTHON,
        [SCRIPT, REFERENCE, db.url, ...hids.map(String)],
        {
          encoding: "utf8",
          maxBuffer: 256 * 1024 * 1024,
        },
      );
      assert.equal(run.status, 0, run.stderr);
      const theirs = JSON.parse(run.stdout) as Record<
        string,
        { rows: unknown[]; error?: string }
      >;
      let associations = 0;
      const differences: string[] = [];
      for (const hid of hids) {
        const mine = ours.get(hid)!;
        const reference = theirs[String(hid)]!;
        associations += reference.rows.length;
        if (
          mine.failed !== (reference.error !== undefined) ||
          JSON.stringify(mine.rows) !== JSON.stringify(reference.rows)
        ) {
          differences.push(
            `header ${hid}: ours ${JSON.stringify(mine)}\n  reference ${JSON.stringify(reference)}`,
          );
        }
      }
      if (process.env.FFTEST_CAL_ORACLE_STATS !== undefined) {
        const byType = new Map<string, number>();
        for (const r of Object.values(theirs)) {
          for (const [caltype] of r.rows as [string][]) {
            byType.set(caltype, (byType.get(caltype) ?? 0) + 1);
          }
        }
        t.diagnostic(
          JSON.stringify({
            associations,
            failures: Object.values(theirs)
              .filter((r) => r.error !== undefined)
              .map((r) => r.error),
            byType: Object.fromEntries(byType),
          }),
        );
      }
      assert.deepEqual(differences.slice(0, 5), []);
      // The archive is only a test if it has plenty of associations.
      assert.ok(
        associations > hids.length,
        `only ${associations} associations`,
      );
    },
  );
}
