/**
 * GMOS rules (calibration_gmos.py), one scenario per rule, with near misses
 * at every tolerance and window boundary. Expected associations are labels
 * in rank order.
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
import {
  AMP_CENTRE,
  ARC,
  ARRAYS,
  BIAS,
  BPM,
  DARK,
  IMAGING_SCIENCE,
  LS_SCIENCE,
  MASK,
  PHOTSTD,
  PROCESSED_BIAS,
  SLITILLUM,
  SPECPHOT,
  SPECTRAL_FLAT,
  T0,
  TWILIGHT,
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

describe("GMOS applicable calibration types", () => {
  const cases: [string, FrameSpec, string[]][] = [
    [
      "imaging science",
      IMAGING_SCIENCE,
      [
        "bias",
        "processed_bias",
        "flat",
        "processed_flat",
        "processed_fringe",
        "processed_standard",
        "photometric_standard",
        "processed_bpm",
      ],
    ],
    [
      "imaging partnerCal: no photometric standard",
      like(IMAGING_SCIENCE, { header: { observation_class: "partnerCal" } }),
      [
        "bias",
        "processed_bias",
        "flat",
        "processed_flat",
        "processed_fringe",
        "processed_standard",
        "processed_bpm",
      ],
    ],
    [
      "imaging with no wavelength: no processed standard",
      like(IMAGING_SCIENCE, { header: { central_wavelength: null } }),
      [
        "bias",
        "processed_bias",
        "flat",
        "processed_flat",
        "processed_fringe",
        "photometric_standard",
        "processed_bpm",
      ],
    ],
    [
      "imaging through a MOS mask: not imaging science",
      like(IMAGING_SCIENCE, { inst: { focal_plane_mask: "GN2019AQ001-01" } }),
      ["bias", "processed_bias", "processed_bpm"],
    ],
    [
      "twilight: bias only",
      TWILIGHT,
      ["bias", "processed_bias", "processed_bpm"],
    ],
    [
      "acquisition: no bias, no flat",
      like(IMAGING_SCIENCE, { header: { observation_class: "acq" } }),
      ["processed_bpm"],
    ],
    [
      "Central Stamp ROI: no bias",
      like(IMAGING_SCIENCE, {
        header: { detector_roi_setting: "Central Stamp" },
      }),
      [
        "flat",
        "processed_flat",
        "processed_fringe",
        "processed_standard",
        "photometric_standard",
        "processed_bpm",
      ],
    ],
    ["a bias", BIAS, ["processed_bpm"]],
    ["an arc", ARC, ["processed_bpm"]],
    [
      "a spectroscopic flat needs an arc",
      SPECTRAL_FLAT,
      ["bias", "processed_bias", "arc", "processed_arc", "processed_bpm"],
    ],
    [
      "long-slit science",
      LS_SCIENCE,
      [
        "bias",
        "processed_bias",
        "arc",
        "processed_arc",
        "flat",
        "processed_flat",
        "standard",
        "processed_standard",
        "processed_slitillum",
        "slitillum",
        "processed_bpm",
      ],
    ],
    [
      "long-slit with no wavelength: standard only",
      like(LS_SCIENCE, { header: { central_wavelength: null } }),
      [
        "bias",
        "processed_bias",
        "arc",
        "processed_arc",
        "flat",
        "processed_flat",
        "standard",
        "processed_bpm",
      ],
    ],
    [
      "a spectrophotometric standard needs no standard",
      SPECPHOT,
      [
        "bias",
        "processed_bias",
        "arc",
        "processed_arc",
        "flat",
        "processed_flat",
        "processed_bpm",
      ],
    ],
    [
      "MOS science also needs its mask",
      like(LS_SCIENCE, {
        inst: { focal_plane_mask: "GN2019AQ001-01" },
        tags: ["GEMINI", "GMOS", "MOS", "NORTH", "RAW", "SPECT"],
      }),
      [
        "bias",
        "processed_bias",
        "arc",
        "processed_arc",
        "flat",
        "processed_flat",
        "standard",
        "processed_standard",
        "processed_slitillum",
        "slitillum",
        "mask",
        "processed_bpm",
      ],
    ],
    [
      "nod-and-shuffle before 2020 needs darks",
      like(LS_SCIENCE, { inst: { nodandshuffle: true } }),
      [
        "bias",
        "processed_bias",
        "arc",
        "processed_arc",
        "flat",
        "processed_flat",
        "standard",
        "processed_standard",
        "processed_slitillum",
        "slitillum",
        "dark",
        "processed_dark",
        "processed_bpm",
      ],
    ],
    [
      "nod-and-shuffle from 2020 on does not",
      like(LS_SCIENCE, {
        header: { ut_datetime: "2020-01-01T00:00:00" },
        inst: { nodandshuffle: true },
      }),
      [
        "bias",
        "processed_bias",
        "arc",
        "processed_arc",
        "flat",
        "processed_flat",
        "standard",
        "processed_standard",
        "processed_slitillum",
        "slitillum",
        "processed_bpm",
      ],
    ],
    [
      "no binning: no BPM",
      like(IMAGING_SCIENCE, {
        header: { observation_class: "acq" },
        inst: { detector_y_bin: null },
      }),
      [],
    ],
    ["a MASK frame needs nothing", MASK, []],
    ["a BPM needs nothing", BPM, []],
    [
      "PROCESSED_SCIENCE needs nothing",
      like(IMAGING_SCIENCE, {
        tags: ["GEMINI", "GMOS", "IMAGE", "PROCESSED_SCIENCE"],
      }),
      [],
    ],
    [
      "no instrument row: every instrument descriptor is None",
      like(IMAGING_SCIENCE, { inst: null }),
      ["bias", "processed_bias"],
    ],
  ];
  for (const [name, spec, expected] of cases) {
    it(name, async (t) => {
      const { s, add } = await gmos(t);
      await add("sci", spec);
      const evaluation = await s.evaluate("sci");
      assert.equal(evaluation.outcome, "associated");
      assert.deepEqual(
        evaluation.caltypes.map((c) => c.caltype),
        expected,
      );
    });
  }
});

describe("GMOS bias", () => {
  it("matches instrument, binning, read speed and gain, closest first", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("b-2d", BIAS, at(-2));
    await add("b+1d", BIAS, at(1));
    await add("b-10d", BIAS, at(-10));
    await add("other-site", BIAS, { header: { instrument: "GMOS-S" } });
    await add("1x1", BIAS, { inst: { detector_x_bin: 1 } });
    await add("ybin", BIAS, { inst: { detector_y_bin: 4 } });
    await add("fast", BIAS, { inst: { read_speed_setting: "fast" } });
    await add("high", BIAS, { inst: { gain_setting: "high" } });
    await add("a-dark", DARK);
    await add("prepared-raw", BIAS, { header: { reduction: "PREPARED" } });
    assert.deepEqual(await s.of("sci", "bias"), ["b+1d", "b-2d", "b-10d"]);
  });

  it("is within 90 days, open at both ends", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("-90d", BIAS, at(-90));
    await add("+90d", BIAS, at(90));
    await add("-90d+1s", BIAS, at(-90 + 1 / 86400));
    await add("+90d-1us", BIAS, {
      header: { ut_datetime: `${plusDays(T0, 90 - 1 / 86400)}.999999` },
    });
    // Both are 90 days less one whole second away (ut_datetime_secs drops
    // the microseconds), so the newer entry wins the tie.
    assert.deepEqual(await s.of("sci", "bias"), ["+90d-1us", "-90d+1s"]);
  });

  it("keeps 50 raw biases", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    for (let i = 1; i <= 51; i++) {
      await add(`b${i}`, BIAS, at(-i / 24));
    }
    const found = await s.of("sci", "bias");
    assert.equal(found.length, 50);
    assert.deepEqual(found.slice(0, 2), ["b1", "b2"]);
    assert.equal(found.at(-1), "b50");
  });

  it("needs the same amplifiers for a full frame, their superset for other ROIs", async (t) => {
    const { s, add } = await gmos(t);
    await add("full", IMAGING_SCIENCE);
    await add("centre", IMAGING_SCIENCE, {
      header: { detector_roi_setting: "Custom" },
      inst: { amp_read_area: AMP_CENTRE },
    });
    await add("no-amps", IMAGING_SCIENCE, {
      header: { detector_roi_setting: "Custom" },
      inst: { amp_read_area: null },
    });
    await add("b-full", BIAS, at(-1));
    await add("b-centre", BIAS, {
      ...at(-2),
      inst: { amp_read_area: AMP_CENTRE },
    });
    await add("b-none", BIAS, { ...at(-3), inst: { amp_read_area: null } });
    assert.deepEqual(await s.of("full", "bias"), ["b-full"]);
    assert.deepEqual(await s.of("centre", "bias"), ["b-full", "b-centre"]);
    // No amplifier filter at all when a custom-ROI science has none.
    assert.deepEqual(await s.of("no-amps", "bias"), [
      "b-full",
      "b-centre",
      "b-none",
    ]);
  });

  it("a full-frame science with no amp_read_area wants biases with none (IS NULL)", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE, { inst: { amp_read_area: null } });
    await add("b-full", BIAS, at(-1));
    await add("b-none", BIAS, { ...at(-2), inst: { amp_read_area: null } });
    assert.deepEqual(await s.of("sci", "bias"), ["b-none"]);
  });

  it("takes one processed bias; a PREPARED science must match its overscan state", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("prepared", IMAGING_SCIENCE, {
      inst: {
        prepared: true,
        overscan_trimmed: true,
        overscan_subtracted: true,
      },
    });
    await add("pb-trimmed", PROCESSED_BIAS, {
      ...at(-1),
      inst: { overscan_trimmed: true, overscan_subtracted: true },
    });
    await add("pb-untrimmed", PROCESSED_BIAS, {
      ...at(-0.5),
      inst: { overscan_trimmed: false, overscan_subtracted: true },
    });
    await add("raw", BIAS, at(-0.1));
    assert.deepEqual(await s.of("sci", "processed_bias"), ["pb-untrimmed"]);
    assert.deepEqual(await s.of("prepared", "processed_bias"), ["pb-trimmed"]);
    assert.deepEqual(await s.of("sci", "bias"), ["raw"]);
  });
});

describe("GMOS dark (nod-and-shuffle before 2020)", () => {
  const NS = like(LS_SCIENCE, {
    inst: { nodandshuffle: true, nod_count: 10, nod_pixels: 1536 },
  });
  const NS_DARK = like(DARK, {
    inst: { nodandshuffle: true, nod_count: 10, nod_pixels: 1536 },
  });

  it("matches nod count and pixels, exposure within 50 s, within 365 days", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", NS);
    await add("d", NS_DARK, at(-5));
    await add("exp+49.999", NS_DARK, {
      ...at(-6),
      header: { ut_datetime: plusDays(T0, -6), exposure_time: 349.999 },
    });
    await add("exp+50", NS_DARK, {
      header: { ut_datetime: plusDays(T0, -4), exposure_time: 350 },
    });
    await add("exp-50", NS_DARK, {
      header: { ut_datetime: plusDays(T0, -4), exposure_time: 250 },
    });
    await add("count", NS_DARK, { ...at(-1), inst: { nod_count: 11 } });
    await add("pixels", NS_DARK, { ...at(-1), inst: { nod_pixels: 1537 } });
    await add("no-nod", NS_DARK, {
      ...at(-1),
      inst: { nod_count: null, nod_pixels: null },
    });
    await add("365d", NS_DARK, at(-365));
    await add("364d", NS_DARK, at(-364));
    assert.deepEqual(await s.of("sci", "dark"), ["d", "exp+49.999", "364d"]);
  });

  it("keeps 15 raw darks and one processed", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", NS);
    for (let i = 1; i <= 16; i++) {
      await add(`d${i}`, NS_DARK, at(i));
    }
    await add("pd-far", NS_DARK, {
      header: {
        ut_datetime: plusDays(T0, 100),
        reduction: "PROCESSED_DARK",
        processing: "Science-Quality",
        processing_tag: "sq-2024",
      },
    });
    await add("pd-near", NS_DARK, {
      header: {
        ut_datetime: plusDays(T0, 50),
        reduction: "PROCESSED_DARK",
        processing: "Science-Quality",
        processing_tag: "sq-2024",
      },
    });
    const raw = await s.of("sci", "dark");
    assert.equal(raw.length, 15);
    assert.equal(raw.at(-1), "d15");
    assert.deepEqual(await s.of("sci", "processed_dark"), ["pd-near"]);
  });
});

describe("GMOS arc", () => {
  it("matches disperser, filter, binning, mask and wavelength ±0.001 µm", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE);
    await add("far", ARC, at(-200));
    await add("grating", ARC, {
      ...at(-1),
      inst: { disperser: "B600+_G5307" },
    });
    await add("filter", ARC, {
      ...at(-1),
      inst: { filter_name: "GG455_G0305" },
    });
    await add("slit", ARC, {
      ...at(-1),
      inst: { focal_plane_mask: "0.5arcsec" },
    });
    await add("xbin", ARC, { ...at(-1), inst: { detector_x_bin: 1 } });
    await add("cwl+0.001", ARC, {
      header: { ut_datetime: plusDays(T0, -1), central_wavelength: 0.701 },
    });
    await add("cwl-0.001", ARC, {
      header: { ut_datetime: plusDays(T0, -1), central_wavelength: 0.699 },
    });
    await add("cwl+0.000999", ARC, {
      header: { ut_datetime: plusDays(T0, -2), central_wavelength: 0.700999 },
    });
    assert.deepEqual(await s.of("sci", "arc"), ["cwl+0.000999"]);
  });

  it("keeps the closest one within 365 days", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE);
    await add("365d", ARC, at(365));
    await add("300d", ARC, at(-300));
    assert.deepEqual(await s.of("sci", "arc"), ["300d"]);
  });

  it("lets any *arcsec slit serve a 5.0arcsec science frame", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE, { inst: { focal_plane_mask: "5.0arcsec" } });
    await add("ns-slit", ARC, {
      ...at(-1),
      inst: { focal_plane_mask: "NS1.0arcsec" },
    });
    await add("ifu", ARC, { ...at(-0.5), inst: { focal_plane_mask: "IFU-R" } });
    assert.deepEqual(await s.of("sci", "arc"), ["ns-slit"]);
  });

  it("picks processed arcs by ROI name, raw arcs by amplifiers", async (t) => {
    const { s, add } = await gmos(t);
    const PROCESSED_ARC = like(ARC, {
      header: {
        reduction: "PROCESSED_ARC",
        processing: "Science-Quality",
        processing_tag: "sq-2024",
      },
    });
    await add("cs", LS_SCIENCE, {
      header: { detector_roi_setting: "Central Spectrum" },
    });
    await add("custom", LS_SCIENCE, {
      header: { detector_roi_setting: "Custom" },
      inst: { amp_read_area: AMP_CENTRE },
    });
    await add("pa-full", PROCESSED_ARC, at(-3));
    await add("pa-cs", PROCESSED_ARC, {
      header: {
        ut_datetime: plusDays(T0, -1),
        detector_roi_setting: "Central Spectrum",
      },
    });
    await add("pa-custom", PROCESSED_ARC, {
      header: {
        ut_datetime: plusDays(T0, -0.5),
        detector_roi_setting: "Custom",
      },
    });
    await add("a-cs", ARC, {
      header: {
        ut_datetime: plusDays(T0, -1),
        detector_roi_setting: "Central Spectrum",
      },
    });
    assert.deepEqual(await s.of("cs", "processed_arc"), ["pa-cs"]);
    assert.deepEqual(await s.of("custom", "processed_arc"), ["pa-full"]);
    // The raw arc of a central-spectrum science needs the same amplifiers.
    assert.deepEqual(await s.of("cs", "arc"), ["a-cs"]);
    // A custom ROI with a subset of the amplifiers takes any superset.
    assert.deepEqual(await s.of("custom", "arc"), ["a-cs"]);
  });

  it("serves a spectroscopic flat too", async (t) => {
    const { s, add } = await gmos(t);
    await add("flat", SPECTRAL_FLAT);
    await add("arc", ARC, at(-1));
    assert.deepEqual(await s.of("flat", "arc"), ["arc"]);
  });
});

describe("GMOS imaging flat", () => {
  it("takes dayCal twilight OBJECT frames of the same setup within 180 days", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("tw-1", TWILIGHT, at(-1));
    await add("tw+2", TWILIGHT, at(2));
    await add("tw-180", TWILIGHT, at(-180));
    await add("tw-179", TWILIGHT, at(-179));
    await add("filter", TWILIGHT, {
      ...at(-1),
      inst: { filter_name: "g_G0301" },
    });
    await add("partnercal", TWILIGHT, {
      header: {
        ut_datetime: plusDays(T0, -1),
        observation_class: "partnerCal",
      },
    });
    await add("not-twilight", TWILIGHT, {
      header: { ut_datetime: plusDays(T0, -1), object: "Domeflat" },
    });
    await add("gcal", TWILIGHT, {
      header: { ut_datetime: plusDays(T0, -1), observation_type: "FLAT" },
    });
    await add("speed", TWILIGHT, {
      ...at(-1),
      inst: { read_speed_setting: "fast" },
    });
    assert.deepEqual(await s.of("sci", "flat"), ["tw-1", "tw+2", "tw-179"]);
  });

  it("keeps 20 twilights and one processed flat", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    for (let i = 1; i <= 21; i++) {
      await add(`tw${i}`, TWILIGHT, at(-i));
    }
    await add("pf", TWILIGHT, {
      header: {
        ut_datetime: plusDays(T0, 30),
        reduction: "PROCESSED_FLAT",
        processing: "Science-Quality",
        processing_tag: "sq-2024",
        observation_type: "FLAT",
        object: "anything",
      },
    });
    const raw = await s.of("sci", "flat");
    assert.equal(raw.length, 20);
    assert.equal(raw.at(-1), "tw20");
    assert.deepEqual(await s.of("sci", "processed_flat"), ["pf"]);
  });
});

describe("GMOS spectroscopic flat", () => {
  it("matches wavelength ±0.001 and keeps 2", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE);
    await add("f-1", SPECTRAL_FLAT, at(-1 / 24));
    await add("f-2", SPECTRAL_FLAT, at(-2 / 24));
    await add("f-3", SPECTRAL_FLAT, at(-3 / 24));
    await add("cwl", SPECTRAL_FLAT, {
      header: { ut_datetime: T0, central_wavelength: 0.701 },
    });
    assert.deepEqual(await s.of("sci", "flat"), ["f-1", "f-2"]);
  });

  it("holds MOS/long-slit (λ > 0.55 µm) flats to 15° of elevation", async (t) => {
    const { s, add } = await gmos(t);
    // At elevation 60 the rotator limit is 15/cos(60°) = 30°.
    await add("sci", LS_SCIENCE);
    await add("el+14.9", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -3), elevation: 74.9 },
    });
    await add("el+15", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -1), elevation: 75 },
    });
    await add("el-15", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -1), elevation: 45 },
    });
    await add("rot+29.9", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -2), cass_rotator_pa: 39.9 },
    });
    await add("rot+30.1", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -1), cass_rotator_pa: 40.1 },
    });
    assert.deepEqual(await s.of("sci", "flat"), ["rot+29.9", "el+14.9"]);
  });

  it("has no elevation limit at λ ≤ 0.55 µm (unless R150), but keeps the rotator limit of 30°/cos(el)", async (t) => {
    const { s, add } = await gmos(t);
    const BLUE = { header: { central_wavelength: 0.55 } };
    await add("sci", LS_SCIENCE, BLUE);
    await add("r150", LS_SCIENCE, {
      header: { central_wavelength: 0.55 },
      inst: { disperser: "R150+_G5308" },
    });
    await add("el+40", SPECTRAL_FLAT, {
      header: {
        ut_datetime: plusDays(T0, -1),
        central_wavelength: 0.55,
        elevation: 20,
      },
    });
    await add("rot+59", SPECTRAL_FLAT, {
      header: {
        ut_datetime: plusDays(T0, -2),
        central_wavelength: 0.55,
        cass_rotator_pa: 69,
      },
    });
    await add("rot+61", SPECTRAL_FLAT, {
      header: {
        ut_datetime: plusDays(T0, -0.5),
        central_wavelength: 0.55,
        cass_rotator_pa: 71,
      },
    });
    await add("r150-el+20", SPECTRAL_FLAT, {
      header: {
        ut_datetime: plusDays(T0, -1),
        central_wavelength: 0.55,
        elevation: 40,
      },
      inst: { disperser: "R150+_G5308" },
    });
    assert.deepEqual(await s.of("sci", "flat"), ["el+40", "rot+59"]);
    assert.deepEqual(await s.of("r150", "flat"), []);
  });

  it("holds IFU flats to 7.5° below 0.55 µm, 15° above (the MOS/LS limit wins)", async (t) => {
    const { s, add } = await gmos(t);
    const IFU = { focal_plane_mask: "IFU-R" };
    await add("blue", LS_SCIENCE, {
      header: { central_wavelength: 0.5 },
      inst: IFU,
    });
    await add("red", LS_SCIENCE, { inst: IFU });
    await add("b-el+7", SPECTRAL_FLAT, {
      header: {
        ut_datetime: plusDays(T0, -2),
        central_wavelength: 0.5,
        elevation: 67,
      },
      inst: IFU,
    });
    await add("b-el+8", SPECTRAL_FLAT, {
      header: {
        ut_datetime: plusDays(T0, -1),
        central_wavelength: 0.5,
        elevation: 68,
      },
      inst: IFU,
    });
    await add("r-el+10", SPECTRAL_FLAT, {
      header: { ut_datetime: plusDays(T0, -1), elevation: 70 },
      inst: IFU,
    });
    assert.deepEqual(await s.of("blue", "flat"), ["b-el+7"]);
    assert.deepEqual(await s.of("red", "flat"), ["r-el+10"]);
  });

  it("drops the rotator limit at 85° elevation and above", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE, { header: { elevation: 85 } });
    await add("rot+170", SPECTRAL_FLAT, {
      header: {
        ut_datetime: plusDays(T0, -1),
        elevation: 85,
        cass_rotator_pa: 180,
      },
    });
    assert.deepEqual(await s.of("sci", "flat"), ["rot+170"]);
  });

  it("drops every flexure limit when the science has no elevation", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE, { header: { elevation: null } });
    await add("anywhere", SPECTRAL_FLAT, {
      header: {
        ut_datetime: plusDays(T0, -1),
        elevation: 20,
        cass_rotator_pa: 180,
      },
    });
    assert.deepEqual(await s.of("sci", "flat"), ["anywhere"]);
  });
});

describe("GMOS processed fringe", () => {
  it("matches filter and binning within 365 days, one kept", async (t) => {
    const { s, add } = await gmos(t);
    const FRINGE = like(TWILIGHT, {
      header: {
        reduction: "PROCESSED_FRINGE",
        processing: "Science-Quality",
        processing_tag: "sq-2024",
      },
    });
    await add("sci", IMAGING_SCIENCE);
    await add("fr-100", FRINGE, at(-100));
    await add("fr-50", FRINGE, at(-50));
    await add("fr-filter", FRINGE, {
      ...at(-1),
      inst: { filter_name: "z_G0304" },
    });
    await add("fr-365", FRINGE, at(365));
    assert.deepEqual(await s.of("sci", "processed_fringe"), ["fr-50"]);
  });
});

describe("GMOS spectrophotometric standard", () => {
  it("takes raw STANDARD-tagged spectra, any slit for long-slit science, R400 tolerance 200 px = 0.015 µm", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE);
    await add("std", SPECPHOT, at(-10));
    await add("other-slit", SPECPHOT, {
      ...at(-11),
      inst: { focal_plane_mask: "0.75arcsec" },
    });
    await add("ifu", SPECPHOT, {
      ...at(-1),
      inst: { focal_plane_mask: "IFU-2" },
    });
    await add("twilight", SPECPHOT, {
      header: { ut_datetime: plusDays(T0, -1), object: "Twilight" },
    });
    await add("untagged", SPECPHOT, {
      ...at(-1),
      tags: ["GEMINI", "GMOS", "LS", "RAW", "SPECT"],
    });
    await add("cwl+0.0149", SPECPHOT, {
      header: { ut_datetime: plusDays(T0, -12), central_wavelength: 0.7149 },
    });
    await add("cwl+0.015", SPECPHOT, {
      header: { ut_datetime: plusDays(T0, -1), central_wavelength: 0.715 },
    });
    await add("183d", SPECPHOT, at(183));
    await add("182d", SPECPHOT, at(182));
    // Scores: 0.027, 0.030, 0.499 and 12/365 + 0.0149/0.015 ≈ 1.026.
    assert.deepEqual(await s.of("sci", "standard"), [
      "std",
      "other-slit",
      "182d",
      "cwl+0.0149",
    ]);
  });

  it("orders by |Δt|/365 d + |Δλ|/tolerance, so a closer wavelength can beat a closer time", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE);
    // Score 1/365 + 0.01/0.015 ≈ 0.669 against 100/365 + 0 ≈ 0.274.
    await add("near-time", SPECPHOT, {
      header: { ut_datetime: plusDays(T0, -1), central_wavelength: 0.71 },
    });
    await add("near-wavelength", SPECPHOT, at(-100));
    // 50/365 + 0.003/0.015 ≈ 0.337.
    await add("middle", SPECPHOT, {
      header: { ut_datetime: plusDays(T0, -50), central_wavelength: 0.703 },
    });
    assert.deepEqual(await s.of("sci", "standard"), [
      "near-wavelength",
      "middle",
      "near-time",
    ]);
  });

  it("widens to 1000 px for MOS, takes IFU standards for IFU science, the same mask otherwise", async (t) => {
    const { s, add } = await gmos(t);
    await add("mos", LS_SCIENCE, {
      inst: { focal_plane_mask: "GN2019AQ001-01" },
      tags: ["GEMINI", "GMOS", "MOS", "RAW", "SPECT"],
    });
    await add("ifu", LS_SCIENCE, {
      inst: { focal_plane_mask: "IFU-R" },
      tags: ["GEMINI", "GMOS", "IFU", "RAW", "SPECT"],
    });
    await add("odd", LS_SCIENCE, {
      inst: { focal_plane_mask: "focus_array_new" },
      tags: ["GEMINI", "GMOS", "RAW", "SPECT"],
    });
    await add("slit+0.07", SPECPHOT, {
      header: { ut_datetime: plusDays(T0, -1), central_wavelength: 0.77 },
    });
    await add("slit+0.075", SPECPHOT, {
      header: { ut_datetime: plusDays(T0, -1), central_wavelength: 0.775 },
    });
    await add("ifu-2", SPECPHOT, {
      ...at(-2),
      inst: { focal_plane_mask: "IFU-2" },
    });
    await add("focus", SPECPHOT, {
      ...at(-3),
      inst: { focal_plane_mask: "focus_array_new" },
    });
    assert.deepEqual(await s.of("mos", "standard"), ["slit+0.07"]);
    assert.deepEqual(await s.of("ifu", "standard"), ["ifu-2"]);
    assert.deepEqual(await s.of("odd", "standard"), ["focus"]);
  });

  it("takes one processed standard (PROCESSED_STANDARD and STANDARD-tagged)", async (t) => {
    const { s, add } = await gmos(t);
    const PROCESSED = like(SPECPHOT, {
      header: {
        reduction: "PROCESSED_STANDARD",
        processing: "Science-Quality",
        processing_tag: "sq-2024",
      },
    });
    await add("sci", LS_SCIENCE);
    await add("ps-1", PROCESSED, at(-1));
    await add("ps-2", PROCESSED, at(-2));
    await add("raw", SPECPHOT, at(-0.5));
    assert.deepEqual(await s.of("sci", "processed_standard"), ["ps-1"]);
  });

  it("with no science wavelength has no wavelength window and only the entry-time order", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE, { header: { central_wavelength: null } });
    await add("near-old", SPECPHOT, {
      ...at(-1),
      entrytime: "2020-01-01T00:00:00Z",
    });
    await add("far-new", SPECPHOT, {
      header: { ut_datetime: plusDays(T0, -100), central_wavelength: 0.9 },
      entrytime: "2023-01-01T00:00:00Z",
    });
    assert.deepEqual(await s.of("sci", "standard"), ["far-new", "near-old"]);
  });
});

describe("GMOS photometric standard", () => {
  it("takes partnerCal OBJECT frames of a G?-CAL program with the filter, within a day", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("ps", PHOTSTD, at(-0.5));
    await add("gs-cal", PHOTSTD, {
      header: { ut_datetime: plusDays(T0, 0.6), program_id: "GS-CAL20190615" },
    });
    await add("not-cal", PHOTSTD, {
      header: { ut_datetime: plusDays(T0, 0.1), program_id: "GN-2019A-Q-2" },
    });
    await add("science", PHOTSTD, {
      header: { ut_datetime: plusDays(T0, 0.1), observation_class: "science" },
    });
    await add("filter", PHOTSTD, {
      ...at(0.1),
      inst: { filter_name: "g_G0301" },
    });
    await add("1d", PHOTSTD, at(-1));
    await add("binning-free", PHOTSTD, {
      ...at(0.7),
      inst: { detector_x_bin: 1 },
    });
    assert.deepEqual(await s.of("sci", "photometric_standard"), [
      "ps",
      "gs-cal",
      "binning-free",
    ]);
  });

  it("keeps 4", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    for (let i = 1; i <= 5; i++) {
      await add(`ps${i}`, PHOTSTD, at(i / 10));
    }
    assert.deepEqual(await s.of("sci", "photometric_standard"), [
      "ps1",
      "ps2",
      "ps3",
      "ps4",
    ]);
  });

  it("never finds a processed standard for imaging", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("processed", PHOTSTD, {
      header: {
        ut_datetime: plusDays(T0, -0.1),
        reduction: "PROCESSED_STANDARD",
        processing: "Science-Quality",
        processing_tag: "sq-2024",
      },
    });
    assert.deepEqual(await s.of("sci", "processed_standard"), []);
  });
});

describe("GMOS mask", () => {
  it("is the MASK frame whose data label is the science's mask name, at any time", async (t) => {
    const { s, add } = await gmos(t);
    await add(
      "sci",
      like(LS_SCIENCE, {
        inst: { focal_plane_mask: "GN2019AQ001-01" },
        tags: ["GEMINI", "GMOS", "MOS", "RAW", "SPECT"],
      }),
    );
    await add("mask", MASK, { header: { ut_datetime: "2010-01-01T00:00:00" } });
    await add("plain-gmos", MASK, {
      header: { ut_datetime: "2015-01-01T00:00:00", instrument: "GMOS" },
    });
    await add("other", MASK, {
      header: { ut_datetime: T0, data_label: "GN2019AQ001-02" },
    });
    assert.deepEqual(await s.of("sci", "mask"), ["plain-gmos"]);
  });
});

describe("GMOS slit illumination", () => {
  it("takes SLITILLUM-tagged frames with the same y binning, any x binning, within 183 days", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE);
    await add("si-xbin", SLITILLUM, { ...at(-2), inst: { detector_x_bin: 1 } });
    await add("si-ybin", SLITILLUM, { ...at(-1), inst: { detector_y_bin: 1 } });
    await add("si-183", SLITILLUM, at(-183));
    await add("untagged", SLITILLUM, {
      ...at(-0.5),
      tags: ["GEMINI", "GMOS", "LS", "RAW", "SPECT"],
    });
    assert.deepEqual(await s.of("sci", "slitillum"), ["si-xbin"]);
  });

  it("orders by |Δt|/183 d + |Δλ|/tolerance and keeps one, raw or processed", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", LS_SCIENCE);
    // 1/183 + 0.01/0.015 ≈ 0.67 against 60/183 ≈ 0.33.
    await add("near-time", SLITILLUM, {
      header: { ut_datetime: plusDays(T0, -1), central_wavelength: 0.71 },
    });
    await add("near-wavelength", SLITILLUM, at(-60));
    await add("processed", SLITILLUM, {
      header: {
        ut_datetime: plusDays(T0, -3),
        reduction: "PROCESSED_SLITILLUM",
        processing: "Science-Quality",
        processing_tag: "sq-2024",
      },
      tags: ["GMOS", "PROCESSED", "SPECT"],
    });
    assert.deepEqual(await s.of("sci", "slitillum"), ["near-wavelength"]);
    assert.deepEqual(await s.of("sci", "processed_slitillum"), ["processed"]);
  });
});

describe("GMOS BPM", () => {
  it("is the closest BPM at or before the frame whose array_name contains the science's", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE);
    await add("old", BPM, { header: { ut_datetime: "2015-01-01T00:00:00" } });
    await add("recent", BPM, {
      header: { ut_datetime: "2019-01-01T00:00:00" },
    });
    await add("same-instant", BPM, { header: { ut_datetime: T0 } });
    await add("after", BPM, {
      header: { ut_datetime: plusDays(T0, 1 / 86400) },
    });
    await add("other-arrays", BPM, {
      header: { ut_datetime: T0 },
      inst: { array_name: "e2v 10031-23-05" },
    });
    await add("superset", BPM, {
      header: { ut_datetime: plusDays(T0, -1) },
      inst: { array_name: `${ARRAYS},EXTRA` },
    });
    assert.deepEqual(await s.of("sci", "processed_bpm"), ["same-instant"]);
    const evaluation = await s.evaluate("sci");
    const bpm = evaluation.caltypes.find((c) => c.caltype === "processed_bpm");
    assert.deepEqual(bpm?.calHids, [s.id("same-instant")]);
  });

  it("is none when the science's array_name is blank", async (t) => {
    const { s, add } = await gmos(t);
    await add("sci", IMAGING_SCIENCE, { inst: { array_name: "  " } });
    await add("bpm", BPM);
    assert.deepEqual(await s.of("sci", "processed_bpm"), []);
  });
});
