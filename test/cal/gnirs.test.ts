/**
 * GNIRS rules (calibration_gnirs.py), one scenario per rule, with near
 * misses at the tolerance and window boundaries and the wavelength limits
 * that choose between lamp-on and lamp-off flats.
 */
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";

import {
  type FrameSpec,
  like,
  openSceneDatabase,
  plusDays,
  type Scene,
  scene,
  type SceneDatabase,
} from "../helpers/cal.js";

let db: SceneDatabase;
before(async () => {
  db = await openSceneDatabase();
});
after(() => db.close());

const T0 = "2018-05-24T08:00:00";
const at = (days: number) => ({ header: { ut_datetime: plusDays(T0, days) } });

const SPECTRUM: FrameSpec = {
  header: {
    instrument: "GNIRS",
    ut_datetime: T0,
    observation_type: "OBJECT",
    observation_class: "science",
    observation_id: "GN-2018A-Q-1-10",
    spectroscopy: true,
    exposure_time: 120,
    coadds: 1,
    detector_binning: "1x1",
    central_wavelength: 2.2,
    gcal_lamp: "None",
  },
  inst: {
    disperser: "32/mm_G5506",
    filter_name: "X_G0518",
    read_mode: "Bright Objects",
    well_depth_setting: "Shallow",
    camera: "LongBlue_G5542",
    focal_plane_mask: "0.30arcsec_G5530",
    array_name: "SN7638228.1",
  },
  tags: ["GEMINI", "GNIRS", "LS", "NORTH", "RAW", "SPECT"],
};
const XD = like(SPECTRUM, {
  inst: {
    disperser: "32/mm_G5506&SXD_G5536",
    camera: "ShortBlue_G5540",
    focal_plane_mask: "0.30arcsec&SCXD_G5531",
  },
  tags: ["GEMINI", "GNIRS", "RAW", "SPECT", "XD"],
});
const IMAGING = like(SPECTRUM, {
  header: { spectroscopy: false },
  inst: { disperser: "MIRROR", focal_plane_mask: "Acq_G5530" },
  tags: ["GEMINI", "GNIRS", "IMAGE", "RAW"],
});
const flatOf = (base: FrameSpec, lamp: string): FrameSpec =>
  like(base, {
    header: {
      observation_type: "FLAT",
      observation_class: "partnerCal",
      gcal_lamp: lamp,
      observation_id: "GN-2018A-Q-1-11",
    },
  });
const STAR = like(SPECTRUM, {
  header: { observation_class: "partnerCal", object: "HIP 1234" },
  tags: ["GEMINI", "GNIRS", "LS", "RAW", "SPECT", "STANDARD", "TELLURIC"],
});

async function gnirs(t: TestContext): Promise<{
  s: Scene;
  add: (label: string, base: FrameSpec, spec?: FrameSpec) => Promise<number>;
}> {
  const s = await scene(t, db.client);
  await s.processingTag("sq", 1, true);
  return { s, add: (label, base, spec) => s.add(label, "gnirs", base, spec) };
}

async function applicable(s: Scene, label: string): Promise<string[]> {
  return (await s.evaluate(label)).caltypes.map((c) => c.caltype);
}

const STARS = [
  "telluric",
  "processed_telluric",
  "standard",
  "processed_standard",
];

describe("GNIRS applicable calibration types", () => {
  const cases: [string, FrameSpec, string[]][] = [
    [
      "imaging science",
      IMAGING,
      ["dark", "flat", "lampoff_flat", "processed_flat", "processed_bpm"],
    ],
    [
      "imaging acquisition",
      like(IMAGING, { header: { observation_class: "acqCal" } }),
      ["processed_bpm"],
    ],
    [
      "cross-dispersed",
      XD,
      [...STARS, "arc", "flat", "pinhole", "processed_bpm"],
    ],
    [
      "no arc from 2.8 µm",
      like(XD, { header: { central_wavelength: 2.8 } }),
      [...STARS, "flat", "pinhole", "processed_bpm"],
    ],
    [
      "short camera: a flat at exactly 2.7 µm (Decimal('2.7') < 2.7 in Python)",
      like(SPECTRUM, {
        header: { central_wavelength: 2.7 },
        inst: { camera: "ShortBlue_G5540" },
      }),
      [...STARS, "arc", "flat", "processed_bpm"],
    ],
    [
      "short camera: a lamp-off flat at 2.700001 µm",
      like(SPECTRUM, {
        header: { central_wavelength: 2.700001 },
        inst: { camera: "ShortBlue_G5540" },
      }),
      [...STARS, "arc", "lampoff_flat", "processed_bpm"],
    ],
    [
      "long camera, 32/mm: lamp-off from 4.25 µm",
      like(SPECTRUM, { header: { central_wavelength: 4.25 } }),
      [...STARS, "lampoff_flat", "processed_bpm"],
    ],
    [
      "long camera, 32/mm: a flat below 4.25 µm",
      like(SPECTRUM, { header: { central_wavelength: 4.249999 } }),
      [...STARS, "flat", "processed_bpm"],
    ],
    [
      "long camera, 111/mm: a flat at 4.25 µm, lamp-off from 4.3",
      like(SPECTRUM, {
        header: { central_wavelength: 4.25 },
        inst: { disperser: "111/mm_G5505" },
      }),
      [...STARS, "flat", "processed_bpm"],
    ],
    [
      "no camera: no flat at all",
      like(SPECTRUM, { inst: { camera: null } }),
      [...STARS, "arc", "processed_bpm"],
    ],
    [
      "an IRhigh flat wants a lamp-off flat",
      flatOf(SPECTRUM, "IRhigh"),
      ["lampoff_flat", "processed_bpm"],
    ],
    ["a QH flat", flatOf(SPECTRUM, "QH"), ["processed_bpm"]],
  ];
  for (const [name, spec, expected] of cases) {
    it(name, async (t) => {
      const { s, add } = await gnirs(t);
      await add("sci", spec);
      assert.deepEqual(await applicable(s, "sci"), expected);
    });
  }

  it("fails a spectrum with no central wavelength, as the reference's TypeError does", async (t) => {
    const { s, add } = await gnirs(t);
    await add("sci", SPECTRUM, { header: { central_wavelength: null } });
    const evaluation = await s.evaluate("sci");
    assert.equal(evaluation.outcome, "failed");
    assert.match(evaluation.reason ?? "", /TypeError/);
    assert.deepEqual(evaluation.caltypes, []);
  });
});

describe("GNIRS rules", () => {
  it("dark: exposure, read mode, well depth, array and coadds exactly, within 90 days", async (t) => {
    const { s, add } = await gnirs(t);
    const DARK = like(IMAGING, {
      header: { observation_type: "DARK", observation_class: "dayCal" },
    });
    await add("sci", IMAGING);
    await add("d", DARK, at(-1));
    await add("coadds", DARK, { header: { ut_datetime: T0, coadds: 2 } });
    await add("array", DARK, {
      ...at(0),
      inst: { array_name: "SN7638228.1,X" },
    });
    await add("read", DARK, { ...at(0), inst: { read_mode: "Faint Objects" } });
    await add("90d", DARK, at(90));
    await add("filter-free", DARK, {
      ...at(-2),
      inst: { filter_name: "Dark" },
    });
    assert.deepEqual(await s.of("sci", "dark"), ["d", "filter-free"]);
  });

  it("flat: IRhigh or QH lamps of the setup within 90 days, the science's own observation first at equal time", async (t) => {
    const { s, add } = await gnirs(t);
    await add("sci", SPECTRUM, { header: { central_wavelength: 2.0 } });
    const FLAT = flatOf(SPECTRUM, "IRhigh");
    const cwl = { central_wavelength: 2.0 };
    await add("other-obs", FLAT, {
      header: { ...cwl, ut_datetime: plusDays(T0, -1) },
      entrytime: "2024-06-01T00:00:00Z",
    });
    await add("same-obs", FLAT, {
      header: {
        ...cwl,
        ut_datetime: plusDays(T0, 1),
        observation_id: "GN-2018A-Q-1-10",
      },
      entrytime: "2024-01-01T00:00:00Z",
    });
    await add("qh", FLAT, {
      header: { ...cwl, ut_datetime: plusDays(T0, -2), gcal_lamp: "QH" },
    });
    await add("off", FLAT, {
      header: { ...cwl, ut_datetime: plusDays(T0, -0.5), gcal_lamp: "Off" },
    });
    await add("90d", FLAT, {
      header: { ...cwl, ut_datetime: plusDays(T0, -90) },
    });
    await add("mask", FLAT, {
      header: { ...cwl, ut_datetime: plusDays(T0, -0.5) },
      inst: { focal_plane_mask: "0.45arcsec_G5530" },
    });
    await add("cwl", FLAT, {
      header: { ut_datetime: plusDays(T0, -0.5), central_wavelength: 2.001 },
    });
    assert.deepEqual(await s.of("sci", "flat"), [
      "same-obs",
      "other-obs",
      "qh",
    ]);
  });

  it("flat: lamp-off GCAL flats count too from 4.25 µm (with a camera that gets flats there)", async (t) => {
    const { s, add } = await gnirs(t);
    const LONG = like(SPECTRUM, {
      header: { central_wavelength: 4.25 },
      inst: { disperser: "111/mm_G5505" },
    });
    await add("sci", LONG);
    await add("off", flatOf(LONG, "Off"), at(-1));
    await add("irlow", flatOf(LONG, "IRlow"), at(-0.5));
    assert.deepEqual(await s.of("sci", "flat"), ["off"]);
  });

  it("flat: cross-dispersed data interleave IRhigh and QH flats; HR-IFU drops acqCal flats from the IRhigh list only", async (t) => {
    const { s, add } = await gnirs(t);
    await add("sci", XD);
    await add("hr", XD, { inst: { focal_plane_mask: "HR-IFU_G5546" } });
    for (let i = 1; i <= 3; i++) {
      await add(`ir${i}`, flatOf(XD, "IRhigh"), at(-i));
    }
    await add("qh1", flatOf(XD, "QH"), at(-0.5));
    const HR = { inst: { focal_plane_mask: "HR-IFU_G5546" } };
    await add("hr-ir", flatOf(XD, "IRhigh"), { ...at(-2), ...HR });
    await add("hr-ir-acq", flatOf(XD, "IRhigh"), {
      header: { ut_datetime: plusDays(T0, -1), observation_class: "acqCal" },
      ...HR,
    });
    await add("hr-qh-acq", flatOf(XD, "QH"), {
      header: { ut_datetime: plusDays(T0, -1), observation_class: "acqCal" },
      ...HR,
    });
    assert.deepEqual(await s.of("sci", "flat"), ["ir1", "qh1", "ir2", "ir3"]);
    assert.deepEqual(await s.of("hr", "flat"), ["hr-ir", "hr-qh-acq"]);
  });

  it("processed flat: one, with no time window", async (t) => {
    const { s, add } = await gnirs(t);
    await add("sci", IMAGING);
    const PROCESSED = like(flatOf(IMAGING, "IRhigh"), {
      header: {
        reduction: "PROCESSED_FLAT",
        processing: "Science-Quality",
        processing_tag: "sq",
      },
    });
    await add("pf-3y", PROCESSED, at(-1000));
    await add("pf-5y", PROCESSED, at(-1800));
    assert.deepEqual(await s.of("sci", "processed_flat"), ["pf-3y"]);
  });

  it("flat: a PINHOLE-tagged science matches only the decker, and fails without one", async (t) => {
    const { s, add } = await gnirs(t);
    const TAGS = ["GEMINI", "GNIRS", "PINHOLE", "RAW", "SPECT", "XD"];
    await add("sci", XD, {
      inst: { focal_plane_mask: "SmPinholes_G5522&SCXD_G5531" },
      tags: TAGS,
    });
    await add("no-decker", XD, {
      inst: { focal_plane_mask: "SmPinholes_G5522" },
      tags: TAGS,
    });
    await add("slit", flatOf(XD, "IRhigh"), at(-1));
    await add("other-decker", flatOf(XD, "IRhigh"), {
      ...at(-0.5),
      inst: { focal_plane_mask: "0.30arcsec&LCXD_G5532" },
    });
    assert.deepEqual(await s.of("sci", "flat"), ["slit"]);
    const failed = await s.evaluate("no-decker");
    assert.equal(failed.outcome, "failed");
    // The types before flat are written; flat's rows are gone.
    assert.deepEqual(
      failed.caltypes.map((c) => c.caltype),
      [...STARS, "arc", "flat"],
    );
    assert.deepEqual(failed.caltypes.at(-1)?.calHids, []);
  });

  it("arc: the setup and wavelength ±0.001 µm, the closest within 365 days", async (t) => {
    const { s, add } = await gnirs(t);
    const ARC = like(XD, {
      header: { observation_type: "ARC", observation_class: "partnerCal" },
    });
    await add("sci", XD);
    await add("300d", ARC, at(-300));
    await add("365d", ARC, at(-365));
    await add("camera", ARC, { ...at(-1), inst: { camera: "LongBlue_G5542" } });
    await add("cwl", ARC, {
      header: { ut_datetime: plusDays(T0, -1), central_wavelength: 2.201 },
    });
    assert.deepEqual(await s.of("sci", "arc"), ["300d"]);
  });

  it("pinhole: disperser, camera and array (not the mask), 5 within 365 days", async (t) => {
    const { s, add } = await gnirs(t);
    const PINHOLE = like(XD, {
      header: { observation_type: "PINHOLE", observation_class: "partnerCal" },
      inst: { focal_plane_mask: "SmPinholes_G5522&SCXD_G5531" },
    });
    await add("sci", XD);
    for (let i = 1; i <= 6; i++) {
      await add(`p${i}`, PINHOLE, at(-i * 10));
    }
    await add("array", PINHOLE, {
      ...at(0),
      inst: { array_name: "SN7638228.1,X" },
    });
    assert.deepEqual(await s.of("sci", "pinhole"), [
      "p1",
      "p2",
      "p3",
      "p4",
      "p5",
    ]);
  });

  it("lampoff_flat: GCAL-off flats of the setup within a day", async (t) => {
    const { s, add } = await gnirs(t);
    await add("flat", flatOf(SPECTRUM, "IRhigh"));
    await add("off", flatOf(SPECTRUM, "Off"), at(0.5));
    await add("off-1d", flatOf(SPECTRUM, "Off"), at(-1));
    assert.deepEqual(await s.of("flat", "lampoff_flat"), ["off"]);
  });

  it("telluric: raw partnerCal/progCal spectra with QA Pass or Undefined within a day; processed ones need only the tag", async (t) => {
    const { s, add } = await gnirs(t);
    await add("sci", SPECTRUM);
    await add("pass", STAR, at(0.5));
    await add("undefined", STAR, {
      header: { ut_datetime: plusDays(T0, -0.6), qa_state: "Undefined" },
    });
    await add("usable", STAR, {
      header: { ut_datetime: plusDays(T0, 0.1), qa_state: "Usable" },
    });
    await add("prog", STAR, {
      header: { ut_datetime: plusDays(T0, 0.7), observation_class: "progCal" },
    });
    await add("1d", STAR, at(1));
    await add("untagged-processed", STAR, {
      header: {
        ut_datetime: plusDays(T0, 0.05),
        reduction: "PROCESSED_TELLURIC",
        processing: "Science-Quality",
        processing_tag: "sq",
      },
      tags: ["GNIRS", "SPECT"],
    });
    assert.deepEqual(await s.of("sci", "telluric"), [
      "pass",
      "undefined",
      "prog",
    ]);
    // A raw frame with the TELLURIC tag is a "processed telluric" too, and
    // the raw ones' NULL tag priority puts them ahead.
    assert.deepEqual(await s.of("sci", "processed_telluric"), ["usable"]);
    assert.deepEqual(await s.of("sci", "processed_standard"), ["usable"]);
  });

  it("bpm: instrument, binning and array, at or before the frame", async (t) => {
    const { s, add } = await gnirs(t);
    const BPM = like(IMAGING, {
      header: {
        observation_type: "BPM",
        reduction: "PROCESSED_BPM",
        processing: "Science-Quality",
        processing_tag: "sq",
      },
    });
    await add("sci", IMAGING);
    await add("bpm", BPM, at(-100));
    await add("array", BPM, {
      ...at(-1),
      inst: { array_name: "SN7638228.1,X" },
    });
    await add("later", BPM, at(0.5));
    assert.deepEqual(await s.of("sci", "processed_bpm"), ["bpm"]);
  });
});
