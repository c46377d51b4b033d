/** Flag values that commander hands over as text, checked the same way everywhere. */
import { parseDuration } from "../lib/duration.js";
import { UsageError } from "../lib/errors.js";

/** A whole number from `min` to `max`, or a UsageError naming the flag. */
export function wholeNumber(
  flag: string,
  value: string,
  range: { min?: number; max: number },
): number {
  const min = range.min ?? 1;
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < min || n > range.max) {
    throw new UsageError(
      `${flag} ${value}: a whole number from ${min} to ${range.max}`,
    );
  }
  return n;
}

/** A duration such as `500ms`, `90s`, `15m` or `2h` in milliseconds, at least `minMs`. */
export function duration(flag: string, value: string, minMs = 1000): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < minMs) {
    const subSecond = minMs < 1000;
    const least = subSecond ? `${minMs}ms` : `${minMs / 1000} s`;
    const examples = subSecond ? "500ms, 90s, 15m or 2h" : "90s, 15m or 2h";
    throw new UsageError(
      `${flag} ${value}: a duration of at least ${least}, such as ${examples}`,
    );
  }
  return ms;
}
