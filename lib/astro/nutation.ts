/**
 * Nutation, IAU 2000A (ERFA `nut00a`) and its IAU 2006 adjustment (`nut06a`).
 *
 * MHB2000 evaluates the luni-solar and the planetary series with slightly
 * different Delaunay arguments; both sets are kept as they are, because the
 * point of this port is to agree with ERFA to rounding, not merely to the
 * model's 0.1 mas accuracy.
 */
import {
  ARCSEC,
  fae03,
  faf03,
  faju03,
  fal03,
  fama03,
  fame03,
  faom03,
  fapa03,
  fasa03,
  faur03,
  fave03,
  TWO_PI,
} from "./fundamental.js";
import {
  LUNI_SOLAR,
  LUNI_SOLAR_STRIDE,
  PLANETARY,
  PLANETARY_STRIDE,
} from "./nut00a-data.js";
import { centuriesSinceJ2000, type JulianDate } from "./time.js";

// Typed copies: the hot loops below read them ~25,000 times a call.
const LUNI_SOLAR_TERMS = Float64Array.from(LUNI_SOLAR);
const PLANETARY_TERMS = Float64Array.from(PLANETARY);

/** The series' unit, 0.1 µas, in radians. */
const UNIT = ARCSEC / 1e7;
const TURN_ARCSEC = 1296000;

export interface Nutation {
  /** Nutation in longitude (radians). */
  dpsi: number;
  /** Nutation in obliquity (radians). */
  deps: number;
}

/** IAU 2000A nutation (without the free core nutation) at a TT date. */
export function nut00a(tt: JulianDate): Nutation {
  const t = centuriesSinceJ2000(tt);

  // Luni-solar: l and F and Ω from IERS 2003, l′ and D from MHB2000.
  const el = fal03(t);
  const elp =
    ((1287104.79305 +
      t * (129596581.0481 + t * (-0.5532 + t * (0.000136 + t * -0.00001149)))) %
      TURN_ARCSEC) *
    ARCSEC;
  const f = faf03(t);
  const d =
    ((1072260.70369 +
      t * (1602961601.209 + t * (-6.3706 + t * (0.006593 + t * -0.00003169)))) %
      TURN_ARCSEC) *
    ARCSEC;
  const om = faom03(t);

  // Summed smallest term first, as ERFA does, so the rounding matches.
  const ls = LUNI_SOLAR_TERMS;
  let dp = 0;
  let de = 0;
  for (let i = ls.length - LUNI_SOLAR_STRIDE; i >= 0; i -= LUNI_SOLAR_STRIDE) {
    const arg =
      (ls[i]! * el +
        ls[i + 1]! * elp +
        ls[i + 2]! * f +
        ls[i + 3]! * d +
        ls[i + 4]! * om) %
      TWO_PI;
    const s = Math.sin(arg);
    const c = Math.cos(arg);
    dp += (ls[i + 5]! + ls[i + 6]! * t) * s + ls[i + 7]! * c;
    de += (ls[i + 8]! + ls[i + 9]! * t) * c + ls[i + 10]! * s;
  }
  const dpsiLuniSolar = dp * UNIT;
  const depsLuniSolar = de * UNIT;

  // Planetary: MHB2000 linear Delaunay arguments and Neptune, IERS 2003 otherwise.
  const al = (2.35555598 + 8328.6914269554 * t) % TWO_PI;
  const af = (1.627905234 + 8433.466158131 * t) % TWO_PI;
  const ad = (5.198466741 + 7771.3771468121 * t) % TWO_PI;
  const aom = (2.1824392 - 33.757045 * t) % TWO_PI;
  const alme = fame03(t);
  const alve = fave03(t);
  const alea = fae03(t);
  const alma = fama03(t);
  const alju = faju03(t);
  const alsa = fasa03(t);
  const alur = faur03(t);
  const alne = (5.321159 + 3.8127774 * t) % TWO_PI;
  const apa = fapa03(t);
  const pl = PLANETARY_TERMS;
  dp = 0;
  de = 0;
  for (let i = pl.length - PLANETARY_STRIDE; i >= 0; i -= PLANETARY_STRIDE) {
    const arg =
      (pl[i]! * al +
        pl[i + 1]! * af +
        pl[i + 2]! * ad +
        pl[i + 3]! * aom +
        pl[i + 4]! * alme +
        pl[i + 5]! * alve +
        pl[i + 6]! * alea +
        pl[i + 7]! * alma +
        pl[i + 8]! * alju +
        pl[i + 9]! * alsa +
        pl[i + 10]! * alur +
        pl[i + 11]! * alne +
        pl[i + 12]! * apa) %
      TWO_PI;
    const s = Math.sin(arg);
    const c = Math.cos(arg);
    dp += pl[i + 13]! * s + pl[i + 14]! * c;
    de += pl[i + 15]! * s + pl[i + 16]! * c;
  }

  return {
    dpsi: dpsiLuniSolar + dp * UNIT,
    deps: depsLuniSolar + de * UNIT,
  };
}

/**
 * IAU 2000A nutation adjusted to the IAU 2006 precession (Wallace & Capitaine
 * 2006): the J2 secular change and the changed obliquity rate.
 */
export function nut06a(tt: JulianDate): Nutation {
  const t = centuriesSinceJ2000(tt);
  const fj2 = -2.7774e-6 * t;
  const { dpsi, deps } = nut00a(tt);
  return {
    dpsi: dpsi + dpsi * (0.4697e-6 + fj2),
    deps: deps + deps * fj2,
  };
}
