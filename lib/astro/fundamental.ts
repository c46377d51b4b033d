/**
 * Fundamental arguments of the nutation theory, IERS Conventions (2003)
 * (ERFA `fa*03`). All take t in Julian centuries of TDB from J2000.0 (TT is
 * close enough) and return radians.
 *
 * The Delaunay arguments are polynomials in arcseconds reduced modulo one turn
 * before the conversion to radians, which keeps their precision; the planetary
 * longitudes are linear in radians.
 */

/** Arcseconds to radians (the same double as ERFA's DAS2R). */
export const ARCSEC = Math.PI / (180 * 3600);
export const TWO_PI = 2 * Math.PI;
const TURN_ARCSEC = 1296000;

const delaunay = (
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  c4: number,
  t: number,
): number =>
  ((c0 + t * (c1 + t * (c2 + t * (c3 + t * c4)))) % TURN_ARCSEC) * ARCSEC;

/** l: mean anomaly of the Moon. */
export const fal03 = (t: number): number =>
  delaunay(485868.249036, 1717915923.2178, 31.8792, 0.051635, -0.0002447, t);

/** l′: mean anomaly of the Sun. */
export const falp03 = (t: number): number =>
  delaunay(1287104.793048, 129596581.0481, -0.5532, 0.000136, -0.00001149, t);

/** F = L − Ω: mean argument of latitude of the Moon. */
export const faf03 = (t: number): number =>
  delaunay(335779.526232, 1739527262.8478, -12.7512, -0.001037, 0.00000417, t);

/** D: mean elongation of the Moon from the Sun. */
export const fad03 = (t: number): number =>
  delaunay(1072260.703692, 1602961601.209, -6.3706, 0.006593, -0.00003169, t);

/** Ω: mean longitude of the Moon's ascending node. */
export const faom03 = (t: number): number =>
  delaunay(450160.398036, -6962890.5431, 7.4722, 0.007702, -0.00005939, t);

/** Mean longitudes of the planets, Mercury to Uranus. */
export const fame03 = (t: number): number =>
  (4.402608842 + 2608.7903141574 * t) % TWO_PI;
export const fave03 = (t: number): number =>
  (3.176146697 + 1021.3285546211 * t) % TWO_PI;
export const fae03 = (t: number): number =>
  (1.753470314 + 628.3075849991 * t) % TWO_PI;
export const fama03 = (t: number): number =>
  (6.203480913 + 334.06124267 * t) % TWO_PI;
export const faju03 = (t: number): number =>
  (0.599546497 + 52.9690962641 * t) % TWO_PI;
export const fasa03 = (t: number): number =>
  (0.874016757 + 21.329910496 * t) % TWO_PI;
export const faur03 = (t: number): number =>
  (5.481293872 + 7.4781598567 * t) % TWO_PI;

/** pA: general accumulated precession in longitude. */
export const fapa03 = (t: number): number =>
  (0.02438175 + 0.00000538691 * t) * t;
