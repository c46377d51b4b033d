/**
 * Fundamental astronomy for the archive's RA/Dec descriptors: a TypeScript port
 * of the SOFA/ERFA routines that astropy uses to take geocentric apparent and
 * CIRS places to ICRS, and that nothing lighter reproduces to the
 * milliarcsecond.
 */
export { apparentToIcrs, cirsToIcrs, geocentricAstrom } from "./astrometry.js";
export { epv00 } from "./ephemeris.js";
export { taiMinusUtc } from "./leap-seconds.js";
export { nut00a, nut06a } from "./nutation.js";
export { eo06a, era00, gst06a, pnm06a, s06 } from "./precession.js";
export { epochFromUtc, type JulianDate } from "./time.js";
