/**
 * IAU 2006/2000A precession-nutation in both of its forms: the classical
 * equinox-based bias-precession-nutation matrix (ERFA `pnm06a`) and the
 * CIO-based one built from the CIP coordinates X, Y and the CIO locator s
 * (`bpn2xy`, `s06`, `c2ixys`), plus the quantities that link the two: the
 * Earth rotation angle, the equation of the origins and Greenwich sidereal
 * time.
 */
import {
  ARCSEC,
  fad03,
  fae03,
  faf03,
  fal03,
  falp03,
  faom03,
  fapa03,
  fave03,
  TWO_PI,
} from "./fundamental.js";
import { nut06a } from "./nutation.js";
import { S06_POLYNOMIAL, S06_SERIES, S06_STRIDE } from "./s06-data.js";
import { centuriesSinceJ2000, J2000, type JulianDate } from "./time.js";
import { type Matrix, normalizeAngle, rotX, rotY, rotZ } from "./vector.js";

const poly = (coefficients: readonly number[], t: number): number =>
  coefficients.reduceRight((sum, c) => sum * t + c, 0);

/** Mean obliquity of the ecliptic, IAU 2006 (radians). */
export function obl06(tt: JulianDate): number {
  const t = centuriesSinceJ2000(tt);
  return (
    poly(
      [
        84381.406, -46.836769, -0.0001831, 0.0020034, -0.000000576,
        -0.0000000434,
      ],
      t,
    ) * ARCSEC
  );
}

export interface FukushimaWilliams {
  /** γ̄: GCRS right ascension of the ecliptic pole's node on the mean equator. */
  gamb: number;
  /** φ̄: obliquity of the ecliptic on the GCRS equator. */
  phib: number;
  /** ψ̄: precession in longitude plus bias. */
  psib: number;
  /** εA: mean obliquity of date. */
  epsa: number;
}

/** Precession angles, IAU 2006, Fukushima-Williams four-angle form (bias included). */
export function pfw06(tt: JulianDate): FukushimaWilliams {
  const t = centuriesSinceJ2000(tt);
  return {
    gamb:
      poly(
        [
          -0.052928, 10.556378, 0.4932044, -0.00031238, -0.000002788,
          0.000000026,
        ],
        t,
      ) * ARCSEC,
    phib:
      poly(
        [
          84381.412819, -46.811016, 0.0511268, 0.00053289, -0.00000044,
          -0.0000000176,
        ],
        t,
      ) * ARCSEC,
    psib:
      poly(
        [
          -0.041775, 5038.481484, 1.5584175, -0.00018522, -0.000026452,
          -0.0000000148,
        ],
        t,
      ) * ARCSEC,
    epsa: obl06(tt),
  };
}

/** The rotation matrix from Fukushima-Williams angles (with nutation added, the full NPB matrix). */
export function fw2m(
  gamb: number,
  phib: number,
  psi: number,
  eps: number,
): Matrix {
  return rotX(-eps, rotZ(-psi, rotX(phib, rotZ(gamb))));
}

/** GCRS → true equator and equinox of date: bias, precession (IAU 2006) and nutation (IAU 2000A). */
export function pnm06a(tt: JulianDate): Matrix {
  const { gamb, phib, psib, epsa } = pfw06(tt);
  const { dpsi, deps } = nut06a(tt);
  return fw2m(gamb, phib, psib + dpsi, epsa + deps);
}

/** The CIP's GCRS coordinates X, Y: the bottom row of the NPB matrix. */
export function bpn2xy(rbpn: Matrix): [number, number] {
  return [rbpn[2][0], rbpn[2][1]];
}

/** The CIO locator s (radians), given the CIP's X, Y at the same TT date. */
export function s06(tt: JulianDate, x: number, y: number): number {
  const t = centuriesSinceJ2000(tt);
  const fa = [
    fal03(t),
    falp03(t),
    faf03(t),
    fad03(t),
    faom03(t),
    fave03(t),
    fae03(t),
    fapa03(t),
  ];
  // Each term is added straight onto its polynomial coefficient, as ERFA does.
  const w = S06_POLYNOMIAL.slice();
  S06_SERIES.forEach((series, power) => {
    let sum = w[power] ?? 0;
    for (let i = series.length - S06_STRIDE; i >= 0; i -= S06_STRIDE) {
      let a = 0;
      for (let j = 0; j < 8; j++) {
        a += (series[i + j] ?? 0) * (fa[j] ?? 0);
      }
      sum +=
        (series[i + 8] ?? 0) * Math.sin(a) + (series[i + 9] ?? 0) * Math.cos(a);
    }
    w[power] = sum;
  });
  return poly(w, t) * ARCSEC - (x * y) / 2;
}

/** GCRS → CIRS from the CIP coordinates and the CIO locator. */
export function c2ixys(x: number, y: number, s: number): Matrix {
  const r2 = x * x + y * y;
  const e = r2 > 0 ? Math.atan2(y, x) : 0;
  const d = Math.atan(Math.sqrt(r2 / (1 - r2)));
  return rotZ(-(e + s), rotY(d, rotZ(e)));
}

/**
 * The equation of the origins, ERA − GST (Wallace & Capitaine 2006, eq. 16),
 * from the classical NPB matrix and s at the same date.
 */
export function eors(rnpb: Matrix, s: number): number {
  const x = rnpb[2][0];
  const ax = x / (1 + rnpb[2][2]);
  const xs = 1 - ax * x;
  const ys = -ax * rnpb[2][1];
  const zs = -x;
  const p = rnpb[0][0] * xs + rnpb[0][1] * ys + rnpb[0][2] * zs;
  const q = rnpb[1][0] * xs + rnpb[1][1] * ys + rnpb[1][2] * zs;
  return p !== 0 || q !== 0 ? s - Math.atan2(q, p) : s;
}

/** The equation of the origins, IAU 2006/2000A. */
export function eo06a(tt: JulianDate): number {
  const r = pnm06a(tt);
  const [x, y] = bpn2xy(r);
  return eors(r, s06(tt, x, y));
}

/** Earth rotation angle, IAU 2000 (radians), at a UT1 date. */
export function era00(ut1: JulianDate): number {
  // The larger part goes last so the fractions keep their precision.
  const [d1, d2] = ut1[0] < ut1[1] ? ut1 : [ut1[1], ut1[0]];
  const t = d1 + (d2 - J2000);
  const f = (d1 % 1) + (d2 % 1);
  return normalizeAngle(
    TWO_PI * (f + 0.779057273264 + 0.00273781191135448 * t),
  );
}

/** Greenwich apparent sidereal time, IAU 2006/2000A: ERA minus the equation of the origins. */
export function gst06a(ut1: JulianDate, tt: JulianDate): number {
  return normalizeAngle(era00(ut1) - eo06a(tt));
}
