/**
 * What every calibration search shares (calibration.py CalQuery), when a
 * frame is skipped (calcachequeue.py), and what is written to calcache.
 * GMOS biases are the vehicle.
 */
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";

import { writeFrameAssociations } from "../../lib/cal/calcache.js";
import { calcacheRows, headerIdOfDiskfile } from "../../lib/cal/evaluate.js";
import {
  type FrameSpec,
  openSceneDatabase,
  plusDays,
  type Scene,
  scene,
  type SceneDatabase,
} from "../helpers/cal.js";
import {
  BIAS,
  BPM,
  IMAGING_SCIENCE,
  PHOTSTD,
  PROCESSED_BIAS,
  T0,
} from "./gmos-fixtures.js";

let db: SceneDatabase;
before(async () => {
  db = await openSceneDatabase();
});
after(() => db.close());

async function gmos(t: TestContext): Promise<{
  s: Scene;
  add: (label: string, base: FrameSpec, spec?: FrameSpec) => Promise<number>;
}> {
  const s = await scene(t, db.client);
  await s.processingTag("sq-2024", 1, true);
  return { s, add: (label, base, spec) => s.add(label, "gmos", base, spec) };
}

const at = (days: number) => ({ header: { ut_datetime: plusDays(T0, days) } });

describe("the base query", () => {
  it("takes canonical diskfiles only: an older version of a file is not a calibration", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("old-version", BIAS, { ...at(-1), canonical: false });
    await add("b", BIAS, at(-2));
    assert.deepEqual(await s.of("sci", "bias"), ["b"]);
  });

  it("drops failed QA, and NULL qa_state with it (`!= 'Fail'` in SQL)", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("fail", BIAS, { header: { ut_datetime: T0, qa_state: "Fail" } });
    await add("null-qa", BIAS, { header: { ut_datetime: T0, qa_state: null } });
    await add("usable", BIAS, {
      header: { ut_datetime: plusDays(T0, -1), qa_state: "Usable" },
    });
    await add("check", BIAS, {
      header: { ut_datetime: plusDays(T0, -2), qa_state: "CHECK" },
    });
    assert.deepEqual(await s.of("sci", "bias"), ["usable", "check"]);
  });

  it("hides engineering calibrations from non-engineering science only", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("eng-sci", IMAGING_SCIENCE, { header: { engineering: true } });
    await add("null-sci", IMAGING_SCIENCE, { header: { engineering: null } });
    await add("eng", BIAS, { header: { ut_datetime: T0, engineering: true } });
    await add("null-eng", BIAS, {
      header: { ut_datetime: plusDays(T0, -1), engineering: null },
    });
    await add("b", BIAS, at(-2));
    assert.deepEqual(await s.of("sci", "bias"), ["b"]);
    assert.deepEqual(await s.of("eng-sci", "bias"), ["eng", "null-eng", "b"]);
    // Only an engineering flag of exactly False filters.
    assert.deepEqual(await s.of("null-sci", "bias"), ["eng", "null-eng", "b"]);
  });

  it("needs an instrument row: a calibration without one is never found", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("bare", BIAS, { ...at(0), inst: null });
    await add("b", BIAS, at(-1));
    assert.deepEqual(await s.of("sci", "bias"), ["b"]);
  });

  it("keeps processed frames only under a published processing tag, and raw ones whatever their tag", async (t) => {
    const { s, add } = await gmos(t);
    await s.processingTag("draft", 9, false);
    await add("sci", IMAGING_SCIENCE);
    await add("unpublished", PROCESSED_BIAS, {
      header: { ut_datetime: T0, processing_tag: "draft" },
    });
    await add("untagged", PROCESSED_BIAS, {
      header: { ut_datetime: T0, processing_tag: null },
    });
    await add("published", PROCESSED_BIAS, at(-3));
    await add("raw-draft", BIAS, {
      header: { ut_datetime: T0, processing_tag: "draft" },
    });
    await add("null-processing", BIAS, {
      header: { ut_datetime: T0, processing: null },
    });
    assert.deepEqual(await s.of("sci", "processed_bias"), ["published"]);
    assert.deepEqual(await s.of("sci", "bias"), ["raw-draft"]);
  });

  it("orders by tag priority before time, with untagged (raw) frames first", async (t) => {
    const { s, add } = await gmos(t);
    await s.processingTag("best", 5, true);
    await add("sci", IMAGING_SCIENCE);
    await add("pb-near", PROCESSED_BIAS, at(-1));
    await add("pb-best-far", PROCESSED_BIAS, {
      header: { ut_datetime: plusDays(T0, -80), processing_tag: "best" },
    });
    assert.deepEqual(await s.of("sci", "processed_bias"), ["pb-best-far"]);

    // The photometric standard search has no RAW condition, so raw and
    // processed frames compete: a raw frame's NULL priority sorts first.
    await add("phot-processed-near", PHOTSTD, {
      header: {
        ut_datetime: plusDays(T0, 0.01),
        processing: "Science-Quality",
        processing_tag: "best",
        reduction: "PROCESSED_STANDARD",
      },
    });
    await add("phot-raw-far", PHOTSTD, at(0.9));
    assert.deepEqual(await s.of("sci", "photometric_standard"), [
      "phot-raw-far",
      "phot-processed-near",
    ]);
  });

  it("puts the more processed first at equal distance and priority", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("ql", PROCESSED_BIAS, {
      header: { ut_datetime: plusDays(T0, -1), processing: "Quick-Look" },
    });
    await add("sq", PROCESSED_BIAS, {
      header: { ut_datetime: plusDays(T0, 1), processing: "Science-Quality" },
    });
    assert.deepEqual(await s.of("sci", "processed_bias"), ["sq"]);
  });

  it("breaks a tie in time by the newer entry", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("newer", BIAS, { ...at(-1), entrytime: "2023-01-01T00:00:00Z" });
    await add("older", BIAS, { ...at(1), entrytime: "2022-01-01T00:00:00Z" });
    assert.deepEqual(await s.of("sci", "bias"), ["newer", "older"]);
  });

  it("measures time from the stored ut_datetime_secs of the calibration", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    // A stale ut_datetime_secs decides the order, not ut_datetime.
    await add("stale", BIAS, {
      header: { ut_datetime: plusDays(T0, -2), ut_datetime_secs: 0 },
    });
    await add("no-secs", BIAS, {
      header: { ut_datetime: plusDays(T0, -3), ut_datetime_secs: null },
    });
    await add("b", BIAS, at(-4));
    assert.deepEqual(await s.of("sci", "bias"), ["b", "stale", "no-secs"]);
  });
});

describe("frames the reference skips or fails", () => {
  it("skips a frame with no ut_datetime, no instrument or failed QA", async (t) => {
    const { s, add } = await gmos(t);
    await add("no-time", IMAGING_SCIENCE, { header: { ut_datetime: null } });
    await add("no-inst", IMAGING_SCIENCE, { header: { instrument: null } });
    await add("failed", IMAGING_SCIENCE, { header: { qa_state: "Fail" } });
    await add("b", BIAS, at(-1));
    for (const [label, reason] of [
      ["no-time", "no ut_datetime"],
      ["no-inst", "no instrument"],
      ["failed", "qa_state is Fail"],
    ] as const) {
      const e = await s.evaluate(label);
      assert.equal(e.outcome, "skipped");
      assert.equal(e.reason, reason);
      assert.deepEqual(e.caltypes, []);
    }
  });

  it("fails a frame whose types literal_eval cannot read, with nothing written", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE, { header: { types: null } });
    const e = await s.evaluate("sci");
    assert.equal(e.outcome, "failed");
    assert.deepEqual(e.caltypes, []);
  });

  it("has nothing for an instrument with no rules, and says so for one not implemented yet", async (t) => {
    const { s, add } = await gmos(t);
    await add("trecs", IMAGING_SCIENCE, { header: { instrument: "TReCS" } });
    await add("ghost", IMAGING_SCIENCE, { header: { instrument: "GHOST" } });
    const trecs = await s.evaluate("trecs");
    assert.equal(trecs.outcome, "associated");
    assert.deepEqual(trecs.caltypes, []);
    assert.equal((await s.evaluate("ghost")).outcome, "unsupported");
  });

  it("finds a frame by its diskfile", async (t) => {
    const { s, add } = await gmos(t);
    const hid = await add("sci", IMAGING_SCIENCE);
    const { rows } = await s.client.query<{ diskfile_id: number }>(
      "SELECT diskfile_id FROM header WHERE id = $1",
      [hid],
    );
    assert.equal(await headerIdOfDiskfile(s.client, rows[0]!.diskfile_id), hid);
    await assert.rejects(headerIdOfDiskfile(s.client, -1), /no header row/);
  });

  it("evaluates a non-canonical science frame all the same", async (t) => {
    const { s, add } = await gmos(t);
    await add("old-sci", IMAGING_SCIENCE, { canonical: false });
    await add("b", BIAS, at(-1));
    assert.deepEqual(await s.of("old-sci", "bias"), ["b"]);
  });
});

describe("calcache rows", () => {
  it("ranks from 0 per type, BPMs at −1, and replaces only the types evaluated", async (t) => {
    const { s, add } = await gmos(t);
    const sci = await add("sci", IMAGING_SCIENCE);
    const b1 = await add("b1", BIAS, at(-1));
    const b2 = await add("b2", BIAS, at(2));
    const bpm = await add("bpm", BPM);
    // A row of a type that no longer applies stays, as in the reference.
    await s.client.query(
      "INSERT INTO calcache (obs_hid, cal_hid, caltype, rank) VALUES ($1, $2, 'arc', 0), ($1, $2, 'bias', 7)",
      [sci, b2],
    );
    const evaluation = await s.evaluate("sci");
    const rows = calcacheRows(evaluation);
    assert.deepEqual(
      rows.filter((r) => r.caltype === "bias" || r.caltype === "processed_bpm"),
      [
        { obsHid: sci, calHid: b1, caltype: "bias", rank: 0 },
        { obsHid: sci, calHid: b2, caltype: "bias", rank: 1 },
        { obsHid: sci, calHid: bpm, caltype: "processed_bpm", rank: -1 },
      ],
    );
    assert.equal(await writeFrameAssociations(s.client, evaluation), 3);
    const { rows: stored } = await s.client.query<{
      cal_hid: number;
      caltype: string;
      rank: number;
    }>(
      "SELECT cal_hid, caltype::text, rank FROM calcache WHERE obs_hid = $1 ORDER BY caltype, rank",
      [sci],
    );
    assert.deepEqual(stored, [
      { cal_hid: b2, caltype: "arc", rank: 0 },
      { cal_hid: b1, caltype: "bias", rank: 0 },
      { cal_hid: b2, caltype: "bias", rank: 1 },
      { cal_hid: bpm, caltype: "processed_bpm", rank: -1 },
    ]);
  });
});
