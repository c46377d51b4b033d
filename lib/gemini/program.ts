/**
 * Gemini program IDs as the reference archive (FitsStorage v3) reads them, and
 * the three program flags of its `header` row (engineering,
 * science_verification, calibration_program).
 *
 * Sources (GitHub GeminiDRSoftware/FitsStorage):
 * - `fits_storage/gemini_metadata_utils/progid_obsid_dl.py` at 0fed2e8a (the
 *   2024 "GPP" generation of the regexes and `GeminiProgram`);
 * - `fits_storage/core/orm/header.py` at 3ba5df44 (`Header.populate_fits`) and
 *   `fits_storage/file_parser.py` at 09881be2 (`program_id()`,
 *   `engineering()`).
 *
 * The regexes are the reference's, matched against the whole string
 * (`re.fullmatch`), case-sensitive, after Python's `str.strip()`. Python's
 * `\d` and `\w` are Unicode-aware on text, so they are `\p{Nd}` and
 * `[\p{L}\p{N}_]` here.
 */

const D = String.raw`\p{Nd}`;
const WORD = String.raw`\p{L}\p{N}_`;
const YEAR = `20${D}${D}`;
const YYYYMMDD = `${YEAR}[01]${D}[0123]${D}`;

// CAL/ENG/COM/MON programs. Group names are unique per alternative, as upstream.
/** GN-CAL20120123, GS-ENG20200101 */
const CALENG_ORIG = `G[NS]-(?<ec1>CAL|ENG)(?<date1>${YYYYMMDD})`;
/** CAL20031122 (a few archaic ones without the site) */
const CALENG_ARCHAIC = `(?<ec2>CAL|ENG)(?<date2>${YYYYMMDD})`;
/** GN-2020A-CAL-191 */
const CALENG_ANOTHER = `G[NS]-(?<sem1>${YEAR}[AB])-(?<ec3>CAL|ENG)-${D}+`;
/** G-2024A-ENG-GMOS_N-12, G-2024A-COM-IGRINS-2-3 (2024 GPP format) */
const CALENG_NEW = `G-(?<sem2>${YEAR}[AB])-(?<ec4>CAL|ENG|COM|MON)-[${WORD}+-]+-${D}+`;
/** GN-2011A-Q-123 */
const SCI_ORIG = `G[NS]-(?<sem3>${YEAR}[AB])-(?<typ1>Q|C|SV|QS|DD|LP|FT|DS)-${D}+`;
/** G-2024A-1234-Q (2024 GPP format; the letter is one of CDFLQSVP) */
const SCI_NEW = `G-(?<sem4>${YEAR}[AB])-${D}+-(?<typ2>[CDFLQSVP])`;

// Same order of alternatives as upstream: science first, then new, orig, another, archaic.
const PROGRAM_ID = new RegExp(
  `^(?:${SCI_ORIG}|${SCI_NEW}|${CALENG_NEW}|${CALENG_ORIG}|${CALENG_ANOTHER}|${CALENG_ARCHAIC})$`,
  "u",
);

export interface ProgramInfo {
  /** The id matches one of the reference's program-id formats. */
  valid: boolean;
  /** The stripped id when valid, else null (upstream `program_id`). */
  programId: string | null;
  /** ENG program; also true for every invalid id ("probably some engineering test program"). */
  isEng: boolean;
  /** CAL program. */
  isCal: boolean;
  /** COM (commissioning) program, new format only. */
  isCom: boolean;
  /** MON (instrument monitoring) program, new format only. */
  isMon: boolean;
  /** Queue: Q. */
  isQ: boolean;
  /** Classical: C. */
  isC: boolean;
  /** Science verification: SV, or V in the new format. */
  isSv: boolean;
  /** Quick start: QS (old format only). Upstream never sets its is_qs (it stays None). */
  isQs: boolean;
  /** Director's discretion: DD, or D. */
  isDd: boolean;
  /** Large program: LP, or L. Upstream assigns this to a misspelt `is_ll`, so its is_lp stays None. */
  isLp: boolean;
  /** Fast turnaround: FT, or F. */
  isFt: boolean;
  /** Demo science: DS, or S. */
  isDs: boolean;
  /** Poor weather: P (new format only). */
  isPw: boolean;
  /** Semester such as 2012A, when the format has one. */
  semester: string | null;
  /** yyyymmdd of the old CAL/ENG formats. */
  date: string | null;
}

/** Python's `str.strip()` whitespace (str.isspace), which differs from JS trim in \x1c-\x1f, \x85 and \ufeff. */
const PY_SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "gu");

export function pyStrip(text: string): string {
  return text.replace(PY_STRIP, "");
}

/** FitsStorage v3 `GeminiProgram(id)`: which kind of program an id names. */
export function parseProgramId(id: string): ProgramInfo {
  const text = pyStrip(id);
  const match = PROGRAM_ID.exec(text);
  const g = match?.groups ?? {};
  const first = (...names: string[]): string | null =>
    names.map((n) => g[n]).find((v) => v !== undefined && v !== "") ?? null;
  const ec = first("ec1", "ec2", "ec3", "ec4");
  const typ = first("typ1", "typ2");
  const valid = match !== null;
  return {
    valid,
    programId: valid ? text : null,
    // An invalid id is engineering; every other flag is unassessed (None upstream).
    isEng: valid ? ec === "ENG" : true,
    isCal: ec === "CAL",
    isCom: ec === "COM",
    isMon: ec === "MON",
    isQ: typ === "Q",
    isC: typ === "C",
    isSv: typ === "SV" || typ === "V",
    isQs: typ === "QS",
    isDd: typ === "DD" || typ === "D",
    isLp: typ === "LP" || typ === "L",
    isFt: typ === "FT" || typ === "F",
    isDs: typ === "DS" || typ === "S",
    isPw: typ === "P",
    semester: first("sem1", "sem2", "sem3", "sem4"),
    date: first("date1", "date2"),
  };
}

export interface HeaderProgramFlags {
  engineering: boolean | null;
  scienceVerification: boolean | null;
  /** Null (not set) when the file has no program id. */
  calibrationProgram: boolean | null;
}

/** Python's bool() of a header value (astropy types): '' / 0 / False are false, anything else true. */
function pyTruthy(value: unknown): boolean {
  if (value === null) {
    return true; // astropy's UNDEFINED (a card with a blank value) is a plain object: truthy
  }
  if (typeof value === "boolean") {
    return value;
  }
  if (typeof value === "number") {
    return value !== 0; // NaN is truthy in Python too
  }
  if (typeof value === "bigint") {
    return value !== 0n;
  }
  if (typeof value === "string") {
    return value.length > 0;
  }
  if (typeof value === "object" && "re" in value && "im" in value) {
    return value.re !== 0 || value.im !== 0;
  }
  return value !== undefined;
}

/**
 * How `Header.populate_fits` sets engineering / science_verification /
 * calibration_program. `programId` is the program_id descriptor (PHU
 * GEMPRGID) or null when it gave none; it is upper-cased here as the file
 * parser does (`str(x).upper()`), so the stored header.program_id works too.
 * `engData` is the PHU `ENG_DATA` value, undefined when the keyword is absent;
 * when present it overrides engineering with Python's `bool(value)` (so the
 * string 'F' means true), even without a program id.
 */
export function headerProgramFlags(
  programId: string | null,
  opts: { siteMonitoring: boolean; engData: unknown },
): HeaderProgramFlags {
  let flags: HeaderProgramFlags;
  if (programId !== null) {
    const program = parseProgramId(programId.toUpperCase());
    flags = {
      engineering: program.isEng || !program.valid,
      scienceVerification: program.isSv,
      calibrationProgram: program.isCal,
    };
  } else {
    // No program id: engineering, except site monitoring (the sky camera).
    flags = {
      engineering: !opts.siteMonitoring,
      scienceVerification: false,
      calibrationProgram: null,
    };
  }
  if (opts.engData !== undefined) {
    flags.engineering = pyTruthy(opts.engData);
  }
  return flags;
}
