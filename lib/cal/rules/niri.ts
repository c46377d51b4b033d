/**
 * NIRI (calibration_niri.py). No rule matches the instrument name: the join
 * with the niri table is what keeps other instruments out.
 */
import type { Frame } from "../core/frame.js";
import { ReferenceRaised } from "../core/python.js";
import type { Clause } from "../core/query.js";
import { byObservationType, type InstrumentRules } from "./common.js";

const F = "calibration_niri.py";

/** No flats for L', M', Br-alpha, its continuum or hydrocarbon (57). */
const NO_FLAT_FILTERS = [
  "Lprime_G0207",
  "Mprime_G0208",
  "Bra_G0238",
  "Bracont_G0237",
  "hydrocarb_G0231",
];

/**
 * `_parse_section` (29-38): a section written as a tuple or list becomes the
 * `Section(...)` text the table holds; anything else passes unchanged.
 */
export function niriSection(section: string | null): string | null {
  if (section === null) {
    return null;
  }
  if (section === "") {
    throw new ReferenceRaised("IndexError: string index out of range");
  }
  if ("([".includes(section[0]!)) {
    const parts = section.slice(1, -1).split(",");
    if (parts.length === 4) {
      const [x1, x2, y1, y2] = parts.map((p) => p.trim());
      return `Section(x1=${x1}, x2=${x2}, y1=${y1}, y2=${y2})`;
    }
  }
  return section;
}

function sameSection(f: Frame): Clause {
  return {
    op: "=",
    column: "i.data_section",
    value: niriSection(f.text("data_section")),
  };
}

function imagingObject(f: Frame): boolean {
  return f.is("observation_type", "OBJECT") && f.is("spectroscopy", false);
}

function spectroscopicObject(f: Frame): boolean {
  return f.is("observation_type", "OBJECT") && f.is("spectroscopy", true);
}

export const NIRI: InstrumentRules = {
  name: "CalibrationNIRI",
  source: F,
  instruments: ["NIRI"],
  table: "niri",
  descriptors: [
    "data_section",
    "read_mode",
    "well_depth_setting",
    "filter_name",
    "camera",
    "focal_plane_mask",
    "disperser",
  ],
  applicability: [
    {
      source: `${F}:44-45`,
      when: (f) => f.is("observation_type", "BPM"),
      stop: true,
    },
    { source: `${F}:48-50`, when: imagingObject, add: ["processed_flat"] },
    {
      source: `${F}:51-54`,
      when: (f) =>
        imagingObject(f) &&
        f.is("observation_class", "partnerCal") &&
        !f.isIn("filter_name", NO_FLAT_FILTERS),
      add: ["flat"],
    },
    {
      source: `${F}:55-56`,
      when: (f) => imagingObject(f) && f.is("observation_class", "science"),
      add: ["dark"],
    },
    {
      source: `${F}:58-59`,
      when: (f) =>
        imagingObject(f) &&
        f.is("observation_class", "science") &&
        !f.isIn("filter_name", NO_FLAT_FILTERS),
      add: ["flat"],
    },
    {
      source: `${F}:60`,
      when: (f) => imagingObject(f) && f.is("observation_class", "science"),
      add: ["photometric_standard"],
    },
    {
      source: `${F}:63-66`,
      when: (f) =>
        f.is("observation_type", "FLAT") &&
        f.is("spectroscopy", false) &&
        !f.is("gcal_lamp", "Off"),
      add: ["lampoff_flat"],
    },
    { source: `${F}:69-71`, when: spectroscopicObject, add: ["flat", "arc"] },
    {
      source: `${F}:73-75`,
      when: (f) =>
        spectroscopicObject(f) && f.is("observation_class", "science"),
      add: ["telluric", "processed_flat"],
    },
    { source: `${F}:77`, when: () => true, add: ["processed_bpm"] },
  ],
  methods: {
    bpm: {
      source: `${F}:79-105`,
      frames: byObservationType("BPM"),
      filters: () => [{ op: "notAfterFrame" }],
      match: ["h.instrument", "h.detector_binning"],
      howmany: { raw: 1, processed: 1 },
    },
    dark: {
      source: `${F}:107-141`,
      frames: byObservationType("DARK"),
      filters: (f) => [sameSection(f)],
      match: ["i.read_mode", "i.well_depth_setting", "h.coadds"],
      tolerances: [{ descriptor: "exposure_time", plusMinus: 0.01 }],
      withinDays: 180,
      howmany: { raw: 10, processed: 1 },
    },
    flat: {
      source: `${F}:143-192`,
      frames: byObservationType("FLAT"),
      filters: (f) => [
        {
          op: "or",
          clauses: [
            { op: "=", column: "h.gcal_lamp", value: "IRhigh" },
            { op: "=", column: "h.gcal_lamp", value: "IRlow" },
            { op: "like", column: "h.gcal_lamp", pattern: "QH%" },
            // Meant for the M grism; the table's name for it is
            // 'Mgrism_G5206', so this never applies.
            ...(f.is("disperser", "Mgrism")
              ? [{ op: "=", column: "h.gcal_lamp", value: "Off" } as const]
              : []),
          ],
        },
        sameSection(f),
      ],
      match: [
        "i.well_depth_setting",
        "i.filter_name",
        "i.camera",
        "i.focal_plane_mask",
        "i.disperser",
      ],
      tolerances: [
        {
          descriptor: "central_wavelength",
          plusMinus: 0.001,
          when: (f) => f.get("spectroscopy"),
        },
      ],
      withinDays: 180,
      howmany: { raw: 10, processed: 1 },
    },
    arc: {
      source: `${F}:194-229`,
      frames: byObservationType("ARC"),
      filters: (f) => [sameSection(f)],
      match: ["i.filter_name", "i.camera", "i.focal_plane_mask", "i.disperser"],
      tolerances: [{ descriptor: "central_wavelength", plusMinus: 0.001 }],
      withinDays: 180,
      howmany: { raw: 1, processed: 1 },
    },
    lampoff_flat: {
      source: `${F}:231-268`,
      guards: ["not_processed"],
      frames: byObservationType("FLAT"),
      filters: (f) => [
        { op: "=", column: "h.gcal_lamp", value: "Off" },
        sameSection(f),
      ],
      match: [
        "i.well_depth_setting",
        "i.filter_name",
        "i.camera",
        "i.disperser",
      ],
      withinDays: 1,
      howmany: { raw: 10, processed: 10 },
    },
    photometric_standard: {
      source: `${F}:270-307`,
      guards: ["not_processed"],
      frames: {
        raw: [
          { op: "=", column: "h.reduction", value: "RAW" },
          { op: "=", column: "h.observation_type", value: "OBJECT" },
          { op: "=", column: "h.spectroscopy", value: false },
          { op: "=", column: "h.phot_standard", value: true },
        ],
        processed: [],
      },
      match: ["i.filter_name", "i.camera"],
      withinDays: 1,
      howmany: { raw: 10, processed: 10 },
    },
    telluric: {
      source: `${F}:309-346`,
      guards: ["not_processed"],
      frames: {
        raw: [
          { op: "=", column: "h.reduction", value: "RAW" },
          { op: "=", column: "h.spectroscopy", value: true },
          { op: "=", column: "h.observation_type", value: "OBJECT" },
          { op: "=", column: "h.observation_class", value: "partnerCal" },
        ],
        processed: [],
      },
      match: ["i.filter_name", "i.camera", "i.focal_plane_mask", "i.disperser"],
      tolerances: [{ descriptor: "central_wavelength", plusMinus: 0.001 }],
      withinDays: 1,
      howmany: { raw: 10, processed: 10 },
    },
  },
};
