/**
 * F2 (calibration_f2.py). Darks match the exposure time exactly; flats,
 * arcs, tellurics and standards share the "common descriptors" (disperser,
 * Lyot stop, filter, focal-plane mask).
 */
import type { Frame } from "../core/frame.js";
import type { Clause, Column } from "../core/query.js";
import {
  byObservationType,
  type InstrumentRules,
  type SearchSpec,
} from "./common.js";

const F = "calibration_f2.py";

/** `common_descriptors` (106-115). */
const COMMON: Column[] = [
  "i.disperser",
  "i.lyot_stop",
  "i.filter_name",
  "i.focal_plane_mask",
];

const WAVELENGTH = { descriptor: "central_wavelength", plusMinus: 0.001 };

const WAVELENGTH_IF_SPECTROSCOPY = {
  ...WAVELENGTH,
  when: (f: Frame) => f.get("spectroscopy"),
};

/**
 * telluric and standard (295-381): OBJECT spectra; a processed one needs the
 * tag (and no reduction state), a raw one must be partnerCal or progCal.
 */
function starSpec(source: string, tag: string, withinDays: number): SearchSpec {
  const spectra: Clause[] = [
    { op: "=", column: "h.observation_type", value: "OBJECT" },
    { op: "=", column: "h.spectroscopy", value: true },
  ];
  return {
    source: `${F}:${source}`,
    frames: {
      raw: [
        ...spectra,
        { op: "=", column: "h.reduction", value: "RAW" },
        {
          op: "or",
          clauses: [
            { op: "=", column: "h.observation_class", value: "partnerCal" },
            { op: "=", column: "h.observation_class", value: "progCal" },
          ],
        },
      ],
      processed: [
        ...spectra,
        { op: "like", column: "h.types", pattern: `%${tag}%` },
      ],
    },
    match: COMMON,
    tolerances: [WAVELENGTH],
    withinDays,
    howmany: { raw: 10, processed: 10 },
  };
}

function imagingObject(f: Frame): boolean {
  return (
    f.is("observation_type", "OBJECT") &&
    f.is("spectroscopy", false) &&
    !f.isIn("observation_class", ["acq", "acqCal"])
  );
}

function spectroscopicObject(f: Frame): boolean {
  return f.is("observation_type", "OBJECT") && f.is("spectroscopy", true);
}

export const F2: InstrumentRules = {
  name: "CalibrationF2",
  source: F,
  instruments: ["F2"],
  table: "f2",
  descriptors: [
    "read_mode",
    "disperser",
    "focal_plane_mask",
    "filter_name",
    "lyot_stop",
  ],
  applicability: [
    {
      source: `${F}:38-39`,
      when: (f) => f.is("observation_type", "BPM"),
      stop: true,
    },
    {
      source: `${F}:42-48`,
      when: imagingObject,
      add: ["dark", "processed_dark", "flat", "processed_flat"],
    },
    {
      source: `${F}:50-51`,
      when: (f) => imagingObject(f) && f.is("observation_class", "science"),
      add: ["photometric_standard"],
    },
    {
      source: `${F}:54-60`,
      when: spectroscopicObject,
      add: ["dark", "processed_dark", "flat", "processed_flat", "arc"],
    },
    {
      source: `${F}:63-65`,
      when: (f) =>
        spectroscopicObject(f) && f.is("observation_class", "science"),
      add: ["telluric", "standard"],
    },
    {
      source: `${F}:69-71`,
      when: (f) => f.is("observation_type", "FLAT"),
      add: ["dark", "processed_dark"],
    },
    {
      source: `${F}:74-78`,
      when: (f) => f.is("observation_type", "ARC"),
      add: ["dark", "processed_dark", "flat", "processed_flat"],
    },
    {
      source: `${F}:80-82`,
      when: (f) =>
        f.is("observation_type", "ARC") &&
        f.isIn("filter_name", ["HK", "K-long"]),
      add: ["lampoff_flat"],
    },
    { source: `${F}:84`, when: () => true, add: ["processed_bpm"] },
  ],
  methods: {
    dark: {
      source: `${F}:86-104`,
      frames: byObservationType("DARK"),
      match: ["h.exposure_time", "i.read_mode"],
      withinDays: 90,
      howmany: { raw: 10, processed: 1 },
    },
    flat: {
      source: `${F}:117-152`,
      frames: byObservationType("FLAT"),
      match: COMMON,
      tolerances: [WAVELENGTH_IF_SPECTROSCOPY],
      withinDays: 90,
      howmany: { raw: 10, processed: 1 },
    },
    arc: {
      source: `${F}:154-186`,
      frames: byObservationType("ARC"),
      match: COMMON,
      tolerances: [WAVELENGTH],
      withinDays: 90,
      howmany: { raw: 1, processed: 1 },
    },
    bpm: {
      source: `${F}:188-216`,
      frames: byObservationType("BPM"),
      filters: () => [{ op: "notAfterFrame" }],
      match: ["h.instrument", "h.detector_binning"],
      howmany: { raw: 1, processed: 1 },
    },
    lampoff_flat: {
      source: `${F}:218-255`,
      guards: ["not_processed"],
      frames: byObservationType("FLAT"),
      filters: () => [{ op: "=", column: "h.gcal_lamp", value: "Off" }],
      match: [...COMMON, "h.exposure_time"],
      tolerances: [WAVELENGTH_IF_SPECTROSCOPY],
      withinDays: 1,
      howmany: { raw: 10, processed: 1 },
    },
    photometric_standard: {
      // OBJECT partnerCal frames, raw or not, any mode.
      source: `${F}:257-293`,
      guards: ["not_processed"],
      frames: {
        raw: [
          { op: "=", column: "h.observation_type", value: "OBJECT" },
          { op: "=", column: "h.observation_class", value: "partnerCal" },
        ],
        processed: [],
      },
      match: ["i.filter_name", "i.lyot_stop"],
      withinDays: 1,
      howmany: { raw: 10, processed: 10 },
    },
    telluric: starSpec("295-336", "TELLURIC", 1),
    standard: starSpec("338-381", "STANDARD", 90),
  },
};
