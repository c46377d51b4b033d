/**
 * Observation times (docs/MAPPING-NOTES.md §3.6, §5.2, §5.3): the start of
 * the observation in UT and the local time, as ISO text without a time zone,
 * parsed the way python-dateutil reads the reference's keywords.
 */
import { DescriptorError, type GeminiFile } from "./gemini-file.js";

interface DateParts {
  year: number;
  month: number;
  day: number;
}

interface TimeParts {
  hour: number;
  minute: number;
  second: number;
  microsecond: number;
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

function isoTime(t: TimeParts): string {
  const base = `${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}`;
  return t.microsecond === 0 ? base : `${base}.${pad(t.microsecond, 6)}`;
}

function isoDateTime(d: DateParts, t: TimeParts): string {
  return `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)}T${isoTime(t)}`;
}

/** h:m:s(.fraction); the fraction is truncated to microseconds, as dateutil does. */
function parseTime(text: string, full: boolean): TimeParts | undefined {
  const match = (
    full
      ? /^(\d?\d):(\d?\d):(\d?\d)(?:\.(\d+))?$/
      : /^(\d?\d):(\d?\d):(\d?\d)(?:\.(\d+))?/
  ).exec(text);
  if (match === null) {
    return undefined;
  }
  const [hour, minute, second] = [match[1], match[2], match[3]].map(Number) as [
    number,
    number,
    number,
  ];
  if (hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  const microsecond = Number((match[4] ?? "").slice(0, 6).padEnd(6, "0"));
  return { hour, minute, second, microsecond };
}

function validDate(d: DateParts): boolean {
  const probe = new Date(Date.UTC(d.year, d.month - 1, d.day));
  return (
    probe.getUTCFullYear() === d.year &&
    probe.getUTCMonth() === d.month - 1 &&
    probe.getUTCDate() === d.day
  );
}

function fromEpoch(ms: number, microsecondRemainder = 0): string {
  const date = new Date(ms);
  return isoDateTime(
    {
      year: date.getUTCFullYear(),
      month: date.getUTCMonth() + 1,
      day: date.getUTCDate(),
    },
    {
      hour: date.getUTCHours(),
      minute: date.getUTCMinutes(),
      second: date.getUTCSeconds(),
      microsecond: date.getUTCMilliseconds() * 1000 + microsecondRemainder,
    },
  );
}

/** §5.2: the start of the observation (UT), as an ISO text without time zone, or null. */
export function utDatetime(f: GeminiFile): string | null {
  let date: DateParts | undefined;
  for (const keyword of ["DATE-OBS", "DATE-OBS", "DATE", "UTDATE"]) {
    const raw = f.phu.get(keyword) ?? "";
    if (typeof raw !== "string") {
      throw new DescriptorError(`${keyword} is not a string`);
    }
    const text = raw.trim();
    if (/^\d{4}-[01]\d-[0123]\dT[012]\d:[0-5]\d:\d\d/.test(text)) {
      const day = /^(\d{4})-(\d\d)-(\d\d)/.exec(text);
      const time = parseTime(text.slice(11), false);
      const parts =
        day === null
          ? undefined
          : {
              year: Number(day[1]),
              month: Number(day[2]),
              day: Number(day[3]),
            };
      if (parts === undefined || time === undefined || !validDate(parts)) {
        throw new DescriptorError(
          `${keyword} is not a valid date and time: ${text}`,
        );
      }
      return isoDateTime(parts, time);
    }
    const iso = /^(\d{4})-(\d\d)-(\d\d)/.exec(text);
    const old = /^(\d\d)\/(\d\d)\/(\d{2,})/.exec(text);
    const candidate = iso
      ? { year: Number(iso[1]), month: Number(iso[2]), day: Number(iso[3]) }
      : old
        ? {
            year: 1900 + Number(old[3]),
            month: Number(old[2]),
            day: Number(old[1]),
          }
        : undefined;
    if (candidate !== undefined && validDate(candidate)) {
      date = candidate;
      break;
    }
  }
  let time: TimeParts | undefined;
  for (const keyword of ["UT", "UT", "TIME-OBS", "STARTUT", "UTSTART"]) {
    const raw = f.phu.get(keyword);
    time = typeof raw === "string" ? parseTime(raw.trim(), true) : undefined;
    if (time !== undefined) {
      break;
    }
  }
  if (date !== undefined && time !== undefined) {
    return isoDateTime(date, time);
  }
  const mjd = f.phu.get("MJD-OBS") ?? 0;
  if (typeof mjd === "number" && mjd > 1) {
    // 1858-11-17T00:00 UTC plus MJD days, to the microsecond.
    const micros =
      Math.round(mjd * 86_400_000_000) + Date.UTC(1858, 10, 17) * 1000;
    return fromEpoch(Math.floor(micros / 1000), micros % 1000);
  }
  const start = f.phu.get("OBSSTART");
  if (typeof start === "string" && start.trim() !== "") {
    const day = /^(\d{4})-(\d\d)-(\d\d)[T ]/.exec(start.trim());
    const t = parseTime(start.trim().slice(11), false);
    if (day !== null && t !== undefined) {
      return isoDateTime(
        { year: Number(day[1]), month: Number(day[2]), day: Number(day[3]) },
        t,
      );
    }
  }
  if (date === undefined) {
    if (f.sci.length === 0) {
      throw new DescriptorError(
        "no date in DATE-OBS, DATE or UTDATE, no MJD-OBS above 1 or OBSSTART, and no science extensions to take a date from FRMNAME",
      );
    }
    // FRMNAME of each science extension, then the file name; the last that looks like a date wins.
    for (const candidate of [
      ...f.sci.map((h) => h.string("FRMNAME") ?? ""),
      f.fileName,
    ]) {
      const year = Number(candidate.slice(1, 5));
      const month = Number(candidate.slice(5, 7));
      const day = Number(candidate.slice(7, 9));
      if (
        year > 1999 &&
        month < 13 &&
        day < 32 &&
        validDate({ year, month, day })
      ) {
        date = { year, month, day };
      }
    }
  }
  return date === undefined
    ? null
    : isoDateTime(
        date,
        time ?? { hour: 0, minute: 0, second: 0, microsecond: 0 },
      );
}

/** §5.3: PHU LT as a time of day, or null. */
export function localTime(f: GeminiFile): string | null {
  const value = f.phu.get("LT");
  if (typeof value !== "string") {
    return null;
  }
  const time = parseTime(value.trim(), true);
  return time === undefined ? null : isoTime(time);
}
