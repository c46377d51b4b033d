/** Durations as operators write them: `300ms`, `90s`, `15m`, `2h`, `1h30m`, `1s500ms`, or plain seconds. */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

// `ms` comes before `m` so that `300ms` is read as milliseconds, not as minutes followed by a stray `s`.
const PART = String.raw`(\d+(?:\.\d+)?)(ms|s|m|h|d)`;

/** Milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    return Number(trimmed) * 1000;
  }
  if (!new RegExp(`^(?:${PART})+$`).test(trimmed)) {
    return undefined;
  }
  let ms = 0;
  for (const [, value, unit] of trimmed.matchAll(new RegExp(PART, "g"))) {
    ms += Number(value) * UNIT_MS[unit!]!;
  }
  // Decimal parts (`1.5s`) can leave float noise; a timer wants whole milliseconds.
  return Math.round(ms);
}
