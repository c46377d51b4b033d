/**
 * F2 rules (calibration_f2.py), one scenario per rule, with near misses at
 * the tolerance and window boundaries.
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

const T0 = "2018-12-19T03:00:00";
const at = (days: number) => ({ header: { ut_datetime: plusDays(T0, days) } });

const IMAGING: FrameSpec = {
  header: {
    instrument: "F2",
    ut_datetime: T0,
    observation_type: "OBJECT",
    observation_class: "science",
    spectroscopy: false,
    exposure_time: 60,
    detector_binning: "1x1",
    central_wavelength: 1.25,
    gcal_lamp: "None",
  },
  inst: {
    disperser: "Open",
    filter_name: "J_G0802",
    lyot_stop: "f/16_G5830",
    read_mode: "1",
    focal_plane_mask: "Open",
  },
  tags: ["F2", "GEMINI", "IMAGE", "RAW", "SOUTH"],
};
const SPECTRUM = like(IMAGING, {
  header: { spectroscopy: true },
  inst: {
    disperser: "JH_G5801",
    filter_name: "JH_G0809",
    focal_plane_mask: "2pix-slit",
  },
  tags: ["F2", "GEMINI", "LS", "RAW", "SPECT"],
});
const DARK = like(IMAGING, {
  header: { observation_type: "DARK", observation_class: "dayCal" },
});
const FLAT = like(SPECTRUM, {
  header: {
    observation_type: "FLAT",
    observation_class: "partnerCal",
    gcal_lamp: "QH",
  },
});
const ARC = like(SPECTRUM, {
  header: { observation_type: "ARC", observation_class: "partnerCal" },
});
const STAR = like(SPECTRUM, { header: { observation_class: "partnerCal" } });

async function f2(t: TestContext): Promise<{
  s: Scene;
  add: (label: string, base: FrameSpec, spec?: FrameSpec) => Promise<number>;
}> {
  const s = await scene(t, db.client);
  return { s, add: (label, base, spec) => s.add(label, "f2", base, spec) };
}

describe("F2 applicable calibration types", () => {
  const cases: [string, FrameSpec, string[]][] = [
    [
      "imaging science",
      IMAGING,
      [
        "dark",
        "processed_dark",
        "flat",
        "processed_flat",
        "photometric_standard",
        "processed_bpm",
      ],
    ],
    [
      "imaging acquisition",
      like(IMAGING, { header: { observation_class: "acq" } }),
      ["processed_bpm"],
    ],
    [
      "spectroscopic science",
      SPECTRUM,
      [
        "dark",
        "processed_dark",
        "flat",
        "processed_flat",
        "arc",
        "telluric",
        "standard",
        "processed_bpm",
      ],
    ],
    [
      "a spectroscopic partnerCal",
      STAR,
      [
        "dark",
        "processed_dark",
        "flat",
        "processed_flat",
        "arc",
        "processed_bpm",
      ],
    ],
    ["a flat", FLAT, ["dark", "processed_dark", "processed_bpm"]],
    [
      "an arc",
      ARC,
      ["dark", "processed_dark", "flat", "processed_flat", "processed_bpm"],
    ],
    [
      "an HK arc also wants a lamp-off flat",
      like(ARC, { inst: { filter_name: "HK" } }),
      [
        "dark",
        "processed_dark",
        "flat",
        "processed_flat",
        "lampoff_flat",
        "processed_bpm",
      ],
    ],
    ["a BPM", like(IMAGING, { header: { observation_type: "BPM" } }), []],
  ];
  for (const [name, spec, expected] of cases) {
    it(name, async (t) => {
      const { s, add } = await f2(t);
      await add("sci", spec);
      const evaluation = await s.evaluate("sci");
      assert.deepEqual(
        evaluation.caltypes.map((c) => c.caltype),
        expected,
      );
    });
  }
});

describe("F2 rules", () => {
  it("dark: exactly the exposure time and read mode, within 90 days; one processed", async (t) => {
    const { s, add } = await f2(t);
    await s.processingTag("sq", 1, true);
    await add("sci", IMAGING);
    await add("d", DARK, at(-1));
    await add("exp", DARK, {
      header: { ut_datetime: T0, exposure_time: 60.000001 },
    });
    await add("read", DARK, { ...at(0), inst: { read_mode: "8" } });
    await add("90d", DARK, at(90));
    await add("89.99d", DARK, at(-89.99));
    await add("filter-free", DARK, {
      ...at(-2),
      inst: { filter_name: "Dark" },
    });
    await add("pd", DARK, {
      header: {
        ut_datetime: plusDays(T0, -50),
        reduction: "PROCESSED_DARK",
        processing: "Science-Quality",
        processing_tag: "sq",
      },
    });
    assert.deepEqual(await s.of("sci", "dark"), ["d", "filter-free", "89.99d"]);
    assert.deepEqual(await s.of("sci", "processed_dark"), ["pd"]);
  });

  it("flat: disperser, Lyot stop, filter and mask; any lamp; wavelength only for spectroscopy; 90 days", async (t) => {
    const { s, add } = await f2(t);
    await add("sci", SPECTRUM);
    await add("img", IMAGING);
    await add("f", FLAT, at(-1));
    await add("off", FLAT, {
      header: { ut_datetime: plusDays(T0, -2), gcal_lamp: "Off" },
    });
    await add("cwl", FLAT, {
      header: { ut_datetime: T0, central_wavelength: 1.251 },
    });
    await add("lyot", FLAT, {
      ...at(0),
      inst: { lyot_stop: "GEMS_under_G5835" },
    });
    await add("read-mode-free", FLAT, { ...at(-3), inst: { read_mode: "8" } });
    await add("90d", FLAT, at(-90));
    await add(
      "img-flat",
      like(IMAGING, { header: { observation_type: "FLAT" } }),
      {
        header: { ut_datetime: plusDays(T0, -1), central_wavelength: 2.2 },
      },
    );
    assert.deepEqual(await s.of("sci", "flat"), ["f", "off", "read-mode-free"]);
    assert.deepEqual(await s.of("img", "flat"), ["img-flat"]);
  });

  it("arc: the setup and wavelength ±0.001 µm, the closest within 90 days", async (t) => {
    const { s, add } = await f2(t);
    await add("sci", SPECTRUM);
    await add("a-2", ARC, at(-2));
    await add("a-1", ARC, at(-1));
    await add("cwl", ARC, {
      header: { ut_datetime: T0, central_wavelength: 1.249 },
    });
    assert.deepEqual(await s.of("sci", "arc"), ["a-1"]);
  });

  it("lampoff_flat: lamp-off flats with the arc's exposure time, within a day", async (t) => {
    const { s, add } = await f2(t);
    const HK = { inst: { filter_name: "HK" } };
    await add("arc", ARC, HK);
    await add("off", FLAT, {
      header: { ut_datetime: plusDays(T0, 0.5), gcal_lamp: "Off" },
      ...HK,
    });
    await add("off-exp", FLAT, {
      header: {
        ut_datetime: plusDays(T0, 0.1),
        gcal_lamp: "Off",
        exposure_time: 30,
      },
      ...HK,
    });
    await add("on", FLAT, { ...at(0.1), ...HK });
    await add("off-1d", FLAT, {
      header: { ut_datetime: plusDays(T0, 1), gcal_lamp: "Off" },
      ...HK,
    });
    assert.deepEqual(await s.of("arc", "lampoff_flat"), ["off"]);
  });

  it("photometric_standard: partnerCal OBJECTs with the filter and Lyot stop within a day, raw or processed", async (t) => {
    const { s, add } = await f2(t);
    await s.processingTag("sq", 1, true);
    const STD = like(IMAGING, { header: { observation_class: "partnerCal" } });
    await add("sci", IMAGING);
    await add("std", STD, at(0.5));
    await add("processed", STD, {
      header: {
        ut_datetime: plusDays(T0, 0.7),
        reduction: "PROCESSED_STANDARD",
        processing: "Science-Quality",
        processing_tag: "sq",
      },
    });
    await add("spectrum", STAR, {
      header: { ut_datetime: plusDays(T0, 0.1) },
      inst: { filter_name: "J_G0802" },
    });
    await add("lyot", STD, {
      ...at(0.1),
      inst: { lyot_stop: "GEMS_under_G5835" },
    });
    // The raw one sorts first: untagged frames have a NULL tag priority.
    assert.deepEqual(await s.of("sci", "photometric_standard"), [
      "spectrum",
      "std",
      "processed",
    ]);
  });

  it("telluric and standard: raw partnerCal or progCal spectra of the setup, 1 and 90 days", async (t) => {
    const { s, add } = await f2(t);
    await add("sci", SPECTRUM);
    await add("partner", STAR, at(0.5));
    await add("prog", STAR, {
      header: { ut_datetime: plusDays(T0, -0.6), observation_class: "progCal" },
    });
    await add("science-class", STAR, {
      header: { ut_datetime: plusDays(T0, 0.1), observation_class: "science" },
    });
    await add("cwl", STAR, {
      header: { ut_datetime: plusDays(T0, 0.1), central_wavelength: 1.251 },
    });
    await add("30d", STAR, at(30));
    await add("90d", STAR, at(-90));
    assert.deepEqual(await s.of("sci", "telluric"), ["partner", "prog"]);
    assert.deepEqual(await s.of("sci", "standard"), ["partner", "prog", "30d"]);
  });

  it("bpm: the instrument and binning, at or before the frame", async (t) => {
    const { s, add } = await f2(t);
    const BPM = like(IMAGING, {
      header: { observation_type: "BPM", observation_class: "dayCal" },
    });
    await add("sci", IMAGING);
    await add("bpm", BPM, at(-10));
    await add("after", BPM, at(0.001));
    assert.deepEqual(await s.of("sci", "processed_bpm"), []);
    // Only processed BPMs are asked for; a raw BPM frame is never one.
    await s.processingTag("sq", 1, true);
    await add("pbpm", BPM, {
      header: {
        ut_datetime: plusDays(T0, -20),
        reduction: "PROCESSED_BPM",
        processing: "Science-Quality",
        processing_tag: "sq",
      },
    });
    assert.deepEqual(await s.of("sci", "processed_bpm"), ["pbpm"]);
  });
});
