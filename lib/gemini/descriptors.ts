/**
 * Descriptors: the values the archive's `header` row is made from, computed
 * from the headers as the reference's metadata library does
 * (docs/MAPPING-NOTES.md §1.2, §3 and §5). A descriptor that fails gives null
 * with the reason recorded, never a crash: a bad header degrades to NULL
 * columns, it does not fail the ingest.
 *
 * This is the generic set shared by every Gemini instrument; per-instrument
 * descriptors (filters, dispersers, binning, read modes, RA/Dec from the WCS)
 * join as tables per instrument class.
 */
import type { FitsValue } from "../fits/card.js";
import { filterWavelength, nearestBand } from "./common.js";
import { F2_DESCRIPTORS } from "./f2.js";
import {
  type Descriptor,
  DescriptorError,
  type DescriptorValue,
  type GeminiFile,
  type InstrumentClass,
} from "./gemini-file.js";
import { GMOS_DESCRIPTORS } from "./gmos.js";
import { GNIRS_DESCRIPTORS } from "./gnirs.js";
import { phuScalar } from "./model.js";
import { NIRI_DESCRIPTORS } from "./niri.js";
import { FILTER_DESCRIPTORS, OPTICS_DESCRIPTORS } from "./optics.js";
import { GENERIC_POSITION, gnirsPosition } from "./position.js";
import { airmassDescriptor, PhuView } from "./tags.js";
import { localTime, utDatetime } from "./times.js";

export {
  DescriptorError,
  type DescriptorValue,
  type GeminiFile,
} from "./gemini-file.js";
export { geminiFile } from "./model.js";
export { localTime, utDatetime } from "./times.js";

const phuValue =
  (keyword: string): Descriptor =>
  (f) =>
    phuScalar(f, keyword);

/** §3.2: "Any" → 100, "NN-percentile" → NN, anything else → null. */
export function parsePercentile(value: FitsValue | undefined): number | null {
  if (value === "Any") {
    return 100;
  }
  const match =
    typeof value === "string" ? /^(\d\d)-percentile$/.exec(value) : null;
  return match === null ? null : Number(match[1]);
}

/** §5.4 */
export function qaState(f: GeminiFile): string {
  const read = (keyword: string): string => {
    const value = f.phu.get(keyword) ?? "UNKNOWN";
    if (typeof value !== "string") {
      throw new DescriptorError(`${keyword} is not a string`);
    }
    return value;
  };
  const p = read("RAWPIREQ");
  const g = read("RAWGEMQA");
  const [pu, gu] = [p.toUpperCase(), g.toUpperCase()];
  if (pu === "UNKNOWN" || gu === "UNKNOWN") {
    return "Undefined";
  }
  if (pu === "YES" && gu === "USABLE") {
    return "Pass";
  }
  if (pu === "NO" && gu === "USABLE") {
    return "Usable";
  }
  if (gu === "BAD") {
    return "Fail";
  }
  if (pu === "CHECK" || gu === "CHECK") {
    return "CHECK";
  }
  return `${p}:${g}`;
}

/** §5.5 */
export function cassRotatorPa(f: GeminiFile): number | null {
  const value = f.phu.get("CRPA") ?? 400;
  if (typeof value !== "number") {
    throw new DescriptorError("CRPA is not a number");
  }
  return Math.abs(value) <= 360 ? value : null;
}

/** int(COADDS), default 1: a number is truncated, a string must hold an integer. */
export function coadds(f: GeminiFile): number {
  const value = f.phu.get("COADDS") ?? 1;
  if (typeof value === "number") {
    return Math.trunc(value);
  }
  if (typeof value === "string" && /^\s*[+-]?\d+\s*$/.test(value)) {
    return Number(value);
  }
  throw new DescriptorError(
    `COADDS is not an integer: ${JSON.stringify(value)}`,
  );
}

function exptime(f: GeminiFile): number | null {
  const value = f.phu.get("EXPTIME") ?? -1;
  if (typeof value !== "number") {
    throw new DescriptorError(
      `EXPTIME is not a number: ${JSON.stringify(value)}`,
    );
  }
  return value < 0 ? null : value;
}

/** §5.7: EXPTIME, times the coadds while the data are unprepared (they were summed). */
export function exposureTime(f: GeminiFile): number | null {
  const t = exptime(f);
  return t === null ? null : f.tags.has("PREPARED") ? t : t * coadds(f);
}

/** §6.1: GMOS has no coadds, and values above 10,000 s are not trusted. */
function gmosExposureTime(f: GeminiFile): number | null {
  const t = exptime(f);
  return t === null || t > 10_000 ? null : t;
}

export const GENERIC_DESCRIPTORS: Record<string, Descriptor> = {
  program_id: phuValue("GEMPRGID"),
  observation_id: phuValue("OBSID"),
  data_label: phuValue("DATALAB"),
  telescope: phuValue("TELESCOP"),
  instrument: phuValue("INSTRUME"),
  object: phuValue("OBJECT"),
  observation_type: phuValue("OBSTYPE"),
  observation_class: phuValue("OBSCLASS"),
  ut_datetime: utDatetime,
  local_time: localTime,
  qa_state: qaState,
  raw_iq: (f) => parsePercentile(f.phu.get("RAWIQ")),
  raw_cc: (f) => parsePercentile(f.phu.get("RAWCC")),
  raw_wv: (f) => parsePercentile(f.phu.get("RAWWV")),
  raw_bg: (f) => parsePercentile(f.phu.get("RAWBG")),
  requested_iq: (f) => parsePercentile(f.phu.get("REQIQ")),
  requested_cc: (f) => parsePercentile(f.phu.get("REQCC")),
  requested_wv: (f) => parsePercentile(f.phu.get("REQWV")),
  requested_bg: (f) => parsePercentile(f.phu.get("REQBG")),
  airmass: (f) => airmassDescriptor(new PhuView(f.phu)) ?? null,
  azimuth: phuValue("AZIMUTH"),
  elevation: phuValue("ELEVATIO"),
  cass_rotator_pa: cassRotatorPa,
  coadds,
  exposure_time: exposureTime,
};

/** Per-class replacements of generic descriptors; each instrument's table grows here. */
const CLASS_DESCRIPTORS: Record<InstrumentClass, Record<string, Descriptor>> = {
  GEMINI: {},
  GMOS: {
    ...OPTICS_DESCRIPTORS,
    ...FILTER_DESCRIPTORS,
    ...GMOS_DESCRIPTORS,
    exposure_time: gmosExposureTime,
    wavelength_band: wavelengthBand,
  },
  // Optics join a class's table once its own descriptors are checked against the reference.
  NIRI: {
    ...OPTICS_DESCRIPTORS,
    ...FILTER_DESCRIPTORS,
    ...NIRI_DESCRIPTORS,
    ...GENERIC_POSITION,
    wavelength_band: wavelengthBand,
  },
  F2: {
    ...OPTICS_DESCRIPTORS,
    ...FILTER_DESCRIPTORS,
    ...F2_DESCRIPTORS,
    ...GENERIC_POSITION,
    wavelength_band: wavelengthBand,
  },
  GNIRS: {
    ...OPTICS_DESCRIPTORS,
    ...FILTER_DESCRIPTORS,
    ...GNIRS_DESCRIPTORS,
    ra: (f) => gnirsPosition(f, utDatetime(f))[0],
    dec: (f) => gnirsPosition(f, utDatetime(f))[1],
    wavelength_band: wavelengthBand,
  },
};

/**
 * §5.9: the band nearest to the effective wavelength: the imaging filter's, or
 * the central wavelength of a spectrum; null for darks, biases and masks.
 */
export function wavelengthBand(f: GeminiFile): string | null {
  const table = descriptorTable(f.instrumentClass);
  if (f.tags.has("IMAGE")) {
    const filter = table.filter_name?.(f);
    const instrument =
      f.instrumentClass === "GMOS" ? "GMOS" : String(phuScalar(f, "INSTRUME"));
    return nearestBand(
      filterWavelength(instrument, typeof filter === "string" ? filter : null),
    );
  }
  if (f.tags.has("SPECT")) {
    const wavelength = table.central_wavelength?.(f);
    return nearestBand(typeof wavelength === "number" ? wavelength : null);
  }
  return null;
}

/** The descriptor table of a file's class: the generic set with the class's overrides. */
export function descriptorTable(
  cls: InstrumentClass | undefined,
): Record<string, Descriptor> {
  if (cls === undefined) {
    return GENERIC_DESCRIPTORS;
  }
  // Made once per class: ingest asks for it several times per file.
  let table = TABLES.get(cls);
  if (table === undefined) {
    table = Object.freeze({
      ...GENERIC_DESCRIPTORS,
      ...CLASS_DESCRIPTORS[cls],
    });
    TABLES.set(cls, table);
  }
  return table;
}

const TABLES = new Map<InstrumentClass, Readonly<Record<string, Descriptor>>>();

export interface Descriptors {
  values: Record<string, DescriptorValue>;
  /** Why a descriptor gave null, when it failed rather than found nothing. */
  errors: Record<string, string>;
}

/** Every descriptor; failures become null with the reason in `errors`. */
export function describe(
  f: GeminiFile,
  table: Record<string, Descriptor> = descriptorTable(f.instrumentClass),
): Descriptors {
  const values: Record<string, DescriptorValue> = {};
  const errors: Record<string, string> = {};
  for (const [name, descriptor] of Object.entries(table)) {
    try {
      values[name] = descriptor(f);
    } catch (error) {
      values[name] = null;
      errors[name] = (error as Error).message;
    }
  }
  return { values, errors };
}

// --- header columns that are not descriptors (§5.10, DOMAIN.md §2.4) ---------------

/** `gcal_lamp`: the GCAL lamp, or "Off" when its shutter is closed on an IR lamp or no lamp is named. */
export function gcalLamp(f: GeminiFile): string | null {
  const lamp = f.phu.get("GCALLAMP");
  const shutter = f.phu.get("GCALSHUT");
  if (lamp === undefined || shutter === undefined) {
    return null;
  }
  const l = String(lamp).toUpperCase();
  if (
    (String(shutter).toUpperCase() === "CLOSED" &&
      (l === "IRHIGH" || l === "IRLOW")) ||
    l === "" ||
    l === "NO VALUE"
  ) {
    return "Off";
  }
  return String(lamp);
}

/** `wavefront_sensor`: the guiding sensors, sorted and joined with "&", or null. */
export function wavefrontSensor(f: GeminiFile): string | null {
  const sensors = ["AOWFS", "OIWFS", "PWFS1", "PWFS2"].filter(
    (s) => f.phu.get(`${s}_ST`) === "guiding",
  );
  if (f.phu.has("GWFS1CFG")) {
    sensors.push("GEMS");
  }
  return sensors.length === 0 ? null : sensors.sort().join("&");
}

/** `adaptive_optics`: the AO fold is in the beam. */
export function adaptiveOptics(f: GeminiFile): boolean {
  return (f.phu.string("AOFOLD") ?? "OUT") === "IN";
}

/** `laser_guide_star`: the laser loop is closed or the laser stage is in. */
export function laserGuideStar(f: GeminiFile): boolean {
  return f.phu.get("LGSLOOP") === "CLOSED" || f.phu.get("LGUSTAGE") === "IN";
}
