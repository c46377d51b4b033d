/**
 * The set-based rebuild's untimed searches: with no time window, a shape
 * statement keeps, per frame and processing-tag class, only the nearest
 * candidates before and after the frame (binary search in each group's
 * candidates sorted by time). Here every time is the start of a week, so
 * candidates tie on |Δt| on both sides of a frame and at every cut, some
 * have no ut_datetime_secs, and three tag priorities compete. The shape
 * statement must give exactly what the per-frame statement gives, for
 * limits 1, 3 and 7.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import {
  type CalSearch,
  compileSearchParts,
  type FrameContext,
} from "../../lib/cal/core/query.js";
import {
  FRAME_HEADER_COLUMNS,
  type FrameHeaderRow,
  planFrame,
} from "../../lib/cal/evaluate.js";
import {
  ParameterTypes,
  runShape,
  ShapeGroups,
  shapeSpec,
  shapeStatement,
} from "../../lib/cal/rebuild/shapes.js";
import {
  buildCandidateTable,
  candidateTable,
  createWorkTables,
  dropWorkTables,
  WORK_TABLE,
} from "../../lib/cal/rebuild/tables.js";
import type { CalType } from "../../lib/cal/rules/common.js";
import { withClient } from "../../lib/db/connect.js";
import { generateCalArchive } from "../helpers/cal-archive.js";
import { testDatabase } from "../helpers/db.js";

it("untimed shapes keep exactly the per-frame statement's nearest calibrations, ties and classes included", async (t) => {
  const db = await testDatabase(t);
  await withClient(db.url, async (c) => {
    await generateCalArchive(c, 41, 200);
    // Every time on the grid (frames and candidates alike), the seconds
    // recomputed to match; a few candidates lose their seconds.
    await c.query(
      `UPDATE header SET ut_datetime = date_trunc('week', ut_datetime)
        WHERE ut_datetime IS NOT NULL`,
    );
    await c.query(
      `UPDATE header
          SET ut_datetime_secs = CASE WHEN id % 23 = 0 THEN NULL
              ELSE floor(extract(epoch FROM ut_datetime - timestamp '2000-01-01'))::bigint END
        WHERE ut_datetime IS NOT NULL`,
    );
    const { rows: ties } = await c.query<{ n: string }>(
      `SELECT count(*) AS n FROM (
         SELECT ut_datetime_secs FROM header h JOIN gnirs i ON i.header_id = h.id
          WHERE ut_datetime_secs IS NOT NULL
          GROUP BY ut_datetime_secs HAVING count(*) > 1) x`,
    );
    assert.ok(Number(ties[0]!.n) > 5, `${ties[0]!.n} tied times`);

    const { rows: headers } = await c.query<FrameHeaderRow>(
      `SELECT ${FRAME_HEADER_COLUMNS.join(", ")} FROM header h
        WHERE h.instrument = 'GNIRS' AND h.observation_type = 'OBJECT'
        ORDER BY h.id`,
    );
    const { rows: inst } = await c.query<Record<string, unknown>>(
      "SELECT DISTINCT ON (header_id) * FROM gnirs ORDER BY header_id, id",
    );
    const instOf = new Map(inst.map((r) => [r.header_id as number, r]));
    const frames: { id: number; context: FrameContext; camera: unknown }[] = [];
    for (const header of headers) {
      const plan = planFrame(header, () => instOf.get(header.id));
      if (plan.kind === "searches") {
        frames.push({
          id: header.id,
          context: plan.context,
          camera: instOf.get(header.id)?.camera ?? null,
        });
      }
    }
    assert.ok(frames.length > 20, `only ${frames.length} GNIRS frames`);

    await createWorkTables(c);
    await buildCandidateTable(c, "gnirs");
    const types = new ParameterTypes();
    for (const limit of [1, 3, 7]) {
      const search = (camera: unknown): CalSearch => ({
        clauses: [
          { op: "<>", column: "h.observation_type", value: "OBJECT" },
          {
            op: "=",
            column: "i.camera",
            value: typeof camera === "string" ? camera : null,
          },
        ],
        order: { kind: "time", extra: [] },
        limit,
      });
      const groups = new ShapeGroups();
      for (const f of frames) {
        const parts = compileSearchParts(search(f.camera), f.context);
        groups.add(shapeSpec(parts), {
          obsHid: f.id,
          caltype: "flat" as CalType,
          part: 0,
          weaveLimit: null,
          values: parts.values,
        });
      }
      await c.query(`TRUNCATE ${WORK_TABLE}`);
      let nearestStatements = 0;
      for (const shape of groups.shapes.values()) {
        const parameterTypes = await types.of(c, shape);
        const { text } = shapeStatement(
          shape,
          shape.members,
          parameterTypes,
          WORK_TABLE,
          candidateTable("gnirs"),
        );
        if (text.includes("width_bucket")) {
          nearestStatements += 1;
        }
        await runShape(
          c,
          shape,
          shape.members,
          parameterTypes,
          WORK_TABLE,
          candidateTable("gnirs"),
        );
      }
      assert.ok(nearestStatements > 0, "the nearest-candidates form ran");

      const { rows: work } = await c.query<{ obs_hid: number; ids: number[] }>(
        `SELECT obs_hid, array_agg(cal_hid ORDER BY rn) AS ids
           FROM ${WORK_TABLE} GROUP BY obs_hid`,
      );
      const actual = new Map(work.map((r) => [r.obs_hid, r.ids]));
      let compared = 0;
      let withTies = 0;
      for (const f of frames) {
        const parts = compileSearchParts(search(f.camera), f.context);
        const { rows } = await c.query<{ id: number; d: string | null }>(
          `SELECT h.id, abs(h.ut_datetime_secs - ${f.context.utDatetimeSecs}) AS d
             FROM ${parts.from}
            WHERE ${parts.where.join(" AND ")}
            ORDER BY ${parts.order.join(", ")}, h.id DESC, i.id DESC
            LIMIT ${parts.limit}`,
          parts.values,
        );
        const distances = rows.map((r) => r.d);
        if (new Set(distances).size < distances.length) {
          withTies += 1;
        }
        assert.deepEqual(
          actual.get(f.id) ?? [],
          rows.map((r) => r.id),
          `frame ${f.id}, limit ${limit}`,
        );
        compared += 1;
      }
      assert.equal(compared, frames.length);
      if (limit > 1) {
        assert.ok(withTies > 0, `limit ${limit}: some frame keeps tied rows`);
      }
    }
    await dropWorkTables(c);
  });
});
