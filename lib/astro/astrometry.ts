/**
 * Geocentric CIRS and apparent places → ICRS, the way astropy 5.2 does it
 * (docs/MAPPING-NOTES.md §3.7).
 *
 * astropy's CIRS → ICRS builds an ERFA astrometry context for the geocentre
 * (`apco` at the Earth's centre, which reduces to `apci`: the observer's
 * position and velocity are zero, so Earth rotation and polar motion drop out
 * and no UT1 is needed) and undoes it with its own variant of ERFA `aticq`:
 * rotate from CIRS to GCRS, remove annual aberration (two fixed-point passes),
 * then remove light deflection by the Sun (five passes). For a direction
 * without a distance, astropy's variant differs from ERFA's only in the
 * deflection limiter (a fixed 1e-6 instead of 1e-6/max(em², 1)), which acts
 * within a few arcminutes of the Sun's centre.
 */
import { epv00 } from "./ephemeris.js";
import { bpn2xy, c2ixys, eo06a, pnm06a, s06 } from "./precession.js";
import {
  type Epoch,
  epochFromUtc,
  J2000_EPOCH,
  SECONDS_PER_DAY,
} from "./time.js";
import {
  applyTransposed,
  cross,
  dot,
  fromSpherical,
  type Matrix,
  norm,
  subtract,
  toSpherical,
  unit,
  type Vector,
} from "./vector.js";

/** The astronomical unit (m), IAU 2012. */
const AU_METRES = 149597870.7e3;
/** The speed of light (m/s). */
const LIGHT_SPEED = 299792458;
/** Light time for one au (s). */
const AU_LIGHT_TIME = AU_METRES / LIGHT_SPEED;
/** Schwarzschild radius of the Sun (au): 2GM☉/(c² au). */
const SUN_SCHWARZSCHILD = 1.97412574336e-8;

const DEG = Math.PI / 180;

/** What `aticq` needs from ERFA's eraASTROM for a geocentric observer. */
export interface Astrom {
  /** GCRS → CIRS (the CIO-based bias-precession-nutation matrix). */
  bpn: Matrix;
  /** Barycentric velocity of the Earth in units of c. */
  v: Vector;
  /** √(1 − |v|²): the reciprocal of the Lorentz factor. */
  bm1: number;
  /** Direction from the Sun to the Earth. */
  eh: Vector;
  /** Sun–Earth distance (au). */
  em: number;
}

/** ERFA `apci` for the geocentre, from the TT and TDB of the epoch. */
export function geocentricAstrom(epoch: Epoch): Astrom {
  const rnpb = pnm06a(epoch.tt);
  const [x, y] = bpn2xy(rnpb);
  const s = s06(epoch.tt, x, y);
  const earth = epv00(epoch.tdb);
  const ph = earth.heliocentric.position;
  const em = norm(ph);
  // ERFA scales by the reciprocal rather than dividing; kept for identical rounding.
  const inv = em === 0 ? 0 : 1 / em;
  const perDayToC = AU_LIGHT_TIME / SECONDS_PER_DAY;
  const vb = earth.barycentric.velocity;
  const v: Vector = [vb[0] * perDayToC, vb[1] * perDayToC, vb[2] * perDayToC];
  return {
    bpn: c2ixys(x, y, s),
    v,
    bm1: Math.sqrt(1 - dot(v, v)),
    eh: [ph[0] * inv, ph[1] * inv, ph[2] * inv],
    em,
  };
}

/** ERFA `ab`: natural direction → proper direction (annual aberration, relativistic). */
export function ab(pnat: Vector, v: Vector, s: number, bm1: number): Vector {
  const pdv = dot(pnat, v);
  const w1 = 1 + pdv / (1 + bm1);
  const w2 = SUN_SCHWARZSCHILD / s;
  const component = (i: 0 | 1 | 2): number =>
    pnat[i] * bm1 + w1 * v[i] + w2 * (v[i] - pdv * pnat[i]);
  const p: Vector = [component(0), component(1), component(2)];
  const r = norm(p);
  return [p[0] / r, p[1] / r, p[2] / r];
}

/**
 * ERFA `ld`: light deflection by one body of mass bm (solar masses), for a
 * source in direction q from the body, an observer at unit vector e and
 * distance em from it, with the limiter dlim near the body's centre.
 */
export function ld(
  bm: number,
  p: Vector,
  q: Vector,
  e: Vector,
  em: number,
  dlim: number,
): Vector {
  const qpe: Vector = [q[0] + e[0], q[1] + e[1], q[2] + e[2]];
  const w = (bm * SUN_SCHWARZSCHILD) / em / Math.max(dot(q, qpe), dlim);
  const peq = cross(p, cross(e, q));
  return [p[0] + w * peq[0], p[1] + w * peq[1], p[2] + w * peq[2]];
}

/** CIRS direction (radians) → ICRS astrometric direction (radians), astropy's `aticq`. */
export function aticq(
  ra: number,
  dec: number,
  astrom: Astrom,
): [number, number] {
  const ppr = applyTransposed(astrom.bpn, fromSpherical(ra, dec));

  let d: Vector = [0, 0, 0];
  for (let j = 0; j < 2; j++) {
    const before = unit(subtract(ppr, d));
    const after = ab(before, astrom.v, astrom.em, astrom.bm1);
    d = subtract(after, before);
  }
  const pnat = unit(subtract(ppr, d));

  d = [0, 0, 0];
  for (let j = 0; j < 5; j++) {
    const before = unit(subtract(pnat, d));
    const after = ld(1, before, before, astrom.eh, astrom.em, 1e-6);
    d = subtract(after, before);
  }
  return toSpherical(unit(subtract(pnat, d)));
}

// ra and dec are separate descriptors, so each file asks twice for one epoch.
let cached: { key: string; astrom: Astrom } | undefined;

function astromAt(epoch: Epoch, key: string): Astrom {
  if (cached?.key !== key) {
    cached = { key, astrom: geocentricAstrom(epoch) };
  }
  return cached.astrom;
}

type UtcInput = Date | string | null;

function epochOf(utc: UtcInput): { epoch: Epoch; key: string } {
  if (utc === null) {
    return { epoch: J2000_EPOCH, key: "J2000 TT" };
  }
  return {
    epoch: epochFromUtc(utc),
    key: utc instanceof Date ? utc.toISOString() : utc,
  };
}

function toDegrees(lonLat: [number, number]): [number, number] {
  return [lonLat[0] / DEG, lonLat[1] / DEG];
}

/**
 * A geocentric CIRS position at `utc` (null: astropy's default obstime, J2000.0
 * TT) → ICRS, all in degrees; RA in [0, 360).
 */
export function cirsToIcrs(
  raDeg: number,
  decDeg: number,
  utc: UtcInput,
): [number, number] {
  const { epoch, key } = epochOf(utc);
  return toDegrees(aticq(raDeg * DEG, decDeg * DEG, astromAt(epoch, key)));
}

/**
 * A geocentric apparent place (true equator and equinox of date) at `utc` →
 * ICRS, degrees. The equation of the origins moves the RA from the equinox to
 * the CIO, which makes it CIRS.
 *
 * DRAGONS gets the equation of the origins from ERFA `apci13` called with the
 * UTC Julian date where a TDB one belongs; that shifts it by ~70 s of
 * precession (~0.1 mas), and it is reproduced here on purpose.
 */
export function apparentToIcrs(
  raDeg: number,
  decDeg: number,
  utc: UtcInput,
): [number, number] {
  const { epoch, key } = epochOf(utc);
  const eoDeg = eo06a(epoch.given) / DEG;
  return toDegrees(
    aticq((raDeg + eoDeg) * DEG, decDeg * DEG, astromAt(epoch, key)),
  );
}
