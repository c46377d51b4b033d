/**
 * GNIRS (calibration_gnirs.py). Flats are the odd one: lamps by mode, an
 * interleave of IR and QH flats for cross-dispersed data, a preference for
 * the science's own observation, and (for HR-IFU) no acqCal flats.
 */
import type { Frame } from "../core/frame.js";
import { ReferenceRaised } from "../core/python.js";
import type {
  CalLookup,
  CalSearch,
  Clause,
  MatchFirst,
} from "../core/query.js";
import {
  buildSearch,
  byObservationType,
  contains,
  type InstrumentRules,
  type SearchSpec,
} from "./common.js";

const F = "calibration_gnirs.py";

const WAVELENGTH = { descriptor: "central_wavelength", plusMinus: 0.001 };

/** `desc(Header.observation_id == science's)`: same observation first. */
function sameObservationFirst(f: Frame): MatchFirst[] {
  return [
    {
      column: "h.observation_id",
      value: f.textValue("observation_id"),
      descriptor: "observation_id",
    },
  ];
}

/**
 * `get_gnirs_flat_query` (163-208). A PINHOLE-tagged science matches only
 * the decker, the second '&' part of its mask name (and raises without one).
 */
function flatBase(f: Frame): Clause[] {
  if (!f.tag("PINHOLE")) {
    return [];
  }
  const mask = f.text("focal_plane_mask");
  const decker = mask?.split("&")[1];
  if (mask === null || decker === undefined) {
    throw new ReferenceRaised(
      "focal_plane_mask.split('&')[1] raised for a PINHOLE frame",
    );
  }
  return [contains("i.focal_plane_mask", decker)];
}

const FLAT_QUERY: Omit<SearchSpec, "source" | "howmany"> = {
  frames: byObservationType("FLAT"),
  filters: flatBase,
  match: [
    "i.disperser",
    "i.camera",
    "i.filter_name",
    "i.array_name",
    "i.well_depth_setting",
  ],
  tolerances: [{ ...WAVELENGTH, when: (f: Frame) => f.get("spectroscopy") }],
  order: sameObservationFirst,
};

/** The flat query with the mask rule for non-PINHOLE science. */
function flatQuery(
  f: Frame,
  processed: boolean,
  extra: Clause[],
  howmany: number,
  withinDays?: number,
): CalSearch {
  const search = buildSearch(
    {
      ...FLAT_QUERY,
      source: `${F}:163-208`,
      howmany: { raw: howmany, processed: howmany },
      withinDays,
    },
    f,
    processed,
  );
  const mask: Clause[] = f.tag("PINHOLE")
    ? []
    : [
        {
          op: "=",
          column: "i.focal_plane_mask",
          value: f.text("focal_plane_mask"),
        },
      ];
  return { ...search, clauses: [...search.clauses, ...mask, ...extra] };
}

function hrIfu(f: Frame): boolean {
  const mask = f.text("focal_plane_mask");
  return mask !== null && mask !== "" && mask.includes("HR-IFU");
}

function crossDispersed(f: Frame): boolean {
  const disperser = f.text("disperser");
  return disperser !== null && disperser !== "" && disperser.includes("XD");
}

/**
 * flat (211-333). Processed flats have no time window at all. The
 * reference's prism_motor_steps rule never runs: that value is not among
 * the descriptors it copies, so `descriptors.get` always gives None. For
 * cross-dispersed data only the IRhigh list inherits the HR-IFU acqCal
 * exclusion; the QH list is built from a fresh query without it.
 */
function flat(f: Frame, processed: boolean): CalLookup {
  const howmany = processed ? 1 : 10;
  const notAcqCal: Clause[] = hrIfu(f)
    ? [{ op: "<>", column: "h.observation_class", value: "acqCal" }]
    : [];
  if (processed) {
    return { kind: "search", search: flatQuery(f, true, notAcqCal, howmany) };
  }
  if (crossDispersed(f)) {
    return {
      kind: "interleave",
      parts: [
        flatQuery(
          f,
          false,
          [...notAcqCal, { op: "=", column: "h.gcal_lamp", value: "IRhigh" }],
          howmany,
          90,
        ),
        flatQuery(
          f,
          false,
          [{ op: "like", column: "h.gcal_lamp", pattern: "QH%" }],
          howmany,
          90,
        ),
      ],
      limit: howmany,
    };
  }
  const wavelength = f.decimal("central_wavelength");
  const lamps: Clause[] = [
    { op: "=", column: "h.gcal_lamp", value: "IRhigh" },
    { op: "like", column: "h.gcal_lamp", pattern: "QH%" },
    ...(wavelength !== null && wavelength.truthy && wavelength.ge(4.25)
      ? [{ op: "=", column: "h.gcal_lamp", value: "Off" } as const]
      : []),
  ];
  return {
    kind: "search",
    search: flatQuery(
      f,
      false,
      [...notAcqCal, { op: "or", clauses: lamps }],
      howmany,
      90,
    ),
  };
}

/**
 * telluric and standard (442-543): OBJECT spectra with the science's setup;
 * a processed one needs only the tag (no reduction state), a raw one must be
 * partnerCal or progCal with QA Pass or Undefined.
 */
function starSpec(source: string, tag: string): SearchSpec {
  const spectra: Clause[] = [
    { op: "=", column: "h.spectroscopy", value: true },
    { op: "=", column: "h.observation_type", value: "OBJECT" },
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
        {
          op: "or",
          clauses: [
            { op: "=", column: "h.qa_state", value: "Pass" },
            { op: "=", column: "h.qa_state", value: "Undefined" },
          ],
        },
      ],
      processed: [
        ...spectra,
        { op: "like", column: "h.types", pattern: `%${tag}%` },
      ],
    },
    tolerances: [WAVELENGTH],
    match: [
      "h.spectroscopy",
      "i.disperser",
      "i.focal_plane_mask",
      "i.camera",
      "i.array_name",
      "i.filter_name",
    ],
    withinDays: 1,
    howmany: { raw: 8, processed: 1 },
  };
}

function spectroscopicObject(f: Frame): boolean {
  return f.is("observation_type", "OBJECT") && f.is("spectroscopy", true);
}

function camera(f: Frame, part: string): boolean {
  const value = f.text("camera");
  return value !== null && value !== "" && value.includes(part);
}

/** Non-XD spectroscopy: lamp-on flats below a wavelength, lamp-off above (64-87). */
const FLAT_LIMITS: {
  source: string;
  when: (f: Frame) => boolean;
  below: number;
}[] = [
  { source: "66-70", when: (f) => camera(f, "Short"), below: 2.7 },
  {
    source: "72-80",
    when: (f) =>
      !camera(f, "Short") &&
      camera(f, "Long") &&
      (f.text("disperser") ?? "").includes("32/mm"),
    below: 4.25,
  },
  {
    source: "82-87",
    when: (f) =>
      !camera(f, "Short") &&
      camera(f, "Long") &&
      !(f.text("disperser") ?? "").includes("32/mm"),
    below: 4.3,
  },
];

export const GNIRS: InstrumentRules = {
  name: "CalibrationGNIRS",
  source: F,
  instruments: ["GNIRS"],
  table: "gnirs",
  descriptors: [
    "read_mode",
    "well_depth_setting",
    "disperser",
    "focal_plane_mask",
    "camera",
    "filter_name",
    "array_name",
  ],
  applicability: [
    {
      source: `${F}:38-39`,
      when: (f) => f.is("observation_type", "BPM"),
      stop: true,
    },
    {
      source: `${F}:42-48`,
      when: (f) =>
        f.is("observation_type", "OBJECT") &&
        !f.isIn("observation_class", ["acq", "acqCal"]) &&
        f.is("spectroscopy", false),
      add: ["dark", "flat", "lampoff_flat", "processed_flat"],
    },
    {
      source: `${F}:51-55`,
      when: spectroscopicObject,
      add: ["telluric", "processed_telluric", "standard", "processed_standard"],
    },
    {
      // Raises TypeError for a spectrum with no central wavelength.
      source: `${F}:56-57`,
      when: (f) =>
        spectroscopicObject(f) && f.lessThan("central_wavelength", 2.8),
      add: ["arc"],
    },
    {
      source: `${F}:59-63`,
      when: (f) => spectroscopicObject(f) && crossDispersed(f),
      add: ["flat", "pinhole"],
    },
    ...FLAT_LIMITS.flatMap(({ source, when, below }) => [
      {
        source: `${F}:${source}`,
        when: (f: Frame) =>
          spectroscopicObject(f) &&
          !crossDispersed(f) &&
          when(f) &&
          f.lessThan("central_wavelength", below),
        add: ["flat" as const],
      },
      {
        source: `${F}:${source}`,
        when: (f: Frame) =>
          spectroscopicObject(f) &&
          !crossDispersed(f) &&
          when(f) &&
          !f.lessThan("central_wavelength", below),
        add: ["lampoff_flat" as const],
      },
    ]),
    {
      source: `${F}:91-92`,
      when: (f) =>
        f.is("observation_type", "FLAT") && f.is("gcal_lamp", "IRhigh"),
      add: ["lampoff_flat"],
    },
    { source: `${F}:94`, when: () => true, add: ["processed_bpm"] },
  ],
  methods: {
    bpm: {
      source: `${F}:96-124`,
      frames: byObservationType("BPM"),
      filters: () => [{ op: "notAfterFrame" }],
      match: ["h.instrument", "h.detector_binning", "i.array_name"],
      howmany: { raw: 1, processed: 1 },
    },
    dark: {
      source: `${F}:126-161`,
      frames: byObservationType("DARK"),
      match: [
        "h.exposure_time",
        "i.read_mode",
        "i.well_depth_setting",
        "i.array_name",
        "h.coadds",
      ],
      withinDays: 90,
      howmany: { raw: 10, processed: 1 },
    },
    flat,
    arc: {
      source: `${F}:335-371`,
      frames: byObservationType("ARC"),
      match: [
        "i.disperser",
        "i.focal_plane_mask",
        "i.filter_name",
        "i.array_name",
        "i.camera",
      ],
      tolerances: [WAVELENGTH],
      withinDays: 365,
      howmany: { raw: 1, processed: 1 },
    },
    pinhole: {
      source: `${F}:373-406`,
      frames: byObservationType("PINHOLE"),
      match: ["i.disperser", "i.camera", "i.array_name"],
      tolerances: [WAVELENGTH],
      withinDays: 365,
      howmany: { raw: 5, processed: 1 },
    },
    // lampoff_flat (408-439) is not_processed: raw flats with the lamp off.
    lampoff_flat: (f, processed) =>
      processed
        ? { kind: "none", why: "not_processed" }
        : {
            kind: "search",
            search: flatQuery(
              f,
              false,
              [{ op: "=", column: "h.gcal_lamp", value: "Off" }],
              10,
              1,
            ),
          },
    telluric: starSpec("442-490", "TELLURIC"),
    standard: starSpec("492-543", "STANDARD"),
  },
};
