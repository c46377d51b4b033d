/**
 * The reference archive's normalisation of telescope, instrument, observation
 * type and observation class before they are stored in the `header` row
 * (enum columns telescope, obstype, obsclass; text column instrument).
 *
 * Sources (GitHub GeminiDRSoftware/FitsStorage):
 * - `fits_storage/gemini_metadata_utils/telescope_instruments.py` at 0f2a02db
 *   (`gemini_telescope`, `gemini_instrument_dict`, `gemini_instrument`,
 *   `obs_types`, `obs_classes`, `site_monitor`);
 * - `fits_storage/file_parser.py` at 09881be2 (`telescope()`, `instrument()`,
 *   `observation_type()`, `site_monitoring()`);
 * - `fits_storage/core/orm/header.py` at 3ba5df44 (the file-name fallback for
 *   the telescope).
 */

import { ENUMS } from "./sql-types.js";

export type GeminiTelescope = "Gemini-North" | "Gemini-South";

const TELESCOPES: Record<string, GeminiTelescope> = {
  gemininorth: "Gemini-North",
  geminisouth: "Gemini-South",
};

/**
 * `gemini_telescope`: case-insensitive, '-' and '_' ignored ('geminiNorth',
 * 'gemini_south'); anything else, or a non-string, is null.
 */
export function geminiTelescope(value: unknown): GeminiTelescope | null {
  if (typeof value !== "string") {
    return null;
  }
  const key = value.toLowerCase().replaceAll("-", "").replaceAll("_", "");
  return Object.hasOwn(TELESCOPES, key) ? (TELESCOPES[key] ?? null) : null;
}

/**
 * The header row's telescope: `gemini_telescope(TELESCOP)`, else from the
 * stored file name (diskfile.filename, so with any .bz2): `N20…` is
 * Gemini-North and `S20…` Gemini-South (case-sensitive prefixes).
 */
export function headerTelescope(
  value: unknown,
  fileName: string,
): GeminiTelescope | null {
  const telescope = geminiTelescope(value);
  if (telescope !== null) {
    return telescope;
  }
  if (fileName.startsWith("N20")) {
    return "Gemini-North";
  }
  return fileName.startsWith("S20") ? "Gemini-South" : null;
}

/** `gemini_instrument_dict`: lower-cased header name → the official name. */
export const GEMINI_INSTRUMENTS: Readonly<Record<string, string>> = {
  niri: "NIRI",
  nifs: "NIFS",
  "gmos-n": "GMOS-N",
  "gmos-s": "GMOS-S",
  michelle: "michelle",
  gnirs: "GNIRS",
  ghost: "GHOST",
  phoenix: "PHOENIX",
  texes: "TEXES",
  trecs: "TReCS",
  nici: "NICI",
  "igrins-2": "IGRINS-2",
  igrins: "IGRINS",
  gsaoi: "GSAOI",
  oscir: "OSCIR",
  f2: "F2",
  gpi: "GPI",
  abu: "ABU",
  bhros: "bHROS",
  hrwfs: "hrwfs",
  flamingos: "FLAMINGOS",
  cirpass: "CIRPASS",
  graces: "GRACES",
  alopeke: "ALOPEKE",
  zorro: "ZORRO",
  "maroon-x": "MAROON-X",
};

/** Hokupa'a+QUIRC in any case, any number of a's and +'s (Python `$` also allows one final newline). */
const HOKUPAA_QUIRC = /^[Hh][Oo][Kk][Uu][Pp][Aa]+\+*[Qq][Uu][Ii][Rr][Cc]\n?$/;

/**
 * `gemini_instrument(value, gmos, other)`: the official name for a known
 * instrument (case-insensitive), 'Hokupaa+QUIRC' for that camera, 'GMOS' for
 * 'gmos' when `gmos` is set; otherwise null, or the value itself when `other`
 * is set (the header row uses other=True, so unknown names pass through
 * unchanged, '' included). A non-string is null (upstream raises
 * AttributeError, which the file parser turns into NULL).
 */
export function geminiInstrument(
  value: unknown,
  other: boolean,
  gmos = false,
): string | null {
  if (typeof value !== "string") {
    return null;
  }
  const key = value.toLowerCase();
  if (Object.hasOwn(GEMINI_INSTRUMENTS, key)) {
    return GEMINI_INSTRUMENTS[key] ?? null;
  }
  if (value !== "") {
    if (HOKUPAA_QUIRC.test(value)) {
      return "Hokupaa+QUIRC";
    }
    if (gmos && key === "gmos") {
      return "GMOS";
    }
  }
  return other ? value : null;
}

/** `obs_types`, the obstype enum (PINHOLE and RONCHI are the archive's own additions). */
export const OBS_TYPES = ENUMS.obstype;
export type ObsType = (typeof OBS_TYPES)[number];

/** `obs_classes`, the obsclass enum. */
export const OBS_CLASSES = ENUMS.obsclass;
export type ObsClass = (typeof OBS_CLASSES)[number];

function member<T extends string>(
  list: readonly T[],
  value: unknown,
): T | null {
  return typeof value === "string" &&
    (list as readonly string[]).includes(value)
    ? (value as T)
    : null;
}

/** `gemini_observation_type`: the value if it is exactly (case-sensitive) one of the enum values, else null. */
export function geminiObservationType(value: unknown): ObsType | null {
  return member(OBS_TYPES, value);
}

/**
 * The header row's observation_type: `gemini_observation_type(OBSTYPE)`, then
 * PINHOLE if that tag is present, then RONCHI if that tag is (RONCHI wins).
 */
export function headerObservationType(
  value: unknown,
  tags: ReadonlySet<string>,
): ObsType | null {
  if (tags.has("RONCHI")) {
    return "RONCHI";
  }
  return tags.has("PINHOLE") ? "PINHOLE" : geminiObservationType(value);
}

/** `gemini_observation_class`: the value if it is exactly one of the enum values, else null. */
export function geminiObservationClass(value: unknown): ObsClass | null {
  return member(OBS_CLASSES, value);
}

/** `site_monitoring()`: the raw instrument descriptor (INSTRUME) is exactly GS_ALLSKYCAMERA. */
export function isSiteMonitoring(instrument: unknown): boolean {
  return instrument === "GS_ALLSKYCAMERA";
}
