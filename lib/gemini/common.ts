/**
 * Helpers the descriptors share (docs/MAPPING-NOTES.md §3, §5.9): Gemini
 * component IDs, FITS sections, float32 rounding of wavelengths, and the
 * wavelength-band tables.
 */

/** §3.1: `r_G0303` → `r`: everything before the first `_G`; a non-string gives null. */
export function stripComponentId(value: unknown): string | null {
  if (typeof value !== "string") {
    return null;
  }
  const at = value.indexOf("_G");
  return at < 0 ? value : value.slice(0, at);
}

/** A 0-based, end-exclusive pixel section; its text form is the reference's. */
export class Section {
  constructor(
    readonly x1: number,
    readonly x2: number,
    readonly y1: number,
    readonly y2: number,
  ) {
    if (x2 <= x1 || y2 <= y1) {
      throw new Error(`invalid section: ${this.toString()}`);
    }
  }

  /** `[x1:x2,y1:y2]` (FITS, 1-based, inclusive) → Section, or null when it does not parse. */
  static parse(text: unknown): Section | null {
    const match =
      typeof text === "string"
        ? /^\s*\[(\d+):(\d+),(\d+):(\d+)\]\s*$/.exec(text)
        : null;
    if (match === null) {
      return null;
    }
    const [x1, x2, y1, y2] = match.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    return new Section(x1 - 1, x2, y1 - 1, y2);
  }

  toString(): string {
    return `Section(x1=${this.x1}, x2=${this.x2}, y1=${this.y1}, y2=${this.y2})`;
  }
}

/** §3.3: round to float32 and back through its shortest decimal (350 nm → 0.35 µm, not 0.35000000000000003). */
export function float32Round(x: number): number {
  const f = Math.fround(x);
  for (let digits = 1; digits <= 9; digits++) {
    const text = f.toPrecision(digits);
    if (Math.fround(Number.parseFloat(text)) === f) {
      return Number.parseFloat(text);
    }
  }
  return f;
}

/** §5.9: nominal wavelengths (µm) of the bands, in table order (first wins on a tie). */
const BANDS: [string | null, number][] = [
  [null, 0],
  ["u", 0.35],
  ["g", 0.475],
  ["r", 0.63],
  ["i", 0.78],
  ["Z", 0.9],
  ["Y", 1.02],
  ["X", 1.1],
  ["J", 1.2],
  ["H", 1.65],
  ["K", 2.2],
  ["L", 3.4],
  ["M", 4.8],
  ["N", 11.7],
  ["Q", 18.3],
];

/** The band whose nominal wavelength is nearest to `micrometres`. */
export function nearestBand(micrometres: number | null): string | null {
  if (micrometres === null) {
    return null;
  }
  let best: [string | null, number] = BANDS[0] ?? [null, 0];
  for (const band of BANDS) {
    if (Math.abs(band[1] - micrometres) < Math.abs(best[1] - micrometres)) {
      best = band;
    }
  }
  return best[0];
}

/** §5.9: effective wavelengths (µm) of imaging filters; "*" applies to every instrument. */
export const FILTER_WAVELENGTHS: Record<string, Record<string, number>> = {
  "*": {
    u: 0.35,
    g: 0.475,
    r: 0.63,
    i: 0.78,
    z: 0.925,
    Y: 1.02,
    J: 1.25,
    H: 1.635,
    K: 2.2,
    FeII: 1.644,
  },
  GMOS: {
    HeII: 0.468,
    HeIIC: 0.478,
    OIII: 0.499,
    OIIIC: 0.514,
    Ha: 0.656,
    HaC: 0.662,
    SII: 0.672,
    OVIC: 0.679,
    OVI: 0.6838,
    ri: 0.7054,
    CaT: 0.86,
    Z: 0.876,
    DS920: 0.92,
    Y: 1.01,
  },
  NIRI: {
    "Jcon(1065)": 1.065,
    HeI: 1.083,
    "Pa(gamma)": 1.094,
    "Jcon(112)": 1.122,
    "Jcon(121)": 1.207,
    "Pa(beta)": 1.282,
    "H-con(157)": 1.57,
    "CH4(short)": 1.58,
    H: 1.65,
    "CH4(long)": 1.69,
    "H2Oice(2045)": 2.045,
    "HeI(2p2s)": 2.059,
    "Kcon(209)": 2.0975,
    "K(prime)": 2.12,
    "H2 1-0 S1": 2.1239,
    "K(short)": 2.15,
    "H2 2-1 S1": 2.2465,
    "Br(gamma)": 2.1686,
    "Kcon(227)": 2.2718,
    "CH4ice(2275)": 2.275,
    "CO 2-0 (bh)": 2.289,
    H2Oice: 3.05,
    hydrocarb: 3.295,
    "L(prime)": 3.78,
    "Br(alpha)Con": 3.99,
    "Br(alpha)": 4.052,
    "M(prime)": 4.68,
  },
  F2: {
    Jlow: 1.122,
    JH: 1.39,
    H: 1.631,
    HK: 1.871,
    "K-blue": 2.06,
    Ks: 2.157,
    "K-red": 2.31,
    Klong: 2.2,
    "K-long": 2.2,
  },
  GNIRS: {
    YPHOT: 1.03,
    X: 1.1,
    "X_(order_6)": 1.1,
    JPHOT: 1.25,
    "J_(order_5)": 1.27,
    H: 1.63,
    "H_(order_4)": 1.63,
    H2: 2.125,
    "K_(order_3)": 2.195,
    KPHOT: 2.22,
    PAH: 3.295,
    L: 3.5,
    "L_(order_2)": 3.5,
    M: 5.1,
    "M_(order_1)": 5.1,
  },
};

/** The effective wavelength of an imaging filter: the instrument's own table wins over "*". */
export function filterWavelength(
  instrument: string,
  filter: string | null,
): number | null {
  if (filter === null) {
    return null;
  }
  return (
    FILTER_WAVELENGTHS[instrument]?.[filter] ??
    FILTER_WAVELENGTHS["*"]?.[filter] ??
    null
  );
}

/** §3.5: a number, a numeric string, or sexagesimal text (RA in hours unless it says degrees). */
export function parseAngle(value: unknown, kind: "ra" | "dec"): number | null {
  if (typeof value === "number") {
    return value;
  }
  if (typeof value !== "string") {
    return null;
  }
  const text = value.trim();
  if (text !== "" && Number.isFinite(Number(text))) {
    return Number(text);
  }
  const degrees = kind === "dec" || /degrees?$/.test(text);
  const match = /^([+-]?)(\d+)[:\s]+(\d+)[:\s]+(\d+(?:\.\d*)?)/.exec(text);
  if (match === null) {
    return null;
  }
  const magnitude =
    Number(match[2]) + Number(match[3]) / 60 + Number(match[4]) / 3600;
  const signed = match[1] === "-" ? -magnitude : magnitude;
  return degrees ? signed : signed * 15;
}
