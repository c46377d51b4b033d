/**
 * Earth position and velocity, heliocentric and barycentric, in the BCRS
 * (ERFA `epv00`): the series in `epv00-data.ts`, evaluated with their time
 * derivatives and rotated from the ecliptic frame of the fit to the BCRS.
 */
import { BARYCENTRE_TO_SUN, SUN_TO_EARTH } from "./epv00-data.js";
import { DAYS_PER_JULIAN_YEAR, J2000, type JulianDate } from "./time.js";
import type { Vector } from "./vector.js";

export interface PositionVelocity {
  /** au */
  position: Vector;
  /** au per day */
  velocity: Vector;
}

export interface EarthState {
  heliocentric: PositionVelocity;
  barycentric: PositionVelocity;
}

// The fit's ecliptic frame → BCRS: obliquity −23°26′21.4091″ about x, then
// 0.0475″ about z, found empirically against DE405.
const AM12 = 0.000000211284;
const AM13 = -0.000000091603;
const AM21 = -0.000000230286;
const AM22 = 0.917482137087;
const AM23 = -0.397776982902;
const AM32 = 0.397776982902;
const AM33 = 0.917482137087;

function toBcrs(v: readonly number[]): Vector {
  const [x = 0, y = 0, z = 0] = v;
  return [
    x + AM12 * y + AM13 * z,
    AM21 * x + AM22 * y + AM23 * z,
    AM32 * y + AM33 * z,
  ];
}

/**
 * Adds one power-of-t group of a series to the running value and derivative
 * (per year): Σ a·tᵏ·cos(b + c·t).
 */
function accumulate(
  series: Float64Array,
  power: number,
  t: number,
  into: { value: number; rate: number },
): void {
  const tk = power === 0 ? 1 : power === 1 ? t : t * t;
  for (let j = 0; j < series.length; j += 3) {
    const a = series[j]!;
    const b = series[j + 1]!;
    const c = series[j + 2]!;
    const ct = c * t;
    const p = b + ct;
    const cp = Math.cos(p);
    if (power === 0) {
      into.value += a * cp;
      into.rate -= a * c * Math.sin(p);
    } else if (power === 1) {
      into.value += a * t * cp;
      into.rate += a * (cp - ct * Math.sin(p));
    } else {
      into.value += a * tk * cp;
      into.rate += a * t * (2 * cp - ct * Math.sin(p));
    }
  }
}

type Tables = readonly (readonly [Float64Array, Float64Array, Float64Array])[];
const typed = (
  tables: readonly (readonly [
    readonly number[],
    readonly number[],
    readonly number[],
  ])[],
): Tables =>
  tables.map(
    ([x, y, z]) =>
      [
        Float64Array.from(x),
        Float64Array.from(y),
        Float64Array.from(z),
      ] as const,
  );
const SUN_TO_EARTH_TERMS = typed(SUN_TO_EARTH);
const BARYCENTRE_TO_SUN_TERMS = typed(BARYCENTRE_TO_SUN);

/** Earth's heliocentric and barycentric position and velocity at a TDB date (TT is fine). */
export function epv00(tdb: JulianDate): EarthState {
  const t = (tdb[0] - J2000 + tdb[1]) / DAYS_PER_JULIAN_YEAR;
  const ph: number[] = [];
  const vh: number[] = [];
  const pb: number[] = [];
  const vb: number[] = [];
  for (let axis = 0; axis < 3; axis++) {
    const acc = { value: 0, rate: 0 };
    SUN_TO_EARTH_TERMS.forEach((byAxis, power) => {
      accumulate(byAxis[axis as 0 | 1 | 2], power, t, acc);
    });
    ph.push(acc.value);
    vh.push(acc.rate / DAYS_PER_JULIAN_YEAR);
    // The barycentric value continues from the heliocentric sums, as in ERFA.
    BARYCENTRE_TO_SUN_TERMS.forEach((byAxis, power) => {
      accumulate(byAxis[axis as 0 | 1 | 2], power, t, acc);
    });
    pb.push(acc.value);
    vb.push(acc.rate / DAYS_PER_JULIAN_YEAR);
  }
  return {
    heliocentric: { position: toBcrs(ph), velocity: toBcrs(vh) },
    barycentric: { position: toBcrs(pb), velocity: toBcrs(vb) },
  };
}
