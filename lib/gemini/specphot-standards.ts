/**
 * The spectrophotometric standard stars the reference's metadata library
 * recognises (the GMOS STANDARD tag), and its match of a target against them.
 *
 * Catalogue: `specphot_standards` in GitHub GeminiDRSoftware/DRAGONS
 * `gemini_instruments/gemini/lookup.py` at 7d9f5008, the stored copy whose
 * hilt600 entry is well-formed (pm −1.169, −0.534; another stored copy,
 * 2a8a2fc2, has the typo `-1.169 -0.534`, which makes a 2-tuple and would break
 * every spectroscopic OBJECT frame). Names are as in the OBJECT keyword after
 * lower-casing and removing spaces; positions are ICRS J2000.0 (hours and
 * degrees, sexagesimal); proper motions are mas/yr, the RA one times cos(dec).
 *
 * Match: `get_specphot_name` in `gemini_instruments/gemini/adclass.py` (same
 * repository): every star is moved by its proper motion over the elapsed time,
 * as astropy's `SkyCoord.apply_space_motion` does (at a fixed distance of
 * 10 pc, no radial velocity: a straight line in space); the nearest star
 * matches if it is under 2″ from the target, or under 10″ and its name equals
 * the target name. The target is target_ra() / target_dec() with their
 * defaults: the PHU RA / DEC plus the header's proper motion, no offsets, no
 * conversion to ICRS (MAPPING-NOTES §4.2).
 */
import type { FitsValue } from "../fits/card.js";
import type { Header } from "../fits/header.js";
import { parseAngle } from "./common.js";
import { utDatetime } from "./times.js";

/** [name, "HH MM SS.s ±DD MM SS.s", pm RA·cos(dec) mas/yr, pm Dec mas/yr], in the upstream order. */
export const SPECPHOT_STANDARDS: readonly (readonly [
  string,
  string,
  number,
  number,
])[] = [
  ["bd+284211", "21 51 11.0220905905 +28 51 50.366090892", -34.728, -56.851],
  ["cd-329927", "14 11 46.3240134300 -33 03 14.379335532", -4.136, 7.124],
  ["cd-34241", "00 41 46.9205477795 -33 39 08.431504848", -17.266, -18.719],
  ["cygob2no9", "20 33 10.7366753544 +41 15 08.222187463", -3.041, -4.659], // Schulte 9
  ["eg21", "03 10 31.0201840720 -68 36 03.381441176", 39.451, -103.194],
  ["eg81", "11 37 26.3700093153 +14 10 14.103354248", -79.927, -44.696],
  ["eg131", "19 20 34.9229875534 -07 40 00.066805378", -61.279, -161.774],
  ["eg274", "16 23 33.8384178546 -39 13 46.160032569", 77.135, 0.334],
  ["feige34", "10 39 36.7377085527 +43 06 09.209752646", 12.542, -25.408],
  ["feige56", "12 06 47.2351675221 +11 40 12.658737086", -7.427, -6.526],
  ["feige66", "12 37 23.5157891619 +25 03 59.871049394", 1.833, -27.425],
  ["feige67", "12 41 51.7901702595 +17 31 19.750592670", -7.327, -37.281],
  ["feige110", "23 19 58.3995050606 -05 09 56.170282845", -10.68, 0.31],
  ["g191b2b", "05 05 30.6182785658 +52 49 51.920797126", 12.592, -93.525],
  ["gd108", "10 00 47.2462037648 -07 33 30.777365253", -42.368, -1.876],
  ["gd140", "11 37 05.1038329295 +29 47 58.292363897", -147.459, -12.782],
  ["hd192281", "20 12 33.1205906584 +40 16 05.442931142", -7.517, -2.162],
  ["hd217086", "22 56 47.1887219290 +62 43 37.654789076", -0.318, -2.077],
  ["hilt600", "06 45 13.3726265810 +02 08 14.688016523", -1.169, -0.534],
  ["hz14", "04 41 01.7398593372 +10 59 39.999082566", 91.354, -10.643],
  ["hz44", "13 23 35.2632775627 +36 07 59.545982652", -66.269, -4.516],
  ["ltt377", "00 41 30.4742099792 -33 37 32.032402561", -347.517, -251.053],
  ["ltt1020", "01 54 50.2704861570 -27 28 35.740415025", 310.816, -231.981],
  ["ltt1788", "03 48 22.6125635562 -39 08 37.013516494", 214.128, -189.449],
  ["ltt2415", "05 56 24.7419816722 -27 51 32.362978169", 236.465, -157.218],
  ["ltt2915", "07 40 20.7887176053 -17 24 49.155097204", 1138.64, -542.673],
  ["ltt3218", "08 41 32.4293043356 -32 56 32.916852010", -1061.335, 1345.946],
  ["ltt3864", "10 32 13.6185042385 -35 37 41.710291605", -260.74, -4.588],
  ["ltt4364", "11 45 42.9170659451 -64 50 29.464090822", 2661.594, -344.847],
  ["ltt4816", "12 38 49.7813250074 -49 48 00.218655097", -557.233, -74.089],
  ["ltt6248", "15 38 59.6477173130 -28 35 36.970418054", -233.378, -177.347],
  ["ltt7379", "18 36 25.9487430436 -44 18 36.919462094", -168.738, -159.044],
  ["ltt7987", "20 10 56.8485174654 -30 13 06.629141494", -340.722, -249.278],
  ["ltt9239", "22 52 41.0353308036 -20 35 32.995847106", 78.87, -314.21],
  ["ltt9491", "23 19 35.3881040214 -17 05 28.468265988", 242.143, 10.403],
  ["pg0205+134", "02 08 03.497520 +13 36 24.91632", 42.8, -1.6],
  ["pg0216+032", "02 19 18.9089371671 +03 26 51.366664476", -3.527, -31.225],
  ["pg0310+149", "03 13 37.1752356567 +15 06 21.260839282", 2.735, 1.513],
  ["pg0823+546", "08 26 49.6109695820 +54 28 00.332275894", 32.059, -25.138],
  ["pg0846+249", "08 49 05.8759372076 +24 45 07.928538213", -2.099, -7.195],
  ["pg0934+554", "09 38 20.3523773178 +55 05 50.091654658", -0.167, -67.714],
  ["pg0939+262", "09 42 50.6348760810 +26 00 59.845267830", -20.465, -19.262],
  ["pg1121+145", "11 24 15.1708225746 +14 13 46.246328238", 2.87, -3.645],
  ["pg1545+035", "15 48 24.2469238601 +03 22 50.906671685", -5.293, -2.113],
  ["pg1708+602", "17 09 15.8898636361 +60 10 11.009026085", -4.579, 9.591],
  ["wolf1346", "20 34 21.8849808924 +25 03 49.749569866", -403.633, -563.327],
];

const DEG = Math.PI / 180;
const MAS = DEG / 3_600_000;
const ARCSEC = DEG / 3600;
/** A Julian year in days: erfa's starpm takes proper motions per Julian year. */
const JULIAN_YEAR_DAYS = 365.25;

type Vector = [number, number, number];

function unit(raDeg: number, decDeg: number): Vector {
  const [a, d] = [raDeg * DEG, decDeg * DEG];
  return [Math.cos(d) * Math.cos(a), Math.cos(d) * Math.sin(a), Math.sin(d)];
}

/** "HH MM SS.s ±DD MM SS.s" → degrees. */
export function parseSexagesimal(position: string): [number, number] {
  const parts = position.trim().split(/\s+/);
  const [h, m, s, dd, dm, ds] = parts.map(Number);
  const sign = parts[3]?.startsWith("-") ? -1 : 1;
  if (
    parts.length !== 6 ||
    [h, m, s, dd, dm, ds].some((v) => v === undefined || Number.isNaN(v))
  ) {
    throw new Error(`not a sexagesimal position: ${position}`);
  }
  const ra = ((h ?? 0) + (m ?? 0) / 60 + (s ?? 0) / 3600) * 15;
  const dec = sign * (Math.abs(dd ?? 0) + (dm ?? 0) / 60 + (ds ?? 0) / 3600);
  return [ra, dec];
}

interface Star {
  name: string;
  /** Unit vector at J2000.0. */
  p: Vector;
  /** Change of the position vector per Julian year (radians, tangential). */
  v: Vector;
}

const STARS: Star[] = SPECPHOT_STANDARDS.map(
  ([name, position, pmRa, pmDec]) => {
    const [ra, dec] = parseSexagesimal(position);
    const [a, d] = [ra * DEG, dec * DEG];
    const east: Vector = [-Math.sin(a), Math.cos(a), 0];
    const north: Vector = [
      -Math.sin(d) * Math.cos(a),
      -Math.sin(d) * Math.sin(a),
      Math.cos(d),
    ];
    const v = [0, 1, 2].map(
      (i) => pmRa * MAS * (east[i] ?? 0) + pmDec * MAS * (north[i] ?? 0),
    ) as Vector;
    return { name, p: unit(ra, dec), v };
  },
);

/** Angle between two (not necessarily unit) vectors, in arcseconds. */
function separation(u: Vector, q: Vector): number {
  const cross: Vector = [
    u[1] * q[2] - u[2] * q[1],
    u[2] * q[0] - u[0] * q[2],
    u[0] * q[1] - u[1] * q[0],
  ];
  const dot = u[0] * q[0] + u[1] * q[1] + u[2] * q[2];
  return Math.atan2(Math.hypot(...cross), dot) / ARCSEC;
}

/** Each star's separation (″) from the target after `elapsedDays` of proper motion since J2000.0, in catalogue order. */
export function specphotSeparations(
  target: { ra: number; dec: number },
  elapsedDays: number,
): { name: string; arcsec: number }[] {
  const u = unit(target.ra, target.dec);
  const years = elapsedDays / JULIAN_YEAR_DAYS;
  return STARS.map(({ name, p, v }) => ({
    name,
    arcsec: separation(u, [
      p[0] + years * v[0],
      p[1] + years * v[1],
      p[2] + years * v[2],
    ]),
  }));
}

/**
 * The catalogue name of the standard the target is, or undefined. `targetName`
 * is the OBJECT value lower-cased with spaces removed; `elapsedDays` is the
 * observation time minus 2000-01-01T12:00 (the reference uses 3652.5 days when
 * there is no observation time).
 */
export function specphotName(
  target: { ra: number; dec: number },
  targetName: string,
  elapsedDays: number,
): string | undefined {
  if (!Number.isFinite(target.ra) || !Number.isFinite(target.dec)) {
    return undefined; // every separation is NaN, and NaN < 2 is false
  }
  let best: { name: string; arcsec: number } | undefined;
  for (const s of specphotSeparations(target, elapsedDays)) {
    if (best === undefined || s.arcsec < best.arcsec) {
      best = s; // numpy argmin: the first of equal minima
    }
  }
  if (best === undefined) {
    return undefined;
  }
  return best.arcsec < 2 || (best.arcsec < 10 && best.name === targetName)
    ? best.name
    : undefined;
}

// --- Reading the target from the headers (get_specphot_name, target_ra/_dec) ---

/** The PHU plus what ut_datetime's last resort reads (extension FRMNAME, file name). */
export interface SpecphotFile {
  sci: Header[];
  fileName: string;
}

/** A header value in Python arithmetic: numbers and bools; anything else would be a TypeError. */
function pyNumber(value: FitsValue | undefined): number | undefined {
  return typeof value === "number"
    ? value
    : typeof value === "bigint" || typeof value === "boolean"
      ? Number(value)
      : undefined;
}

/** The ut_datetime descriptor (it may throw, as the reference's may raise). */
function observationTime(phu: Header, file: SpecphotFile): string | null {
  const gemini = {
    phu,
    sci: file.sci,
    fileName: file.fileName,
    instrumentClass: "GMOS" as const,
    tags: new Set<string>(),
    tagError: undefined,
  };
  return utDatetime(gemini);
}

/** ISO date and time without zone → the year and microseconds since 1970 (proleptic Gregorian, like Python's datetime). */
function isoMicros(iso: string): { year: number; micros: number } {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(
    iso,
  );
  if (m === null) {
    throw new Error(`not an ISO date and time: ${iso}`);
  }
  const [year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0] = m
    .slice(1, 7)
    .map(Number);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return {
    year,
    micros: date.getTime() * 1000 + Number((m[7] ?? "").padEnd(6, "0")),
  };
}

function yearStartMicros(year: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, 0, 1);
  return date.getTime() * 1000;
}

/**
 * target_ra() / target_dec() as the match calls them: PHU RA / DEC
 * (sexagesimal text allowed), and the header's proper motion (PMRA in seconds
 * of time per year, PMDEC in ″ per year) from EPOCH (default 2000) to the
 * observation as a decimal year. Null where the reference returns None;
 * "unmatched" where its TypeError or ValueError ends the match; other
 * failures throw, as the reference's do (a proper motion without an
 * observation time fails on None.year).
 */
function targetCoordinate(
  phu: Header,
  file: SpecphotFile,
  axis: "RA" | "DEC",
): number | null | "unmatched" {
  const raw = phu.get(axis);
  let value =
    typeof raw === "string"
      ? parseAngle(raw, axis === "RA" ? "ra" : "dec")
      : (pyNumber(raw) ?? null);
  const keyword = axis === "RA" ? "PMRA" : "PMDEC";
  // Absent means 0; a blank value (null) is astropy's UNDEFINED, which is != 0.
  const pm = phu.get(keyword) ?? (phu.has(keyword) ? null : 0);
  if (pm === 0 || pm === false || pm === 0n) {
    return value;
  }
  const ut = observationTime(phu, file);
  if (ut === null) {
    throw new Error(`${keyword} is set but the observation time is unknown`);
  }
  const { year, micros } = isoMicros(ut);
  const start = yearStartMicros(year);
  // timedelta.total_seconds() of both, then their ratio.
  const fraction =
    (micros - start) / 1e6 / ((yearStartMicros(year + 1) - start) / 1e6);
  const epochValue = phu.get("EPOCH");
  const epoch = epochValue === undefined ? 2000 : pyNumber(epochValue);
  const rate = pyNumber(pm);
  if (epoch === undefined || rate === undefined || value === null) {
    return "unmatched";
  }
  const years = year + fraction - epoch;
  value += axis === "RA" ? (rate * years * 15) / 3600 : (rate * years) / 3600;
  return value;
}

/**
 * `get_specphot_name`: the catalogue name of the star an observation is of,
 * or undefined. Only OBSTYPE 'OBJECT' is looked at; its OBJECT must then be a
 * string (the reference lower-cases it unguarded, so anything else throws).
 */
export function specphotStandard(
  phu: Header,
  file: SpecphotFile,
): string | undefined {
  if (phu.get("OBSTYPE") !== "OBJECT") {
    return undefined;
  }
  const object = phu.get("OBJECT");
  if (typeof object !== "string") {
    throw new Error(
      `OBJECT is ${object === undefined ? "missing" : JSON.stringify(object)}, not a string`,
    );
  }
  const ra = targetCoordinate(phu, file, "RA");
  const dec = ra === "unmatched" ? ra : targetCoordinate(phu, file, "DEC");
  // SkyCoord refuses None (TypeError) and a latitude beyond ±90° (ValueError).
  if (
    ra === "unmatched" ||
    ra === null ||
    dec === "unmatched" ||
    dec === null ||
    Math.abs(dec) > 90
  ) {
    return undefined;
  }
  const ut = observationTime(phu, file);
  // The time since 2000-01-01T12:00, or ten years (3652.5 days) without one.
  const elapsedDays =
    ut === null
      ? 3652.5
      : (isoMicros(ut).micros - Date.UTC(2000, 0, 1, 12) * 1000) / 86_400e6;
  return specphotName(
    { ra, dec },
    object.toLowerCase().replaceAll(" ", ""),
    elapsedDays,
  );
}
