/**
 * GMOS (calibration_gmos.py). The richest set: amplifier-area containment,
 * the 5.0arcsec slit family, flexure limits for spectroscopic flats, and the
 * weighted time/wavelength score for standards and slit illuminations.
 */
import type { Frame } from "../core/frame.js";
import type { CalLookup, Clause, Column, Order } from "../core/query.js";
import {
  byObservationType,
  byTag,
  contains,
  type InstrumentRules,
  runMethod,
  type SearchSpec,
} from "./common.js";

const F = "calibration_gmos.py";

/**
 * The amplifier rule shared by arc (raw), dark, bias and fringe: a science
 * frame read with a full-frame or central-spectrum ROI needs the same
 * amplifiers; any other ROI needs a calibration whose amp_read_area
 * contains the science's as a substring (LIKE, so its `_` and `%` act as
 * wildcards, as in the reference).
 */
function ampReadArea(f: Frame): Clause[] {
  if (f.isIn("detector_roi_setting", ["Full Frame", "Central Spectrum"])) {
    return [
      { op: "=", column: "i.amp_read_area", value: f.get("amp_read_area") },
    ];
  }
  const amps = f.text("amp_read_area");
  return amps === null ? [] : [contains("i.amp_read_area", amps)];
}

/** `gmos_gratingname` (gemini_metadata_utils/telescope_instruments.py:322-359). */
export function gmosGratingName(disperser: string | null): string | null {
  if (disperser === null) {
    return null;
  }
  let name = disperser.includes("_G") ? disperser.split("_G")[0]! : disperser;
  name = name.replace(/^\++|\++$/g, "");
  const gratings = [
    "MIRROR",
    "B480",
    "B600",
    "R600",
    "R400",
    "R831",
    "R150",
    "B1200",
  ];
  return gratings.includes(name) ? name : null;
}

/** `gmos_dispersion` (telescope_instruments.py:362-373), µm per unbinned pixel. */
export function gmosDispersion(disperser: string | null): number | null {
  const grating = gmosGratingName(disperser);
  if (grating === null || grating === "MIRROR") {
    return null;
  }
  return 0.03 / Number(grating.replace(/^[BR]+|[BR]+$/g, ""));
}

/** `_wavelength_tolerance` (870-897): pixels × dispersion, worst case if unknown. */
export function wavelengthTolerance(f: Frame, pixels = 200): number {
  const dispersion = gmosDispersion(f.text("disperser")) ?? 0.03 / 1200.0;
  return pixels * dispersion;
}

/** `_closest_wlen_time_order` (899-945). */
function closestWavelengthAndTime(
  f: Frame,
  timeRangeDays: number,
  wlenRange: number,
): Order {
  return {
    kind: "score",
    timeRangeDays,
    wlenRange,
    scienceWavelength: f.decimal("central_wavelength"),
  };
}

/** Python's str.isspace() characters, for "array_name.strip() == ''". */
const PY_WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0,
  0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007,
  0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

function pyBlank(s: string): boolean {
  return [...s].every((c) => PY_WHITESPACE.has(c.codePointAt(0)!));
}

const FLAT_MATCH: Column[] = [
  "h.instrument",
  "i.detector_x_bin",
  "i.detector_y_bin",
  "i.filter_name",
  "i.read_speed_setting",
  "i.gain_setting",
  "h.spectroscopy",
  "i.focal_plane_mask",
  "i.disperser",
];

/*
 * flat (546-601) puts amp_read_area in its match list for full-frame and
 * central-spectrum science and a LIKE otherwise: the same clauses as the
 * shared amplifier rule.
 */
const IMAGING_FLAT: SearchSpec = {
  source: `${F}:409-449`,
  frames: {
    // Imaging flats are twilight flats: dayCal OBJECT frames of 'Twilight'.
    raw: [
      { op: "=", column: "h.reduction", value: "RAW" },
      { op: "=", column: "h.observation_class", value: "dayCal" },
      { op: "=", column: "h.observation_type", value: "OBJECT" },
      { op: "=", column: "h.object", value: "Twilight" },
    ],
    processed: [{ op: "=", column: "h.reduction", value: "PROCESSED_FLAT" }],
  },
  filters: ampReadArea,
  match: FLAT_MATCH,
  withinDays: 180,
  howmany: { raw: 20, processed: 1 },
};

/**
 * The flexure limits of spectroscopic flats (451-513). The elevation limit
 * is 30° unless the mask is an IFU (7.5°) or the setup is MOS/long-slit
 * (15°, which wins over the IFU's 7.5° when both hold); it applies only
 * for IFU or MOS/LS. Below 85° elevation the rotator must be within
 * limit/cos(el). Exceptions the reference swallows leave a flag false: a
 * NULL mask is not IFU, and a NULL wavelength is never MOS/LS even with R150.
 */
export function flexure(f: Frame): {
  ifu: boolean;
  mosOrLs: boolean;
  underEightyFive: boolean;
  elevationLimit: number;
  rotatorLimit: number;
} {
  let ifu = false;
  let mosOrLs = false;
  let elevationLimit = 30.0;
  let underEightyFive = false;
  let rotatorLimit = 0.0;
  const elevation = f.decimal("elevation");
  if (elevation !== null) {
    const mask = f.text("focal_plane_mask");
    if (mask !== null) {
      ifu = mask.startsWith("IFU");
      if (ifu) {
        elevationLimit = 7.5;
      }
    }
    const wavelength = f.decimal("central_wavelength");
    const disperser = f.text("disperser");
    if (wavelength !== null) {
      if (wavelength.gt(0.55)) {
        mosOrLs = true;
      } else if (disperser !== null) {
        mosOrLs = disperser.startsWith("R150");
      }
    }
    if (mosOrLs) {
      elevationLimit = 15.0;
    }
    underEightyFive = elevation.lt(85);
    if (underEightyFive) {
      // math.radians(x) is x * (pi / 180.0) in CPython.
      rotatorLimit =
        elevationLimit / Math.cos(elevation.toFloat() * (Math.PI / 180.0));
    }
  }
  return { ifu, mosOrLs, underEightyFive, elevationLimit, rotatorLimit };
}

const SPECTROSCOPY_FLAT: SearchSpec = {
  source: `${F}:451-524`,
  frames: byObservationType("FLAT"),
  filters: ampReadArea,
  match: FLAT_MATCH,
  tolerances: [
    { descriptor: "central_wavelength", plusMinus: 0.001 },
    {
      descriptor: "elevation",
      plusMinus: (f) => flexure(f).elevationLimit,
      when: (f) => flexure(f).ifu,
    },
    {
      descriptor: "elevation",
      plusMinus: (f) => flexure(f).elevationLimit,
      when: (f) => flexure(f).mosOrLs,
    },
    {
      descriptor: "cass_rotator_pa",
      plusMinus: (f) => flexure(f).rotatorLimit,
      when: (f) => flexure(f).underEightyFive,
    },
  ],
  withinDays: 180,
  howmany: { raw: 2, processed: 1 },
};

const PROCESSED_FRINGE: SearchSpec = {
  source: `${F}:609-653`,
  frames: {
    raw: [],
    processed: [{ op: "=", column: "h.reduction", value: "PROCESSED_FRINGE" }],
  },
  filters: ampReadArea,
  match: [
    "h.instrument",
    "i.detector_x_bin",
    "i.detector_y_bin",
    "i.filter_name",
  ],
  withinDays: 365,
  howmany: { raw: 1, processed: 1 },
};

/**
 * specphot (681-752): any frame tagged STANDARD (not Twilight); MOS and
 * long-slit science take any `arcsec` slit, IFU science any IFU, anything
 * else the same mask. The wavelength window is 200 unbinned pixels (1000 for
 * MOS), and the weighted score orders them.
 */
function specphotTolerance(f: Frame): number {
  return f.tag("MOS") ? wavelengthTolerance(f, 1000) : wavelengthTolerance(f);
}

const SPECPHOT: SearchSpec = {
  source: `${F}:681-752`,
  guards: ["not_imaging"],
  frames: {
    raw: [
      { op: "=", column: "h.reduction", value: "RAW" },
      { op: "=", column: "h.observation_type", value: "OBJECT" },
      { op: "=", column: "h.spectroscopy", value: true },
    ],
    processed: [
      { op: "=", column: "h.reduction", value: "PROCESSED_STANDARD" },
    ],
  },
  filters: (f) => [
    { op: "like", column: "h.types", pattern: "%STANDARD%" },
    { op: "<>", column: "h.object", value: "Twilight" },
    f.tag("MOS") || f.tag("LS")
      ? contains("i.focal_plane_mask", "arcsec")
      : f.tag("IFU")
        ? contains("i.focal_plane_mask", "IFU")
        : {
            op: "=",
            column: "i.focal_plane_mask",
            value: f.text("focal_plane_mask"),
          },
  ],
  match: ["h.instrument", "i.filter_name", "i.disperser"],
  tolerances: [
    { descriptor: "central_wavelength", plusMinus: specphotTolerance },
  ],
  withinDays: 183,
  order: (f) => closestWavelengthAndTime(f, 365, specphotTolerance(f)),
  howmany: { raw: 4, processed: 1 },
};

const PHOTOMETRIC_STANDARD: SearchSpec = {
  source: `${F}:755-789`,
  guards: ["not_processed", "not_spectroscopy"],
  // OBJECT partnerCal frames of a CAL program; no RAW condition.
  frames: {
    raw: [
      { op: "=", column: "h.observation_type", value: "OBJECT" },
      { op: "=", column: "h.observation_class", value: "partnerCal" },
      { op: "like", column: "h.program_id", pattern: "G_-CAL%" },
    ],
    processed: [],
  },
  match: ["h.instrument", "i.filter_name"],
  withinDays: 1,
  howmany: { raw: 4, processed: 4 },
};

export const GMOS: InstrumentRules = {
  name: "CalibrationGMOS",
  source: F,
  instruments: ["GMOS", "GMOS-N", "GMOS-S"],
  table: "gmos",
  descriptors: [
    "disperser",
    "filter_name",
    "focal_plane_mask",
    "detector_x_bin",
    "detector_y_bin",
    "array_name",
    "amp_read_area",
    "read_speed_setting",
    "gain_setting",
    "nodandshuffle",
    "nod_count",
    "nod_pixels",
    "prepared",
    "overscan_trimmed",
    "overscan_subtracted",
  ],
  applicability: [
    {
      source: `${F}:63-64`,
      when: (f) => f.isIn("observation_type", ["MASK", "BPM"]),
      stop: true,
    },
    {
      source: `${F}:67-68`,
      when: (f) => f.tag("PROCESSED_SCIENCE"),
      stop: true,
    },
    {
      source: `${F}:70-87`,
      when: (f) =>
        !f.isIn("observation_type", ["BIAS", "ARC"]) &&
        !f.isIn("observation_class", ["acq", "acqCal"]) &&
        !f.is("detector_roi_setting", "Central Stamp"),
      add: ["bias", "processed_bias"],
    },
    {
      source: `${F}:89-93`,
      when: (f) =>
        f.is("spectroscopy", true) && f.is("observation_type", "FLAT"),
      add: ["arc", "processed_arc"],
    },
    {
      source: `${F}:99-106`,
      when: spectroscopicScience,
      add: ["arc", "processed_arc", "flat", "processed_flat"],
    },
    {
      source: `${F}:109-110`,
      when: (f) => spectroscopicScience(f) && !f.tag("STANDARD"),
      add: ["standard"],
    },
    {
      source: `${F}:112-115`,
      when: (f) =>
        spectroscopicScience(f) &&
        !f.tag("STANDARD") &&
        f.get("central_wavelength") !== null,
      add: ["processed_standard", "processed_slitillum", "slitillum"],
    },
    {
      source: `${F}:121-129`,
      when: imagingScience,
      add: ["flat", "processed_flat", "processed_fringe"],
    },
    {
      source: `${F}:130-131`,
      when: (f) => imagingScience(f) && f.get("central_wavelength") !== null,
      add: ["processed_standard"],
    },
    {
      source: `${F}:134-135`,
      when: (f) => imagingScience(f) && f.is("observation_class", "science"),
      add: ["photometric_standard"],
    },
    {
      // Nod-and-shuffle darks only before 2020 (the reference's date hack).
      source: `${F}:138-149`,
      when: (f) =>
        f.is("nodandshuffle", true) &&
        f.is("observation_type", "OBJECT") &&
        f.yearBefore(2020),
      add: ["dark", "processed_dark"],
    },
    { source: `${F}:152-153`, when: (f) => f.tag("MOS"), add: ["mask"] },
    {
      source: `${F}:156-158`,
      when: (f) => f.truthy("detector_x_bin") && f.truthy("detector_y_bin"),
      add: ["processed_bpm"],
    },
  ],
  methods: {
    arc: {
      source: `${F}:163-234`,
      guards: ["not_imaging"],
      frames: byObservationType("ARC"),
      filters: (f, processed) => [
        // Any *arcsec slit serves the 5.0arcsec science; otherwise the same mask.
        f.is("focal_plane_mask", "5.0arcsec")
          ? { op: "like", column: "i.focal_plane_mask", pattern: "%arcsec" }
          : {
              op: "=",
              column: "i.focal_plane_mask",
              value: f.text("focal_plane_mask"),
            },
        // Processed arcs go by ROI name instead of amplifiers.
        ...(processed ? processedArcRoi(f) : ampReadArea(f)),
      ],
      match: [
        "h.instrument",
        "i.disperser",
        "i.filter_name",
        "i.detector_x_bin",
        "i.detector_y_bin",
      ],
      tolerances: [{ descriptor: "central_wavelength", plusMinus: 0.001 }],
      withinDays: 365,
      howmany: { raw: 1, processed: 1 },
    },
    dark: {
      source: `${F}:238-300`,
      frames: byObservationType("DARK"),
      filters: ampReadArea,
      match: [
        "h.instrument",
        "i.detector_x_bin",
        "i.detector_y_bin",
        "i.read_speed_setting",
        "i.gain_setting",
        "i.nod_count",
        "i.nod_pixels",
      ],
      tolerances: [{ descriptor: "exposure_time", plusMinus: 50.0 }],
      withinDays: 365,
      howmany: { raw: 15, processed: 1 },
    },
    bias: {
      source: `${F}:302-371`,
      frames: byObservationType("BIAS"),
      filters: (f, processed) => [
        ...ampReadArea(f),
        // Only processed biases of PREPARED science must match the overscan state.
        ...(processed && f.is("prepared", true)
          ? ([
              {
                op: "=",
                column: "i.overscan_trimmed",
                value: f.get("overscan_trimmed"),
              },
              {
                op: "=",
                column: "i.overscan_subtracted",
                value: f.get("overscan_subtracted"),
              },
            ] as Clause[])
          : []),
      ],
      match: [
        "h.instrument",
        "i.detector_x_bin",
        "i.detector_y_bin",
        "i.read_speed_setting",
        "i.gain_setting",
      ],
      withinDays: 90,
      howmany: { raw: 50, processed: 1 },
    },
    bpm: (f, processed) => bpm(f, processed),
    flat: (f, processed) =>
      runMethod(
        f.truthy("spectroscopy") ? SPECTROSCOPY_FLAT : IMAGING_FLAT,
        f,
        processed,
      ),
    fringe: (f, processed): CalLookup =>
      processed
        ? runMethod(PROCESSED_FRINGE, f, true)
        : { kind: "none", why: "a raw fringe does not exist" },
    standard: (f, processed) =>
      runMethod(
        f.truthy("spectroscopy") ? SPECPHOT : PHOTOMETRIC_STANDARD,
        f,
        processed,
      ),
    specphot: SPECPHOT,
    photometric_standard: PHOTOMETRIC_STANDARD,
    mask: {
      // A MOS mask's data label is the science's focal_plane_mask; any
      // instrument starting GMOS, and no time window.
      source: `${F}:792-826`,
      guards: ["not_processed"],
      frames: { raw: [], processed: [] },
      filters: (f) => [
        { op: "=", column: "h.observation_type", value: "MASK" },
        { op: "=", column: "h.data_label", value: f.text("focal_plane_mask") },
        { op: "like", column: "h.instrument", pattern: "GMOS%" },
      ],
      howmany: { raw: 1, processed: 1 },
    },
    slitillum: {
      source: `${F}:828-867`,
      guards: ["not_imaging"],
      frames: byTag("SLITILLUM"),
      // Same spatial (y) binning only.
      match: [
        "h.instrument",
        "i.disperser",
        "i.detector_y_bin",
        "i.filter_name",
        "i.focal_plane_mask",
      ],
      tolerances: [
        {
          descriptor: "central_wavelength",
          plusMinus: (f) => wavelengthTolerance(f),
        },
      ],
      withinDays: 183,
      order: (f) => closestWavelengthAndTime(f, 183, wavelengthTolerance(f)),
      howmany: { raw: 1, processed: 1 },
    },
  },
};

function spectroscopicScience(f: Frame): boolean {
  return (
    f.is("spectroscopy", true) &&
    f.is("observation_type", "OBJECT") &&
    !f.is("object", "Twilight")
  );
}

function imagingScience(f: Frame): boolean {
  return (
    f.is("spectroscopy", false) &&
    f.is("focal_plane_mask", "Imaging") &&
    f.is("observation_type", "OBJECT") &&
    !f.is("object", "Twilight") &&
    !f.isIn("observation_class", ["acq", "acqCal"])
  );
}

function processedArcRoi(f: Frame): Clause[] {
  if (f.is("detector_roi_setting", "Central Spectrum")) {
    return [
      {
        op: "in",
        column: "h.detector_roi_setting",
        values: ["Full Frame", "Central Spectrum"],
      },
    ];
  }
  return [{ op: "=", column: "h.detector_roi_setting", value: "Full Frame" }];
}

/**
 * bpm (373-407): the closest BPM taken at or before the frame whose
 * array_name contains the science's; none at all when the science's
 * array_name is missing or blank.
 */
function bpm(f: Frame, processed: boolean): CalLookup {
  const arrays = f.text("array_name");
  if (arrays === null || pyBlank(arrays)) {
    return { kind: "none", why: "no array_name" };
  }
  return runMethod(
    {
      source: `${F}:373-407`,
      frames: byObservationType("BPM"),
      filters: () => [
        { op: "notAfterFrame" },
        { op: "like", column: "i.array_name", pattern: `%${arrays}%` },
      ],
      match: ["h.instrument", "i.detector_x_bin", "i.detector_y_bin"],
      howmany: { raw: 1, processed: 1 },
    },
    f,
    processed,
  );
}
