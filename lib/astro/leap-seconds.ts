/**
 * TAI − UTC since UTC became an integral number of SI seconds off TAI
 * (1972-01-01), from the IERS Bulletin C announcements as tabulated by
 * SOFA/ERFA `dat`. The last leap second so far was inserted at the end of
 * 2016-12-31; nothing is scheduled after it, so later dates keep 37 s.
 *
 * Before 1972 UTC drifted against TAI at a rate that changed with each
 * announcement; the archive has no data from then, so those dates are refused
 * rather than given a plausible wrong value.
 */

/** (year, month, TAI − UTC in seconds from the first day of that month on). */
export const LEAP_SECONDS: readonly (readonly [number, number, number])[] = [
  [1972, 1, 10],
  [1972, 7, 11],
  [1973, 1, 12],
  [1974, 1, 13],
  [1975, 1, 14],
  [1976, 1, 15],
  [1977, 1, 16],
  [1978, 1, 17],
  [1979, 1, 18],
  [1980, 1, 19],
  [1981, 7, 20],
  [1982, 7, 21],
  [1983, 7, 22],
  [1985, 7, 23],
  [1988, 1, 24],
  [1990, 1, 25],
  [1991, 1, 26],
  [1992, 7, 27],
  [1993, 7, 28],
  [1994, 7, 29],
  [1996, 1, 30],
  [1997, 7, 31],
  [1999, 1, 32],
  [2006, 1, 33],
  [2009, 1, 34],
  [2012, 7, 35],
  [2015, 7, 36],
  [2017, 1, 37],
];

/** TAI − UTC in seconds on a UTC calendar date (the day is irrelevant: steps fall on month starts). */
export function taiMinusUtc(year: number, month: number): number {
  const key = year * 12 + (month - 1);
  let seconds: number | undefined;
  for (const [y, m, s] of LEAP_SECONDS) {
    if (y * 12 + (m - 1) > key) {
      break;
    }
    seconds = s;
  }
  if (seconds === undefined) {
    throw new RangeError(
      `UTC ${year}-${String(month).padStart(2, "0")} is before 1972, where TAI − UTC is not a whole number of seconds`,
    );
  }
  return seconds;
}
