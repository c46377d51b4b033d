/**
 * Why a column of the archive's rows is NULL, in words that name the header
 * keywords (the README's promise for `fits inspect`).
 *
 * The general mechanism: every descriptor declares here the keywords it reads
 * (per instrument class, as the descriptor tables are), and a row rule that is
 * not a plain descriptor declares its own in rows.ts. A NULL with no more
 * specific reason then reads "no KEYWORD in the primary header", "KEYWORD is
 * blank" or "KEYWORD = value is not …", worked out from the file itself. The
 * row rules add specific reasons only where that would be wrong: a rule of the
 * archive's own, a descriptor that does not apply to this kind of observation.
 */
import type { FitsValue } from "../fits/card.js";
import type { Header } from "../fits/header.js";
import type { GeminiFile, InstrumentClass } from "./gemini-file.js";

/** Where a value is read from. */
export interface Sources {
  /** Primary-header keywords. */
  phu?: readonly string[];
  /** Keywords of the science extensions. */
  sci?: readonly string[];
  /** What the keywords must hold to give a value, for "KEYWORD = value is not <expects>". */
  expects?: string;
  /** The whole reason, when the descriptor never has a value for this class. */
  never?: string;
}

const PERCENTILE = "'Any' or 'NN-percentile'";

const phu = (keywords: string[], expects?: string): Sources => ({
  phu: keywords,
  ...(expects === undefined ? {} : { expects }),
});

/** The generic descriptors every class has (descriptors.ts GENERIC_DESCRIPTORS). */
const GENERIC: Record<string, Sources> = {
  program_id: phu(["GEMPRGID"], "text"),
  observation_id: phu(["OBSID"], "text"),
  data_label: phu(["DATALAB"], "text"),
  telescope: phu(["TELESCOP"], "Gemini-North or Gemini-South"),
  instrument: phu(["INSTRUME"], "text"),
  object: phu(["OBJECT"], "text"),
  observation_type: phu(["OBSTYPE"], "one of the archive's observation types"),
  observation_class: phu(
    ["OBSCLASS"],
    "one of the archive's observation classes",
  ),
  ut_datetime: {
    phu: [
      "DATE-OBS",
      "DATE",
      "UTDATE",
      "UT",
      "TIME-OBS",
      "STARTUT",
      "UTSTART",
      "MJD-OBS",
      "OBSSTART",
    ],
    expects: "a date and time",
  },
  local_time: phu(["LT"], "a time of day (hh:mm:ss)"),
  qa_state: phu(["RAWPIREQ", "RAWGEMQA"]),
  raw_iq: phu(["RAWIQ"], PERCENTILE),
  raw_cc: phu(["RAWCC"], PERCENTILE),
  raw_wv: phu(["RAWWV"], PERCENTILE),
  raw_bg: phu(["RAWBG"], PERCENTILE),
  requested_iq: phu(["REQIQ"], PERCENTILE),
  requested_cc: phu(["REQCC"], PERCENTILE),
  requested_wv: phu(["REQWV"], PERCENTILE),
  requested_bg: phu(["REQBG"], PERCENTILE),
  airmass: phu(["AIRMASS"], "a number of 1 or more"),
  azimuth: phu(["AZIMUTH"], "an angle"),
  elevation: phu(["ELEVATIO"], "an angle"),
  cass_rotator_pa: phu(["CRPA"], "an angle within ±360 degrees"),
  coadds: phu(["COADDS"], "an integer"),
  exposure_time: phu(["EXPTIME"], "a time of 0 s or more"),
};

/** The optics descriptors of GMOS, NIRI, F2 and GNIRS (optics.ts), before each class's own. */
const OPTICS: Record<string, Sources> = {
  disperser: phu(["DISPERSR"]),
  camera: phu(["CAMERA"]),
  focal_plane_mask: phu(["FPMASK"]),
  pupil_mask: phu(["PUPILMSK"]),
  central_wavelength: phu(["CWAVE"], "a wavelength of 0 or more"),
  detector_x_bin: phu(["XBIN"]),
  detector_y_bin: phu(["YBIN"]),
  detector_roi_setting: {},
  gain_setting: phu(["GAINSET"]),
  read_speed_setting: phu(["RDSPDSET"]),
  well_depth_setting: phu(["WELDEPTH"]),
  read_mode: phu(["READMODE"]),
  array_name: { sci: ["ARRAYNAM"] },
  amp_read_area: { sci: ["AMPROA"] },
  data_section: { sci: ["DATASEC"] },
  filter_name: phu(["FILTER1", "FILTER2"]),
  wavelength_band: {},
};

const WCS: Sources = { phu: ["RA", "DEC"], sci: ["CTYPE1", "CRVAL1"] };

const CLASS: Record<InstrumentClass, Record<string, Sources>> = {
  GEMINI: {},
  GMOS: {
    camera: phu(["INSTRUME"]),
    disperser: phu(["GRATING"]),
    focal_plane_mask: phu(["MASKNAME"]),
    central_wavelength: phu(["CENTWAVE", "GRWLEN"], "a wavelength above 0"),
    detector_x_bin: {
      sci: ["CCDSUM"],
      expects: "the same binning in every extension",
    },
    detector_y_bin: {
      sci: ["CCDSUM"],
      expects: "the same binning in every extension",
    },
    detector_roi_setting: {
      phu: ["DETRO1X", "DETRO1XS", "DETRO1Y", "DETRO1YS"],
      sci: ["CCDSUM"],
    },
    gain_setting: {
      sci: ["GAIN"],
      expects: "a gain shared by all extensions but at most one",
    },
    read_speed_setting: phu(["AMPINTEG", "DETTYPE"], "a known GMOS detector"),
    read_mode: phu(["DETTYPE", "AMPINTEG"]),
    array_name: { sci: ["AMPNAME"] },
    amp_read_area: { sci: ["AMPNAME", "DETSEC"] },
    nod_count: phu(["ANODCNT", "BNODCNT"], "numbers"),
    shuffle_pixels: phu(["NODPIX"], "a number"),
    ra: WCS,
    dec: WCS,
  },
  NIRI: {
    filter_name: phu(["FILTER1", "FILTER2", "FILTER3"]),
    disperser: phu(["FILTER3"]),
    pupil_mask: phu(["FILTER3"]),
    central_wavelength: phu(
      ["CAMERA", "FPMASK", "FILTER3"],
      "a camera, slit and grism in NIRI's grism table",
    ),
    read_mode: phu(["LNRS", "NDAVGS"]),
    well_depth_setting: phu(["A_VDDUC", "A_VDET"], "numbers"),
    detector_roi_setting: { sci: ["NAXIS1", "NAXIS2"] },
    data_section: { sci: ["NAXIS1", "NAXIS2"] },
    ra: WCS,
    dec: WCS,
  },
  F2: {
    filter_name: phu(["FILTER1", "FILTER2"]),
    disperser: phu(["GRISM"]),
    camera: phu(["LYOT", "FOCUS", "PIXSCALE"]),
    focal_plane_mask: phu(["MOSPOS", "MASKNAME"]),
    central_wavelength: phu(["WAVELENG"], "a wavelength of 0 or more"),
    read_mode: phu(["LNRS"]),
    lyot_stop: phu(["LYOT"], "a Lyot stop other than 'Undefined'"),
    well_depth_setting: {
      never: "F2 has no well depth setting (its descriptor is always None)",
    },
    gain_setting: {
      never: "F2 has no gain setting (its descriptor is always None)",
    },
    read_speed_setting: {
      never: "F2 has no read speed setting (its descriptor is always None)",
    },
    ra: WCS,
    dec: WCS,
  },
  GNIRS: {
    disperser: phu(["GRATING", "PRISM"], "a grating and prism GNIRS names"),
    focal_plane_mask: phu(["SLIT", "DECKER"], "text"),
    central_wavelength: phu(["GRATWAVE"], "a wavelength of 0 or more"),
    read_mode: phu(["LNRS", "NDAVGS"]),
    well_depth_setting: phu(["DETBIAS"], "a number"),
    array_name: phu(["ARRAYID", "CONID"]),
    prism_motor_steps: phu(["PRSM_ENG"], "an integer"),
    ra: WCS,
    dec: WCS,
  },
};

/** The keywords a descriptor of this class reads; undefined for a descriptor the class does not have. */
export function descriptorSources(
  cls: InstrumentClass | undefined,
  name: string,
): Sources | undefined {
  if (cls === undefined) {
    return GENERIC[name];
  }
  return (
    CLASS[cls][name] ??
    (cls === "GEMINI" ? undefined : OPTICS[name]) ??
    GENERIC[name]
  );
}

/** A keyword's value as a header shows it. */
export function shownValue(value: FitsValue): string {
  if (typeof value === "string") {
    return `'${value.trimEnd()}'`;
  }
  if (typeof value === "boolean") {
    return value ? "T" : "F";
  }
  if (value === null) {
    return "(no value)";
  }
  return typeof value === "object"
    ? `(${value.re}, ${value.im})`
    : String(value);
}

const isBlank = (value: FitsValue | undefined): boolean =>
  value === null || (typeof value === "string" && value.trim() === "");

/** "A", "A or B", "A, B or C". */
export function orList(items: readonly string[]): string {
  return items.length <= 1
    ? (items[0] ?? "")
    : `${items.slice(0, -1).join(", ")} or ${items.at(-1) ?? ""}`;
}

/** A mask definition file holds a table of slits, not an exposure: most keywords are simply not there. */
export function maskFileNote(f: GeminiFile): string {
  return String(f.phu.get("OBSTYPE") ?? "").trim() === "MASK"
    ? " (a mask definition file, OBSTYPE = 'MASK', describes slits, not an exposure)"
    : "";
}

/**
 * Why keywords gave no value, from the file: the absent ones, else the blank
 * ones, else the values that are not what the rule needs.
 */
export function sourcesReason(f: GeminiFile, s: Sources): string | undefined {
  if (s.never !== undefined) {
    return s.never;
  }
  const keywords = s.phu ?? [];
  const absent = keywords.filter((k) => !f.phu.has(k));
  const blank = keywords.filter((k) => f.phu.has(k) && isBlank(f.phu.get(k)));
  const parts: string[] = [];
  if (absent.length > 0) {
    parts.push(`no ${orList(absent)} in the primary header`);
  }
  const sci = s.sci ?? [];
  if (sci.length > 0) {
    if (f.sci.length === 0) {
      parts.push(`no science extensions to read ${orList(sci)} from`);
    } else {
      const missing = sci.filter((k) => f.sci.every((h: Header) => !h.has(k)));
      if (missing.length > 0) {
        parts.push(`no ${orList(missing)} in the science extensions`);
      }
    }
  }
  if (blank.length > 0) {
    parts.push(`${orList(blank)} ${blank.length === 1 ? "is" : "are"} blank`);
  }
  if (parts.length > 0) {
    return `${parts.join("; ")}${maskFileNote(f)}`;
  }
  const held = keywordValues(f, s);
  if (held === undefined) {
    return undefined;
  }
  const plural = keywords.length + sci.length > 1;
  return `${held} ${plural ? "are" : "is"} not ${s.expects ?? "a value this column takes"}`;
}

/** "A = 1, B = 'x'", and "C in the science extensions", for saying what a rule was given. */
export function keywordValues(f: GeminiFile, s: Sources): string | undefined {
  const shown = (s.phu ?? []).map((k) => {
    const v = f.phu.get(k);
    return v === undefined ? `no ${k}` : `${k} = ${shownValue(v)}`;
  });
  const sci = s.sci ?? [];
  if (sci.length > 0) {
    const values = sci.map((k) => {
      const per = f.sci.map((h) => {
        const v = h.get(k);
        return v === undefined ? "absent" : shownValue(v);
      });
      return `${k} = ${per.join(" | ")}`;
    });
    shown.push(`${values.join(", ")} in the science extensions`);
  }
  return shown.length === 0 ? undefined : shown.join(", ");
}
