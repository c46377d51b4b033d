/**
 * The rebuild's memoized frame planner against the evaluator's own planning
 * (`planFrame` + `compileSearchParts`, what `evaluateFrame` runs): on
 * generated archives, every covered frame gets the same outcome and the same
 * compiled searches (shape, caltype, part, weave limit and every value, in
 * order), whether the frames are planned in id order or in reverse (so each
 * reuses plans learned from different frames); and so does a frame made to
 * differ from an already planned one in a single input (any header or
 * instrument column, its time, its types), planned after it.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import { Random } from "../../fixtures/synthetic/random.js";
import { compileSearchParts } from "../../lib/cal/core/query.js";
import { type FrameHeaderRow, planFrame } from "../../lib/cal/evaluate.js";
import { type BatchRows, readBatch } from "../../lib/cal/rebuild/index.js";
import { FramePlanner } from "../../lib/cal/rebuild/plan.js";
import {
  ShapeGroups,
  type ShapeMember,
  type ShapeSpec,
  shapeSpec,
} from "../../lib/cal/rebuild/shapes.js";
import { INSTRUMENT_RULES } from "../../lib/cal/rules/index.js";
import { withClient } from "../../lib/db/connect.js";
import {
  generateCalArchive,
  replicateCalArchive,
} from "../helpers/cal-archive.js";
import { testDatabase } from "../helpers/db.js";

type Row = Record<string, unknown> | undefined;

interface Planned {
  outcome: string;
  reason?: string;
  searches: string[];
}

function search(
  spec: ShapeSpec,
  m: Omit<ShapeMember, "obsHid" | "values">,
  values: unknown[],
): string {
  return JSON.stringify([spec.key, m.caltype, m.part, m.weaveLimit, values]);
}

/** What the evaluator plans and compiles for a frame. */
function reference(header: FrameHeaderRow, row: (t: string) => Row): Planned {
  const plan = planFrame(header, row);
  if (plan.kind === "evaluated") {
    const { outcome, reason } = plan.evaluation;
    return { outcome, reason, searches: [] };
  }
  const searches: string[] = [];
  for (const { caltype, lookup } of plan.steps) {
    const parts =
      lookup.kind === "search"
        ? [lookup.search]
        : lookup.kind === "interleave"
          ? lookup.parts
          : [];
    parts.forEach((s, part) => {
      const compiled = compileSearchParts(s, plan.context);
      searches.push(
        search(
          shapeSpec(compiled),
          {
            caltype,
            part,
            weaveLimit: lookup.kind === "interleave" ? lookup.limit : null,
          },
          compiled.values,
        ),
      );
    });
  }
  return plan.failure === undefined
    ? { outcome: "associated", reason: undefined, searches }
    : { outcome: "failed", reason: plan.failure.reason, searches };
}

/** Keeps the order the planner adds a frame's searches in. */
class InOrder extends ShapeGroups {
  readonly order: string[] = [];

  override add(spec: ShapeSpec, member: ShapeMember): void {
    this.order.push(search(spec, member, member.values));
    super.add(spec, member);
  }
}

function memoized(
  planner: FramePlanner,
  header: FrameHeaderRow,
  row: (t: string) => Row,
): Planned {
  const groups = new InOrder();
  const { outcome, reason } = planner.plan(header, row, groups);
  return { outcome, reason, searches: groups.order };
}

function rowOf(rows: BatchRows, id: number) {
  return (table: string): Row => rows.instrumentRows.get(table)?.get(id);
}

const CASES = [
  { seed: 20190615, frames: 150, copies: 0, shiftDays: 0 },
  // Copies 250 days apart: frames alike but for their time, across years.
  { seed: 3, frames: 40, copies: 3, shiftDays: 250 },
];

for (const { seed, frames, copies, shiftDays } of CASES) {
  it(`memoized plans equal the evaluator's for every frame (seed ${seed}, ${copies} copies)`, async (t) => {
    const db = await testDatabase(t);
    const rows = await withClient(db.url, async (c) => {
      await generateCalArchive(c, seed, frames);
      if (copies > 0) {
        await replicateCalArchive(c, copies, shiftDays);
      }
      const { rows: ids } = await c.query<{ id: number }>(
        "SELECT id FROM header ORDER BY id",
      );
      return readBatch(
        c,
        ids.map((r) => r.id),
      );
    });
    const expected = rows.headers.map((h) => reference(h, rowOf(rows, h.id)));
    const forward = new FramePlanner();
    rows.headers.forEach((h, i) => {
      assert.deepEqual(
        memoized(forward, h, rowOf(rows, h.id)),
        expected[i],
        `frame ${h.id}`,
      );
    });
    const backward = new FramePlanner();
    for (let i = rows.headers.length - 1; i >= 0; i--) {
      const h = rows.headers[i]!;
      assert.deepEqual(
        memoized(backward, h, rowOf(rows, h.id)),
        expected[i],
        `frame ${h.id} (reverse order)`,
      );
    }
    t.diagnostic(
      JSON.stringify({
        frames: rows.headers.length,
        hits: forward.hits,
        misses: forward.misses,
      }),
    );
    // The memo is in play: many frames reuse a plan, and many do not.
    assert.ok(forward.misses > 20, `${forward.misses} misses`);
    assert.ok(
      forward.hits > (forward.hits + forward.misses) / 3,
      `${forward.hits} hits, ${forward.misses} misses`,
    );
    assert.ok(expected.some((e) => e.outcome === "failed"));
    assert.ok(expected.some((e) => e.searches.length > 3));

    // One input changed at a time, to another frame's value of it, after
    // the original was planned: the memo must tell the two apart.
    const rng = new Random(seed);
    const pick = <T>(xs: readonly T[]): T => xs[rng.int(0, xs.length - 1)]!;
    const columns = Object.keys(rows.headers[0]!).filter((k) => k !== "id");
    let changed = 0;
    let differing = 0;
    for (let n = 0; n < 400; n++) {
      const h = pick(rows.headers);
      const rules = INSTRUMENT_RULES.find((r) =>
        r.instruments.includes(h.instrument as string),
      );
      const row =
        rules === undefined ? undefined : rowOf(rows, h.id)(rules.table);
      const other = pick(rows.headers);
      const mutated = { ...h };
      let mutatedRow = row;
      const fields = [
        ...columns.map((c) => ["h", c] as const),
        ...(rules?.descriptors ?? []).map((c) => ["i", c] as const),
      ];
      const [where, field] = pick(fields);
      if (where === "h") {
        mutated[field] =
          field === "ut_iso" && h.ut_iso !== null && rng.int(0, 1) === 0
            ? `${Number(h.ut_iso.slice(0, 4)) + pick([-3, -1, 1, 2])}${h.ut_iso.slice(4)}`
            : other[field];
      } else {
        const otherRow = rowOf(rows, other.id)(rules!.table);
        mutatedRow =
          row === undefined
            ? otherRow
            : { ...row, [field]: otherRow?.[field] ?? null };
      }
      const lookup = (table: string): Row =>
        rules !== undefined && table === rules.table
          ? mutatedRow
          : rowOf(rows, h.id)(table);
      const want = reference(mutated, lookup);
      assert.deepEqual(
        memoized(forward, mutated, lookup),
        want,
        `frame ${h.id} with ${where}.${field} = ${JSON.stringify(mutated[field] ?? mutatedRow?.[field])}`,
      );
      changed += 1;
      if (
        JSON.stringify(want) !==
        JSON.stringify(expected[rows.headers.indexOf(h)])
      ) {
        differing += 1;
      }
    }
    t.diagnostic(JSON.stringify({ changed, differing }));
    assert.ok(differing > 40, `only ${differing} changes changed the plan`);
  });
}
