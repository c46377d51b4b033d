/**
 * The `header` row and the instrument rows the archive stores for a file
 * (DOMAIN.md §2.4, docs/MAPPING-NOTES.md §7), as tables of column → rule.
 *
 * Two layers, as in the reference: descriptors compute values from the
 * headers (descriptors.ts and the instrument modules), and the row rules here
 * post-process them for the columns (normalised names, enum membership, range
 * guards). Every value that cannot be derived or stored becomes NULL with a
 * warning naming the column; only a file that is not FITS is ever rejected,
 * and that happens before this module. Every NULL also gets a reason in
 * `reasons` (the README promises one in `fits inspect`): a failure, a rule's
 * own reason, or else what the keywords the column declares hold
 * (null-reasons.ts).
 *
 * To support another instrument: give it a descriptor table (descriptors.ts)
 * and an entry in INSTRUMENT_TABLES below.
 */
import type { FitsStructure } from "../fits/scanner.js";
import { parseAngle } from "./common.js";
import {
  adaptiveOptics,
  descriptorTable,
  type DescriptorValue,
  gcalLamp,
  type GeminiFile,
  geminiFile,
  laserGuideStar,
  qaState,
  wavefrontSensor,
} from "./descriptors.js";
import { f2FilterName } from "./f2.js";
import type { Descriptor } from "./gemini-file.js";
import { gnirsDisperser, gnirsFocalPlaneMask } from "./gnirs.js";
import { phuScalar } from "./model.js";
import { niriDisperser, niriFilterName } from "./niri.js";
import {
  geminiInstrument,
  geminiObservationClass,
  headerObservationType,
  headerTelescope,
  isSiteMonitoring,
} from "./normalise.js";
import {
  descriptorSources,
  keywordValues,
  maskFileNote,
  orList,
  shownValue,
  type Sources,
  sourcesReason,
} from "./null-reasons.js";
import { genericFilterName } from "./optics.js";
import { headerProgramFlags } from "./program.js";
import {
  bigint,
  boolean,
  date,
  ENUMS,
  enumType,
  fitToColumn,
  integer,
  isEnumLabel,
  numeric,
  type RowValue,
  type SqlType,
  text,
  time,
  timestamp,
} from "./sql-types.js";
import { typesText } from "./tags.js";

export interface RowWarning {
  /** "header.ra", "gmos.array_name", or "tags". */
  column: string;
  message: string;
}

export type Row = Record<string, RowValue>;

export interface InstrumentRow {
  table: InstrumentTableName;
  values: Row;
}

export interface ArchiveRows {
  /** Every `header` column except id and diskfile_id, which the database assigns. */
  header: Row;
  /** Zero or one row today (GHOST, one per arm, is not supported yet). */
  instrument: InstrumentRow[];
  /** Something wrong with the file (a value that failed or could not be stored). */
  warnings: RowWarning[];
  /** Why each NULL column is NULL, keyed like warnings ("header.gcal_lamp"); every NULL has one. */
  reasons: Record<string, string>;
}

/** What a rule sees: the file and its descriptors, each computed once. */
export class RowContext {
  readonly warnings: RowWarning[] = [];
  /** Filled as the rows are built, so a later column can say it is NULL because an earlier one is. */
  readonly reasons: Record<string, string> = {};
  private readonly notes = new Map<string, string>();
  /** By computation key: a cached failure leaves later columns NULL with no warning of their own. */
  private readonly failures = new Map<string, string>();
  private readonly values = new Map<string, DescriptorValue>();
  private readonly table: Record<string, Descriptor>;

  constructor(readonly file: GeminiFile) {
    this.table = descriptorTable(file.instrumentClass);
  }

  get tags(): Set<string> {
    return this.file.tags;
  }

  /**
   * A descriptor's value; a failure is null plus a warning for `column`, as the
   * reference's `_try_or_none` logs and stores None.
   */
  descriptor(name: string, column: string): DescriptorValue {
    return this.run(`descriptor:${name}`, column, () => {
      const descriptor = this.table[name];
      if (descriptor === undefined) {
        throw new Error(this.noDescriptor(name));
      }
      return descriptor(this.file);
    });
  }

  /** Any computation whose failure should become null plus a warning. */
  run(
    key: string,
    column: string,
    compute: () => DescriptorValue,
  ): DescriptorValue {
    if (!this.values.has(key)) {
      let value: DescriptorValue;
      try {
        value = compute();
      } catch (error) {
        value = null;
        this.warn(column, (error as Error).message);
        this.failures.set(key, (error as Error).message);
      }
      this.values.set(key, value);
    }
    return this.values.get(key) ?? null;
  }

  warn(column: string, message: string): void {
    this.warnings.push({ column, message });
  }

  /**
   * Null for `column`, for a rule that leaves it NULL although nothing is wrong
   * with the file (so not a warning): the reason goes to `reasons`.
   */
  nullBecause(column: string, reason: string): null {
    if (!this.notes.has(column)) {
      this.notes.set(column, reason);
    }
    return null;
  }

  noted(column: string): string | undefined {
    return this.notes.get(column);
  }

  /** Why a descriptor failed, if it did, whichever column asked first. */
  descriptorFailure(name: string): string | undefined {
    return this.failures.get(`descriptor:${name}`);
  }

  private noDescriptor(name: string): string {
    const cls = this.file.instrumentClass;
    if (cls === undefined) {
      return `not Gemini data (neither INSTRUME nor OBSERVAT or TELESCOP names a Gemini instrument or telescope), so there is no ${name} descriptor`;
    }
    const instrument = this.file.phu.get("INSTRUME");
    return cls === "GEMINI"
      ? `INSTRUME = ${instrument === undefined ? "(absent)" : shownValue(instrument)} has no descriptors of its own, and the generic Gemini ones have no ${name}`
      : `the ${cls} descriptors have no ${name}`;
  }
}

interface NullReason {
  /**
   * Where the value comes from: a descriptor's name (its keywords are in
   * null-reasons.ts) or keywords. Absent: the descriptor named like the column.
   */
  from?: string | Sources;
  /** A NULL's reason where the keywords alone would mislead; undefined falls back to them. */
  whyNull?: (c: RowContext, column: string) => string | undefined;
}

interface Column extends NullReason {
  name: string;
  type: SqlType;
  derive: (c: RowContext, column: string) => unknown;
}

const col = (
  name: string,
  type: SqlType,
  derive: Column["derive"],
  reason: NullReason = {},
): Column => ({ name, type, derive, ...reason });

const d =
  (descriptor: string): Column["derive"] =>
  (c, column) =>
    c.descriptor(descriptor, column);

const phu =
  (keyword: string): Column["derive"] =>
  (c) =>
    phuScalar(c.file, keyword);

const upper = (value: DescriptorValue): string | null =>
  value === null ? null : String(value).toUpperCase();

const numberOrNull = (value: DescriptorValue): number | null =>
  typeof value === "number" ? value : null;

const quoted = (value: unknown): string =>
  typeof value === "string" ? `'${value}'` : String(value);

/** Null because `value` is not one of an enum's labels, saying which keywords it came from. */
function notALabel(
  c: RowContext,
  column: string,
  enumName: keyof typeof ENUMS,
  value: unknown,
  descriptor = column.slice(column.indexOf(".") + 1),
): null {
  const sources = descriptorSources(c.file.instrumentClass, descriptor);
  const held =
    sources === undefined ? undefined : keywordValues(c.file, sources);
  return c.nullBecause(
    column,
    `${quoted(value)} is not one of the ${enumName} values (${ENUMS[enumName].join(", ")})${held === undefined ? "" : `; from ${held}`}`,
  );
}

// --- header rules that are more than one descriptor ---------------------------------

const PROCESSING_MODES = ENUMS.procmode as readonly string[];

/** PROCREVW if it is a mode, else PROCITNT, else the legacy ql/sq codes, else Raw. */
function processing(c: RowContext): string {
  for (const keyword of ["PROCREVW", "PROCITNT"]) {
    const value = c.file.phu.get(keyword);
    if (typeof value === "string" && PROCESSING_MODES.includes(value)) {
      return value;
    }
  }
  const legacy = c.file.phu.get("PROCMODE") ?? c.file.phu.get("PROCSCI");
  return legacy === "ql"
    ? "Quick-Look"
    : legacy === "sq"
      ? "Science-Quality"
      : "Raw";
}

const UT_EPOCH_MS = Date.UTC(2000, 0, 1);

/** Whole seconds from 2000-01-01T00:00:00, truncated toward zero as Python's int() does. */
export function utDatetimeSecs(iso: string): number {
  const [whole, fraction = ""] = iso.split(".");
  const ms = Date.parse(`${whole}Z`) - UT_EPOCH_MS;
  const micros = Number(fraction.padEnd(6, "0"));
  const totalMicros = ms * 1000 + micros;
  // + 0 turns the -0 of a time just before the epoch into 0.
  return Math.trunc(totalMicros / 1_000_000) + 0;
}

function skyAngle(c: RowContext, kind: "ra" | "dec", column: string) {
  if (c.tags.has("AZEL_TARGET")) {
    c.warn(
      column,
      "an AZ/EL target (FRAME = AZEL_TOPO): the archive stores no RA/Dec for it",
    );
    return null;
  }
  const value = c.descriptor(kind, column);
  const degrees =
    typeof value === "string" ? parseAngle(value, kind) : numberOrNull(value);
  if (degrees === null && !c.warnings.some((w) => w.column === column)) {
    c.warn(column, `no ${kind.toUpperCase()} in the WCS or the header`);
  }
  const limit = kind === "ra" ? [0, 360] : [-90, 90];
  if (degrees !== null && (degrees < limit[0]! || degrees > limit[1]!)) {
    c.warn(
      column,
      `${kind === "ra" ? "RA" : "Dec"} ${degrees} (from the WCS or the ${kind.toUpperCase()} keyword) is outside ${limit[0]}..${limit[1]} degrees`,
    );
    return null;
  }
  return degrees;
}

function elevation(c: RowContext, column: string): number | null {
  const value = c.descriptor("elevation", column);
  return typeof value === "string"
    ? parseAngle(value, "dec")
    : numberOrNull(value);
}

/** Why the airmass descriptor gave None for this AIRMASS card value. */
function noAirmass(card: unknown): string {
  if (card === undefined) {
    return "no AIRMASS in the header";
  }
  if (typeof card === "string" && card.trim() === "") {
    return "AIRMASS is blank";
  }
  // The descriptor returns None below 1 (-9999 marks "unknown"), so
  // FitsStorage's fallback to sec(90 - elevation) is never reached.
  return `AIRMASS = ${String(card)} is below 1, not a plausible airmass`;
}

/** AIRMASS, replaced by sec(zenith distance) when it is below 1 or above 50. */
function airmass(c: RowContext, column: string): number | null {
  const raw = c.descriptor("airmass", column);
  const value = typeof raw === "string" ? Number.parseFloat(raw) : raw;
  if (typeof value !== "number" || Number.isNaN(value)) {
    // A descriptor that failed has said why already.
    if (!c.warnings.some((w) => w.column === column)) {
      c.warn(column, noAirmass(c.file.phu.get("AIRMASS")));
    }
    return null;
  }
  if (value >= 1 && value <= 50) {
    return value;
  }
  const el = elevation(c, "header.elevation");
  if (el === null) {
    c.warn(column, `${value} is not a plausible airmass and no elevation`);
    return null;
  }
  c.warn(column, `${value} is not a plausible airmass; sec(90 - elevation)`);
  return 1 / Math.cos(((90 - el) * Math.PI) / 180);
}

function observationType(c: RowContext, column: string): string | null {
  return headerObservationType(
    c.descriptor("observation_type", column),
    c.tags,
  );
}

const stringOrNull = (value: DescriptorValue): string | null =>
  value === null ? null : String(value);

function mode(tags: Set<string>): string {
  let result = "imaging";
  if (tags.has("SPECT")) {
    result = "spectroscopy";
    if (tags.has("IFU")) {
      result = "IFS";
    }
    if (tags.has("MOS")) {
      result = "MOS";
    }
    if (tags.has("LS")) {
      result = "LS";
    }
  }
  return tags.has("GPI") && tags.has("POL") ? "IFP" : result;
}

// In the reference this is a set intersection, so several matches pick arbitrarily; a fixed order is reproducible.
const PROCESSED_KINDS = [
  "FLAT",
  "BIAS",
  "FRINGE",
  "DARK",
  "ARC",
  "SCIENCE",
  "STANDARD",
  "SLITILLUM",
  "BPM",
  "PINHOLE",
];

function reduction(tags: Set<string>): string {
  if (tags.has("PROCESSED_SCIENCE")) {
    return "PROCESSED_SCIENCE";
  }
  if (tags.has("PROCESSED")) {
    const kind = PROCESSED_KINDS.find((k) => tags.has(k));
    return kind === undefined ? "PROCESSED_UNKNOWN" : `PROCESSED_${kind}`;
  }
  return tags.has("PREPARED") ? "PREPARED" : "RAW";
}

function qa(c: RowContext, column: string): string {
  if (observationType(c, "header.observation_type") === "MASK") {
    return "Pass";
  }
  const value = c.run("qa_state", column, () => qaState(c.file));
  return isEnumLabel("qa_state", value) ? value : "Undefined";
}

/** RELEASE as a calendar date; anything else is a warning and NULL. */
function release(c: RowContext, column: string): string | null {
  const value = c.file.phu.get("RELEASE");
  if (value === undefined || value === "" || value === false) {
    return null;
  }
  const match =
    typeof value === "string"
      ? /^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$/.exec(value)
      : null;
  const parsed =
    match === null
      ? NaN
      : Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  const iso = Number.isNaN(parsed)
    ? null
    : new Date(parsed).toISOString().slice(0, 10);
  if (
    match === null ||
    iso === null ||
    Number(iso.slice(5, 7)) !== Number(match[2])
  ) {
    c.warn(column, `RELEASE ${JSON.stringify(value)} is not a date`);
    return null;
  }
  return iso;
}

function binning(c: RowContext, column: string): string | null {
  const x = c.descriptor("detector_x_bin", column);
  const y = c.descriptor("detector_y_bin", column);
  return typeof x === "number" && typeof y === "number"
    ? `${Math.trunc(x)}x${Math.trunc(y)}`
    : null;
}

/** Pixels in the science extensions, from their NAXISn. */
function numpix(f: GeminiFile): number | null {
  let total = 0;
  for (const h of f.sci) {
    const naxis = h.number("NAXIS") ?? 0;
    if (naxis === 0) {
      continue;
    }
    let product = 1;
    for (let i = 1; i <= naxis; i++) {
      product *= h.number(`NAXIS${i}`) ?? 0;
    }
    total += product;
  }
  return total;
}

function programFlags(c: RowContext) {
  const programId = upper(c.descriptor("program_id", "header.program_id"));
  return headerProgramFlags(programId, {
    siteMonitoring: siteMonitoring(c),
    engData: c.file.phu.get("ENG_DATA"),
  });
}

const siteMonitoring = (c: RowContext): boolean =>
  isSiteMonitoring(c.file.phu.get("INSTRUME"));

// --- reasons for NULL that the keywords alone do not give ---------------------------

const DATE_KEYWORDS = ["DATE-OBS", "DATE", "UTDATE"];
const TIME_KEYWORDS = ["UT", "TIME-OBS", "STARTUT", "UTSTART"];

/** ut_datetime's fallback chain found nothing (a failure has its own warning). */
function noUtDatetime(c: RowContext): string {
  const present = [...DATE_KEYWORDS, ...TIME_KEYWORDS, "MJD-OBS", "OBSSTART"]
    .filter((k) => c.file.phu.has(k))
    .map((k) => `${k} = ${shownValue(c.file.phu.get(k) ?? null)}`);
  return `no date and time: no date in ${orList(DATE_KEYWORDS)} with a time in ${orList(TIME_KEYWORDS)}, no MJD-OBS above 1, no OBSSTART, and no date in FRMNAME or the file name${present.length === 0 ? "" : ` (the header has ${present.join(", ")})`}${maskFileNote(c.file)}`;
}

/** §5.9: the band is the imaging filter's or the spectrum's central wavelength's. */
function noWavelengthBand(c: RowContext): string | undefined {
  const f = c.file;
  if (f.tags.has("IMAGE")) {
    const filter = c.descriptor("filter_name", "header.filter_name");
    if (typeof filter !== "string") {
      return `no filter name (${c.reasons["header.filter_name"] ?? "none"}) to take the band from`;
    }
    return `no effective wavelength is known for the filter '${filter}', so no band`;
  }
  if (f.tags.has("SPECT")) {
    const sources = descriptorSources(f.instrumentClass, "central_wavelength");
    const why = sources === undefined ? undefined : sourcesReason(f, sources);
    return `no central wavelength (${why ?? "none"}) to take the band from`;
  }
  return `neither imaging nor a spectrum (no IMAGE or SPECT tag, as for a dark, bias or mask definition): no filter or wavelength gives a band${maskFileNote(f)}`;
}

const WFS_KEYWORDS = ["AOWFS_ST", "OIWFS_ST", "PWFS1_ST", "PWFS2_ST"];

function noWavefrontSensor(c: RowContext): string {
  const phu = c.file.phu;
  const present = WFS_KEYWORDS.filter((k) => phu.has(k)).map(
    (k) => `${k} = ${shownValue(phu.get(k) ?? null)}`,
  );
  const states =
    present.length === 0
      ? `no ${orList(WFS_KEYWORDS)} in the primary header`
      : `none of ${orList(WFS_KEYWORDS)} is 'guiding' (${present.join(", ")})`;
  return `no wavefront sensor was guiding: ${states}, and no GWFS1CFG (GeMS)${maskFileNote(c.file)}`;
}

const HEADER_COLUMNS: Column[] = [
  col("program_id", text, (c, k) => upper(c.descriptor("program_id", k))),
  col("engineering", boolean, (c) => programFlags(c).engineering),
  col(
    "science_verification",
    boolean,
    (c) => programFlags(c).scienceVerification,
  ),
  col(
    "calibration_program",
    boolean,
    (c) => programFlags(c).calibrationProgram,
    {
      whyNull: (c) =>
        `no program id (${c.reasons["header.program_id"] ?? "none"}): the archive tells a calibration program only from its id`,
    },
  ),
  col("processing", enumType("procmode"), processing),
  col("processing_tag", text, phu("PROCTAG"), { from: { phu: ["PROCTAG"] } }),
  col("observation_id", text, (c, k) =>
    upper(c.descriptor("observation_id", k)),
  ),
  col("data_label", text, (c, k) => upper(c.descriptor("data_label", k)) ?? ""),
  col(
    "telescope",
    enumType("telescope"),
    (c, k) => headerTelescope(c.descriptor("telescope", k), c.file.fileName),
    {
      whyNull: (c) => {
        const telescop = descriptorSources(c.file.instrumentClass, "telescope");
        const why =
          telescop === undefined ? undefined : sourcesReason(c.file, telescop);
        return `${why ?? "no telescope"}, and the file name ${quoted(c.file.fileName)} does not start with N20 or S20`;
      },
    },
  ),
  col("instrument", text, (c, k) =>
    geminiInstrument(stringOrNull(c.descriptor("instrument", k)), true),
  ),
  col("ut_datetime", timestamp, d("ut_datetime"), { whyNull: noUtDatetime }),
  col(
    "ut_datetime_secs",
    bigint,
    (c, k) => {
      const ut = c.descriptor("ut_datetime", k);
      return typeof ut === "string" ? utDatetimeSecs(ut) : null;
    },
    {
      whyNull: (c) =>
        `ut_datetime is NULL (${c.reasons["header.ut_datetime"] ?? "no reason"})`,
    },
  ),
  col("local_time", time, d("local_time")),
  col("observation_type", enumType("obstype"), observationType),
  col("observation_class", enumType("obsclass"), (c, k) =>
    geminiObservationClass(stringOrNull(c.descriptor("observation_class", k))),
  ),
  col("object", text, d("object")),
  col("ra", numeric(16, 12), (c, k) => skyAngle(c, "ra", k)),
  col("dec", numeric(16, 12), (c, k) => skyAngle(c, "dec", k)),
  col("azimuth", numeric(16, 12), (c, k) => {
    const value = c.descriptor("azimuth", k);
    return typeof value === "string"
      ? parseAngle(value, "dec")
      : numberOrNull(value);
  }),
  col("elevation", numeric(16, 12), elevation),
  col("cass_rotator_pa", numeric(16, 12), d("cass_rotator_pa")),
  col("airmass", numeric(8, 6), airmass),
  col("filter_name", text, (c, k) => {
    const value = stringOrNull(c.descriptor("filter_name", k));
    return value === null || value === ""
      ? value
      : value.replaceAll("%", "").replaceAll(" ", "_");
  }),
  col(
    "exposure_time",
    numeric(12, 6),
    (c, k) => {
      const t = numberOrNull(c.descriptor("exposure_time", k));
      if (t !== null && (t < 0 || t >= 10_000)) {
        return c.nullBecause(
          k,
          `the exposure time ${t} s (EXPTIME${c.tags.has("PREPARED") ? "" : " × COADDS"}) is not below 10000 s, the archive's limit`,
        );
      }
      return t;
    },
    {
      whyNull: (c) => {
        const exptime = c.file.phu.get("EXPTIME");
        return c.file.instrumentClass === "GMOS" &&
          typeof exptime === "number" &&
          exptime > 10_000
          ? `EXPTIME = ${exptime} is above 10000 s, which the GMOS descriptor does not trust`
          : undefined;
      },
    },
  ),
  col(
    "disperser",
    text,
    (c, k) =>
      stringOrNull(c.descriptor("disperser", k))?.replaceAll("/", "_") ?? null,
  ),
  col("camera", text, d("camera")),
  col("central_wavelength", numeric(8, 6), (c, k) => {
    if (!c.tags.has("SPECT")) {
      return c.nullBecause(
        k,
        "not a spectrum (no SPECT tag): the archive stores a central wavelength for spectra only",
      );
    }
    if (c.tags.has("GPI")) {
      return c.nullBecause(
        k,
        "a GPI spectrum: the archive stores no central wavelength for GPI",
      );
    }
    return numberOrNull(c.descriptor("central_wavelength", k));
  }),
  col("wavelength_band", text, d("wavelength_band"), {
    whyNull: noWavelengthBand,
  }),
  col("focal_plane_mask", text, d("focal_plane_mask")),
  col("pupil_mask", text, d("pupil_mask")),
  col("detector_binning", text, binning, { from: "detector_x_bin" }),
  col("detector_roi_setting", text, d("detector_roi_setting")),
  col(
    "detector_gain_setting",
    enumType("detector_gain_setting"),
    (c, k) => stringOrNull(c.descriptor("gain_setting", k)),
    { from: "gain_setting" },
  ),
  col(
    "detector_readspeed_setting",
    enumType("detector_readspeed_setting"),
    (c, k) => {
      const value = c.descriptor("read_speed_setting", k);
      return isEnumLabel("detector_readspeed_setting", value)
        ? value
        : value === null
          ? null
          : notALabel(
              c,
              k,
              "detector_readspeed_setting",
              value,
              "read_speed_setting",
            );
    },
    { from: "read_speed_setting" },
  ),
  col(
    "detector_welldepth_setting",
    enumType("detector_welldepth_setting"),
    (c, k) => {
      const value = c.descriptor("well_depth_setting", k);
      return isEnumLabel("detector_welldepth_setting", value)
        ? value
        : value === null
          ? null
          : notALabel(
              c,
              k,
              "detector_welldepth_setting",
              value,
              "well_depth_setting",
            );
    },
    { from: "well_depth_setting" },
  ),
  col(
    "detector_readmode_setting",
    text,
    (c, k) => {
      if (c.file.instrumentClass === "GMOS") {
        return c.tags.has("NODANDSHUFFLE") ? "NodAndShuffle" : "Classic";
      }
      return stringOrNull(c.descriptor("read_mode", k))?.replaceAll(" ", "_");
    },
    { from: "read_mode" },
  ),
  col("coadds", integer, d("coadds")),
  col("spectroscopy", boolean, (c) =>
    c.tags.has("GHOST") && c.tags.has("BUNDLE") ? true : c.tags.has("SPECT"),
  ),
  col("mode", enumType("mode"), (c) => mode(c.tags)),
  col("adaptive_optics", boolean, (c) => adaptiveOptics(c.file)),
  col("laser_guide_star", boolean, (c) => laserGuideStar(c.file)),
  col("wavefront_sensor", text, (c) => wavefrontSensor(c.file), {
    whyNull: noWavefrontSensor,
  }),
  col("gcal_lamp", text, (c) => gcalLamp(c.file), {
    from: { phu: ["GCALLAMP", "GCALSHUT"] },
  }),
  col("raw_iq", integer, d("raw_iq")),
  col("raw_cc", integer, d("raw_cc")),
  col("raw_wv", integer, d("raw_wv")),
  col("raw_bg", integer, d("raw_bg")),
  col("requested_iq", integer, d("requested_iq")),
  col("requested_cc", integer, d("requested_cc")),
  col("requested_wv", integer, d("requested_wv")),
  col("requested_bg", integer, d("requested_bg")),
  col("qa_state", enumType("qa_state"), qa),
  col("release", date, release, {
    from: { phu: ["RELEASE"], expects: "a date" },
  }),
  col("reduction", enumType("reduction_state"), (c) => reduction(c.tags)),
  col("site_monitoring", boolean, siteMonitoring),
  col("types", text, (c) => typesText(c.tags)),
  col("phot_standard", boolean, () => null, {
    whyNull: () =>
      "the archive's rule: the header row leaves phot_standard NULL; only a later step of the reference's ingest (do_std_obs) sets it, to true, for imaging whose footprint holds a photometric standard",
  }),
  col(
    "proprietary_coordinates",
    boolean,
    (c) => c.file.phu.get("PROP_MD") === true,
  ),
  col("pre_image", boolean, (c) => {
    const value = c.file.phu.get("PREIMAGE");
    return value === "1" || value === "T" || value === true;
  }),
  col("numpix", integer, (c) => numpix(c.file)),
];

// --- instrument rows: the plain (not pretty) descriptor variants (§7.2) ---------------

export type InstrumentTableName = "gmos" | "niri" | "f2" | "gnirs";

interface InstrumentTable {
  table: InstrumentTableName;
  columns: Column[];
}

const plain =
  (compute: (f: GeminiFile) => DescriptorValue): Column["derive"] =>
  (c, column) =>
    c.run(`plain:${column}`, column, () => compute(c.file));

const inEnum =
  (name: keyof typeof ENUMS, derive: Column["derive"]) =>
  (c: RowContext, column: string) => {
    const value = derive(c, column);
    return isEnumLabel(name, value)
      ? value
      : value === null
        ? null
        : notALabel(c, column, name, value);
  };

/** `'+'.join(list)`, which fails (null) when any element is missing. */
function joined(value: DescriptorValue): string {
  if (!Array.isArray(value) || value.some((v) => v === null)) {
    throw new Error("a science extension has no value");
  }
  return value.join("+");
}

/**
 * The reference fills these five GMOS columns in one guarded block: the first
 * failure leaves it and every later column of the block NULL.
 */
const GMOS_BLOCK = [
  "detector_x_bin",
  "detector_y_bin",
  "array_name",
  "amp_read_area",
  "gain_setting",
] as const;

function gmosBlock(c: RowContext): (string | number | null)[] {
  const block = c.run("gmos-block", "gmos.detector_x_bin", () => {
    const out: (string | number | null)[] = [];
    const table = descriptorTable("GMOS");
    for (const name of GMOS_BLOCK) {
      try {
        const value = table[name]?.(c.file) ?? null;
        out.push(
          name === "array_name" || name === "amp_read_area"
            ? joined(value)
            : name === "gain_setting"
              ? isEnumLabel("gmos_gain_setting", value)
                ? value
                : null
              : numberOrNull(value),
        );
      } catch (error) {
        c.warn(`gmos.${name}`, (error as Error).message);
        break;
      }
    }
    return out;
  });
  return Array.isArray(block) ? block : [];
}

const gmosBlockColumn =
  (index: number): Column["derive"] =>
  (c) =>
    gmosBlock(c)[index] ?? null;

/** A column after the block's first failure is NULL because of it. */
function gmosBlockStopped(c: RowContext, column: string): string | undefined {
  const index = GMOS_BLOCK.findIndex((n) => column === `gmos.${n}`);
  for (const name of GMOS_BLOCK.slice(0, Math.max(0, index))) {
    const failure = c.warnings.find((w) => w.column === `gmos.${name}`);
    if (failure !== undefined) {
      return `the archive fills ${GMOS_BLOCK.join(", ")} in one step, which stopped at ${name}: ${failure.message}`;
    }
  }
  return undefined;
}

const NOT_NOD_AND_SHUFFLE =
  "not a nod-and-shuffle observation (no NODANDSHUFFLE tag)";

const INSTRUMENT_TABLES: Record<string, InstrumentTable> = {
  gmos: {
    table: "gmos",
    columns: [
      col(
        "disperser",
        text,
        plain((f) => phuScalar(f, "GRATING")),
      ),
      col(
        "filter_name",
        text,
        plain((f) => genericFilterName(f, false)),
      ),
      ...GMOS_BLOCK.slice(0, 4).map((name, i) =>
        col(name, name.endsWith("bin") ? integer : text, gmosBlockColumn(i), {
          whyNull: gmosBlockStopped,
        }),
      ),
      col(
        "read_speed_setting",
        enumType("gmos_read_speed_setting"),
        inEnum("gmos_read_speed_setting", d("read_speed_setting")),
      ),
      col("gain_setting", enumType("gmos_gain_setting"), gmosBlockColumn(4), {
        whyNull: gmosBlockStopped,
      }),
      col("focal_plane_mask", text, d("focal_plane_mask")),
      col("nodandshuffle", boolean, (c) => c.tags.has("NODANDSHUFFLE")),
      col("nod_count", integer, (c, k) => {
        if (!c.tags.has("NODANDSHUFFLE")) {
          return c.nullBecause(k, NOT_NOD_AND_SHUFFLE);
        }
        const counts = c.descriptor("nod_count", k);
        return Array.isArray(counts) ? (counts[0] ?? null) : null;
      }),
      col(
        "nod_pixels",
        integer,
        (c, k) =>
          c.tags.has("NODANDSHUFFLE")
            ? c.descriptor("shuffle_pixels", k)
            : c.nullBecause(k, NOT_NOD_AND_SHUFFLE),
        { from: "shuffle_pixels" },
      ),
      col("prepared", boolean, (c) => c.tags.has("PREPARED")),
      col("overscan_subtracted", boolean, (c) =>
        c.tags.has("OVERSCAN_SUBTRACTED"),
      ),
      col("overscan_trimmed", boolean, (c) => c.tags.has("OVERSCAN_TRIMMED")),
      col("grating_order", integer, () => null, {
        whyNull: () =>
          "the archive's rule: the reference's metadata library has no grating_order descriptor, so every GMOS row stores NULL",
      }),
    ],
  },
  niri: {
    table: "niri",
    columns: [
      col(
        "disperser",
        enumType("niri_disperser"),
        inEnum(
          "niri_disperser",
          plain((f) => niriDisperser(f, false)),
        ),
      ),
      col(
        "filter_name",
        text,
        plain((f) => niriFilterName(f, false)),
      ),
      col(
        "read_mode",
        enumType("niri_read_mode"),
        inEnum("niri_read_mode", d("read_mode")),
      ),
      col(
        "well_depth_setting",
        enumType("niri_well_depth_setting"),
        inEnum("niri_well_depth_setting", d("well_depth_setting")),
      ),
      col("data_section", enumType("niri_data_section"), (c, k) => {
        const sections = c.descriptor("data_section", k);
        const first = Array.isArray(sections) ? sections[0] : sections;
        return isEnumLabel("niri_data_section", first) ? first : "None";
      }),
      col(
        "camera",
        enumType("niri_camera"),
        inEnum("niri_camera", phu("CAMERA")),
      ),
      col("focal_plane_mask", text, phu("FPMASK"), {
        from: { phu: ["FPMASK"] },
      }),
    ],
  },
  f2: {
    table: "f2",
    columns: [
      col("disperser", text, phu("GRISM"), { from: { phu: ["GRISM"] } }),
      col(
        "filter_name",
        text,
        plain((f) => f2FilterName(f, "plain")),
      ),
      col("lyot_stop", text, d("lyot_stop")),
      col("read_mode", text, d("read_mode")),
      col("focal_plane_mask", text, d("focal_plane_mask")),
    ],
  },
  gnirs: {
    table: "gnirs",
    columns: [
      col(
        "disperser",
        text,
        plain((f) => gnirsDisperser(f, false)),
      ),
      col(
        "filter_name",
        text,
        plain((f) => genericFilterName(f, false)),
      ),
      col(
        "read_mode",
        enumType("gnirs_read_mode"),
        inEnum("gnirs_read_mode", d("read_mode")),
      ),
      col(
        "well_depth_setting",
        enumType("gnirs_well_depth_setting"),
        inEnum("gnirs_well_depth_setting", d("well_depth_setting")),
      ),
      col("camera", text, phu("CAMERA"), { from: { phu: ["CAMERA"] } }),
      col(
        "focal_plane_mask",
        text,
        plain((f) => gnirsFocalPlaneMask(f, false)),
      ),
      col("array_name", text, (c, k) => {
        const names = c.descriptor("array_name", k);
        return Array.isArray(names) ? (names[0] ?? null) : names;
      }),
      col("prism_motor_steps", integer, d("prism_motor_steps")),
    ],
  },
};

/** The reference picks the instrument table by the normalised instrument name. */
const TABLE_BY_INSTRUMENT: Record<string, InstrumentTableName> = {
  "GMOS-N": "gmos",
  "GMOS-S": "gmos",
  NIRI: "niri",
  F2: "f2",
  GNIRS: "gnirs",
};

/**
 * Why a column is NULL: the failures recorded for it, else the rule's own
 * reason, else what its keywords hold.
 */
function nullReason(
  c: RowContext,
  column: Column,
  name: string,
): string | undefined {
  const failures = c.warnings
    .filter((w) => w.column === name)
    .map((w) => w.message);
  if (failures.length > 0) {
    return [...new Set(failures)].join("; ");
  }
  const specific =
    c.noted(name) ??
    column.whyNull?.(c, name) ??
    (typeof column.from === "object"
      ? undefined
      : c.descriptorFailure(column.from ?? column.name));
  if (specific !== undefined) {
    return specific;
  }
  const from =
    typeof column.from === "object"
      ? column.from
      : descriptorSources(c.file.instrumentClass, column.from ?? column.name);
  return from === undefined ? undefined : sourcesReason(c.file, from);
}

function buildRow(
  c: RowContext,
  prefix: string,
  columns: Column[],
  reasons: boolean,
): Row {
  const row: Row = {};
  for (const column of columns) {
    const name = `${prefix}.${column.name}`;
    let raw: unknown;
    try {
      raw = column.derive(c, name);
    } catch (error) {
      c.warn(name, (error as Error).message);
      raw = null;
    }
    const fitted = fitToColumn(raw, column.type);
    if ("problem" in fitted) {
      c.warn(name, fitted.problem);
      row[column.name] = null;
    } else {
      row[column.name] = fitted.value;
    }
    if (reasons && row[column.name] === null) {
      const reason = nullReason(c, column, name);
      if (reason !== undefined) {
        c.reasons[name] = reason;
      }
    }
  }
  return row;
}

/** The header row and instrument rows of a parsed file, with warnings for every NULL that had a reason. */
export function archiveRows(
  structure: FitsStructure,
  fileName: string,
  // Ingest stores no reasons, so it skips working them out.
  options: { reasons?: boolean } = {},
): ArchiveRows {
  const reasons = options.reasons ?? true;
  const file = geminiFile(structure, fileName);
  const c = new RowContext(file);
  if (file.tagError !== undefined) {
    c.warn("header.types", file.tagError);
  }
  const header = buildRow(c, "header", HEADER_COLUMNS, reasons);
  const tableName =
    typeof header.instrument === "string"
      ? TABLE_BY_INSTRUMENT[header.instrument]
      : undefined;
  const table =
    tableName === undefined ? undefined : INSTRUMENT_TABLES[tableName];
  const instrument =
    table === undefined
      ? []
      : [
          {
            table: table.table,
            values: buildRow(c, table.table, table.columns, reasons),
          },
        ];
  return { header, instrument, warnings: c.warnings, reasons: c.reasons };
}

/** Column names in table order, for inserts and COPY. */
export const HEADER_COLUMN_NAMES = HEADER_COLUMNS.map((c) => c.name);
export const INSTRUMENT_COLUMN_NAMES: Record<InstrumentTableName, string[]> = {
  gmos: INSTRUMENT_TABLES.gmos!.columns.map((c) => c.name),
  niri: INSTRUMENT_TABLES.niri!.columns.map((c) => c.name),
  f2: INSTRUMENT_TABLES.f2!.columns.map((c) => c.name),
  gnirs: INSTRUMENT_TABLES.gnirs!.columns.map((c) => c.name),
};
