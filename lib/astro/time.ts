/**
 * Time scales for the apparent-place conversions: UTC as astropy reads a naive
 * datetime, TAI and TT through the leap-second table, and TDB.
 *
 * Dates are two-part Julian dates, as ERFA takes them: the whole day in the
 * first part and the fraction in the second keeps the fraction at full double
 * precision (a single JD near 2.46e6 would only resolve ~40 µs).
 */
import { taiMinusUtc } from "./leap-seconds.js";

/** A Julian date split in two parts whose sum is the date. */
export type JulianDate = readonly [number, number];

export const J2000 = 2451545;
export const DAYS_PER_JULIAN_CENTURY = 36525;
export const DAYS_PER_JULIAN_YEAR = 365.25;
export const SECONDS_PER_DAY = 86400;
const MJD_ZERO = 2400000.5;
const TT_MINUS_TAI = 32.184;

/** Julian centuries from J2000.0 (in the date's own scale). */
export function centuriesSinceJ2000(jd: JulianDate): number {
  return (jd[0] - J2000 + jd[1]) / DAYS_PER_JULIAN_CENTURY;
}

export interface CalendarTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  /** Seconds including the fraction; 60.x only inside a leap second. */
  second: number;
}

const ISO =
  /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d(?:\.\d+)?))?)?(Z|[+-]00:?00)?$/;

/**
 * A UTC instant from a Date or an ISO text without a time zone (naive times are
 * UTC, as in the descriptors' ut_datetime) or with Z.
 */
export function parseUtc(value: Date | string): CalendarTime {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      throw new RangeError("invalid Date");
    }
    return {
      year: value.getUTCFullYear(),
      month: value.getUTCMonth() + 1,
      day: value.getUTCDate(),
      hour: value.getUTCHours(),
      minute: value.getUTCMinutes(),
      second: value.getUTCSeconds() + value.getUTCMilliseconds() / 1000,
    };
  }
  const m = ISO.exec(value.trim());
  if (m === null) {
    throw new RangeError(`not an ISO UTC date and time: ${value}`);
  }
  const t: CalendarTime = {
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[4] ?? 0),
    minute: Number(m[5] ?? 0),
    second: Number(m[6] ?? 0),
  };
  const check = new Date(Date.UTC(t.year, t.month - 1, t.day));
  if (
    check.getUTCMonth() !== t.month - 1 ||
    check.getUTCDate() !== t.day ||
    t.hour > 23 ||
    t.minute > 59 ||
    t.second >= 61
  ) {
    throw new RangeError(`not a valid UTC date and time: ${value}`);
  }
  return t;
}

/** Julian date at 0h of a Gregorian calendar date. */
function julianDayAtMidnight(year: number, month: number, day: number): number {
  const mjd = Date.UTC(year, month - 1, day) / 86_400_000 + 40587;
  return MJD_ZERO + mjd;
}

/** The seconds in a UTC day: 86401 on the day that ends with a leap second. */
function utcDayLength(t: CalendarTime): number {
  const next = new Date(Date.UTC(t.year, t.month - 1, t.day + 1));
  return (
    SECONDS_PER_DAY +
    taiMinusUtc(next.getUTCFullYear(), next.getUTCMonth() + 1) -
    taiMinusUtc(t.year, t.month)
  );
}

function secondsOfDay(t: CalendarTime): number {
  return 60 * (60 * t.hour + t.minute) + t.second;
}

/**
 * The UTC "quasi Julian date" as ERFA (dtf2d) and astropy form it: on a day
 * with a leap second the fraction counts 86401 seconds to the day.
 */
export function utcJulianDate(t: CalendarTime): JulianDate {
  return [
    julianDayAtMidnight(t.year, t.month, t.day),
    secondsOfDay(t) / utcDayLength(t),
  ];
}

/** TT of a UTC instant: TAI = UTC + (TAI − UTC), TT = TAI + 32.184 s. */
export function utcToTt(t: CalendarTime): JulianDate {
  return [
    julianDayAtMidnight(t.year, t.month, t.day),
    (secondsOfDay(t) + taiMinusUtc(t.year, t.month) + TT_MINUS_TAI) /
      SECONDS_PER_DAY,
  ];
}

/**
 * TDB − TT at the geocentre, in seconds: the three largest terms of the
 * Fairhead & Bretagnon (1990) series (ERFA `dtdb`, whose full series astropy
 * uses). The rest of that series stays below ~30 µs; in 30 µs the Earth's
 * velocity changes by ~2e-7 m/s, i.e. 1e-15 rad of aberration, so the
 * shortcut cannot be seen in any position.
 */
export function tdbMinusTt(tt: JulianDate): number {
  const t = (tt[0] - J2000 + tt[1]) / 365250;
  return (
    1656.674564e-6 * Math.sin(6283.075849991 * t + 6.240054195) +
    22.417471e-6 * Math.sin(5753.384884897 * t + 4.296977442) +
    13.839792e-6 * Math.sin(12566.151699983 * t + 6.19690441)
  );
}

export function ttToTdb(tt: JulianDate): JulianDate {
  return [tt[0], tt[1] + tdbMinusTt(tt) / SECONDS_PER_DAY];
}

/** One observation time in the scales the conversions need. */
export interface Epoch {
  /**
   * The date in the scale it was given in (UTC, or TT for the J2000 default):
   * what astropy's `obstime.jd1, obstime.jd2` hold.
   */
  readonly given: JulianDate;
  readonly tt: JulianDate;
  readonly tdb: JulianDate;
}

export function epochFromUtc(value: Date | string): Epoch {
  const t = parseUtc(value);
  const tt = utcToTt(t);
  return { given: utcJulianDate(t), tt, tdb: ttToTdb(tt) };
}

/** astropy's default obstime for CIRS: J2000.0 TT. */
export const J2000_EPOCH: Epoch = {
  given: [J2000, 0],
  tt: [J2000, 0],
  tdb: ttToTdb([J2000, 0]),
};
