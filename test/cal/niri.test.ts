/**
 * NIRI rules (calibration_niri.py), one scenario per rule, with near misses
 * at the tolerance and window boundaries.
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

const T0 = "2018-03-29T10:00:00";
const at = (days: number) => ({ header: { ut_datetime: plusDays(T0, days) } });

const SCIENCE: FrameSpec = {
  header: {
    instrument: "NIRI",
    ut_datetime: T0,
    observation_type: "OBJECT",
    observation_class: "science",
    spectroscopy: false,
    exposure_time: 1.0,
    coadds: 10,
    detector_binning: "1x1",
    camera: "f6",
    central_wavelength: 2.2,
    gcal_lamp: "None",
  },
  inst: {
    disperser: "MIRROR",
    filter_name: "Kshort_G0205",
    read_mode: "Low Background",
    well_depth_setting: "Shallow",
    data_section: "Section(x1=0, x2=1024, y1=0, y2=1024)",
    camera: "f6",
    focal_plane_mask: "f6-cam_G5208",
  },
  tags: ["GEMINI", "IMAGE", "NIRI", "NORTH", "RAW"],
};
const SPECTRUM = like(SCIENCE, {
  header: { spectroscopy: true },
  inst: { disperser: "Kgrism_G5204", focal_plane_mask: "f6-2pix_G5212" },
  tags: ["GEMINI", "NIRI", "RAW", "SPECT"],
});
const DARK = like(SCIENCE, {
  header: { observation_type: "DARK", observation_class: "dayCal" },
});
const FLAT = like(SCIENCE, {
  header: {
    observation_type: "FLAT",
    observation_class: "dayCal",
    gcal_lamp: "IRhigh",
  },
});
const SPECTRAL_FLAT = like(SPECTRUM, {
  header: {
    observation_type: "FLAT",
    observation_class: "partnerCal",
    gcal_lamp: "QH",
  },
});
const ARC = like(SPECTRUM, {
  header: { observation_type: "ARC", observation_class: "partnerCal" },
});

async function niri(t: TestContext): Promise<{
  s: Scene;
  add: (label: string, base: FrameSpec, spec?: FrameSpec) => Promise<number>;
}> {
  const s = await scene(t, db.client);
  return { s, add: (label, base, spec) => s.add(label, "niri", base, spec) };
}

describe("NIRI applicable calibration types", () => {
  const cases: [string, FrameSpec, string[]][] = [
    [
      "imaging science",
      SCIENCE,
      [
        "processed_flat",
        "dark",
        "flat",
        "photometric_standard",
        "processed_bpm",
      ],
    ],
    [
      "imaging science in L': no flat",
      like(SCIENCE, { inst: { filter_name: "Lprime_G0207" } }),
      ["processed_flat", "dark", "photometric_standard", "processed_bpm"],
    ],
    [
      "imaging partnerCal: flats only",
      like(SCIENCE, { header: { observation_class: "partnerCal" } }),
      ["processed_flat", "flat", "processed_bpm"],
    ],
    ["a lamp-on imaging flat", FLAT, ["lampoff_flat", "processed_bpm"]],
    [
      "a lamp-off imaging flat",
      like(FLAT, { header: { gcal_lamp: "Off" } }),
      ["processed_bpm"],
    ],
    [
      "spectroscopic science",
      SPECTRUM,
      ["flat", "arc", "telluric", "processed_flat", "processed_bpm"],
    ],
    [
      "a spectroscopic partnerCal",
      like(SPECTRUM, { header: { observation_class: "partnerCal" } }),
      ["flat", "arc", "processed_bpm"],
    ],
    ["a BPM", like(SCIENCE, { header: { observation_type: "BPM" } }), []],
  ];
  for (const [name, spec, expected] of cases) {
    it(name, async (t) => {
      const { s, add } = await niri(t);
      await add("sci", spec);
      const evaluation = await s.evaluate("sci");
      assert.deepEqual(
        evaluation.caltypes.map((c) => c.caltype),
        expected,
      );
    });
  }
});

describe("NIRI rules", () => {
  it("dark: data section, read mode, well depth and coadds; exposure ±0.01 s; 180 days; 10 kept", async (t) => {
    const { s, add } = await niri(t);
    await add("sci", SCIENCE);
    await add("d", DARK, at(-1));
    await add("exp+0.009", DARK, {
      header: { ut_datetime: plusDays(T0, -2), exposure_time: 1.009 },
    });
    await add("exp+0.01", DARK, {
      header: { ut_datetime: plusDays(T0, -1), exposure_time: 1.01 },
    });
    await add("exp-0.01", DARK, {
      header: { ut_datetime: plusDays(T0, -1), exposure_time: 0.99 },
    });
    await add("coadds", DARK, {
      header: { ut_datetime: plusDays(T0, -1), coadds: 1 },
    });
    await add("section", DARK, {
      ...at(-1),
      inst: { data_section: "Section(x1=0, x2=512, y1=0, y2=512)" },
    });
    await add("read-mode", DARK, {
      ...at(-1),
      inst: { read_mode: "High Background" },
    });
    await add("well", DARK, {
      ...at(-1),
      inst: { well_depth_setting: "Deep" },
    });
    await add("180d", DARK, at(180));
    await add("179d", DARK, at(-179));
    // A dark need not match the filter or camera.
    await add("other-filter", DARK, {
      ...at(-3),
      inst: { filter_name: "J_G0202", camera: "f32" },
    });
    assert.deepEqual(await s.of("sci", "dark"), [
      "d",
      "exp+0.009",
      "other-filter",
      "179d",
    ]);
    for (let i = 0; i < 10; i++) {
      await add(`more${i}`, DARK, at(i / 100));
    }
    assert.equal((await s.of("sci", "dark")).length, 10);
  });

  it("flat: GCAL IRhigh, IRlow or QH* with the camera of the niri table, within 180 days", async (t) => {
    const { s, add } = await niri(t);
    // The header says f32, the niri row f6: the rules read the niri row.
    await add("sci", SCIENCE, { header: { camera: "f32" } });
    await add("irhigh", FLAT, at(-1));
    await add("irlow", FLAT, {
      header: { ut_datetime: plusDays(T0, -2), gcal_lamp: "IRlow" },
    });
    await add("qh", FLAT, {
      header: { ut_datetime: plusDays(T0, -3), gcal_lamp: "QH-dummy" },
    });
    await add("off", FLAT, {
      header: { ut_datetime: plusDays(T0, -0.5), gcal_lamp: "Off" },
    });
    await add("f32", FLAT, { ...at(-0.5), inst: { camera: "f32" } });
    await add("mask", FLAT, {
      ...at(-0.5),
      inst: { focal_plane_mask: "f6-2pix_G5212" },
    });
    // Read mode need not match; well depth must.
    await add("read-mode", FLAT, {
      ...at(-4),
      inst: { read_mode: "High Background" },
    });
    await add("180d", FLAT, at(-180));
    // Imaging ignores the wavelength.
    await add("cwl", FLAT, {
      header: { ut_datetime: plusDays(T0, -5), central_wavelength: 1.65 },
    });
    assert.deepEqual(await s.of("sci", "flat"), [
      "irhigh",
      "irlow",
      "qh",
      "read-mode",
      "cwl",
    ]);
  });

  it("flat: lamp-off flats never serve, not even the M grism (its table name is Mgrism_G5206)", async (t) => {
    const { s, add } = await niri(t);
    const M = { inst: { disperser: "Mgrism_G5206" } };
    await add("sci", SPECTRUM, M);
    await add("off", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -1), gcal_lamp: "Off" },
      ...M,
    });
    assert.deepEqual(await s.of("sci", "flat"), []);
  });

  it("flat: spectroscopy matches the wavelength ±0.001 µm; one processed flat", async (t) => {
    const { s, add } = await niri(t);
    await add("sci", SPECTRUM);
    await add("f", SPECTRAL_FLAT, at(-1));
    await add("cwl+0.001", SPECTRAL_FLAT, {
      header: { ut_datetime: T0, central_wavelength: 2.201 },
    });
    await add("cwl+0.0009", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -2), central_wavelength: 2.2009 },
    });
    await add("pf-2", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -2), reduction: "PROCESSED_FLAT" },
    });
    await add("pf-3", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -3), reduction: "PROCESSED_FLAT" },
    });
    assert.deepEqual(await s.of("sci", "flat"), ["f", "cwl+0.0009"]);
    assert.deepEqual(await s.of("sci", "processed_flat"), ["pf-2"]);
  });

  it("arc: same setup and wavelength ±0.001 µm within 180 days, the closest", async (t) => {
    const { s, add } = await niri(t);
    await add("sci", SPECTRUM);
    await add("a-5", ARC, at(-5));
    await add("a+3", ARC, at(3));
    await add("cwl", ARC, {
      header: { ut_datetime: T0, central_wavelength: 2.199 },
    });
    await add("grism", ARC, { ...at(0), inst: { disperser: "Hgrism_G5203" } });
    assert.deepEqual(await s.of("sci", "arc"), ["a+3"]);
  });

  it("lampoff_flat: lamp-off flats of the setup within a day, up to 10", async (t) => {
    const { s, add } = await niri(t);
    await add("flat", FLAT);
    await add("off-1h", FLAT, {
      header: { ut_datetime: plusDays(T0, 1 / 24), gcal_lamp: "Off" },
    });
    await add("off-1d", FLAT, {
      header: { ut_datetime: plusDays(T0, -1), gcal_lamp: "Off" },
    });
    await add("on", FLAT, at(0.1));
    assert.deepEqual(await s.of("flat", "lampoff_flat"), ["off-1h"]);
  });

  it("photometric_standard: raw imaging OBJECTs flagged phot_standard, same filter and camera, within a day", async (t) => {
    const { s, add } = await niri(t);
    const STD = like(SCIENCE, {
      header: { observation_class: "partnerCal", phot_standard: true },
    });
    await add("sci", SCIENCE);
    await add("std", STD, at(0.5));
    await add("unflagged", STD, {
      header: { ut_datetime: plusDays(T0, 0.1), phot_standard: null },
    });
    await add("camera", STD, { ...at(0.1), inst: { camera: "f32" } });
    await add("1d", STD, at(1));
    assert.deepEqual(await s.of("sci", "photometric_standard"), ["std"]);
  });

  it("telluric: raw partnerCal OBJECT spectra of the setup, wavelength ±0.001, within a day", async (t) => {
    const { s, add } = await niri(t);
    const TELLURIC = like(SPECTRUM, {
      header: { observation_class: "partnerCal" },
    });
    await add("sci", SPECTRUM);
    await add("tel", TELLURIC, at(0.2));
    await add("progcal", TELLURIC, {
      header: { ut_datetime: plusDays(T0, 0.1), observation_class: "progCal" },
    });
    await add("cwl", TELLURIC, {
      header: { ut_datetime: plusDays(T0, 0.1), central_wavelength: 2.201 },
    });
    await add("1d", TELLURIC, at(-1));
    assert.deepEqual(await s.of("sci", "telluric"), ["tel"]);
  });

  it("bpm: the instrument and binning, at or before the frame", async (t) => {
    const { s, add } = await niri(t);
    const BPM = like(SCIENCE, {
      header: { observation_type: "BPM", reduction: "PROCESSED_BPM" },
    });
    await s.processingTag("bpm", 1, true);
    const processed = { processing: "Science-Quality", processing_tag: "bpm" };
    await add("sci", SCIENCE);
    await add("bpm-old", BPM, {
      header: { ...processed, ut_datetime: "2010-01-01T00:00:00" },
    });
    await add("bpm-later", BPM, {
      header: { ...processed, ut_datetime: plusDays(T0, 1) },
    });
    await add("bpm-2x2", BPM, {
      header: { ...processed, ut_datetime: T0, detector_binning: "2x2" },
    });
    assert.deepEqual(await s.of("sci", "processed_bpm"), ["bpm-old"]);
  });
});
