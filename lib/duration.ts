/** Durations as operators write them: `90s`, `15m`, `2h`, `1h30m`, or plain seconds. */

const UNIT_SECONDS: Record<string, number> = {
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
};

/** Milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    return Number(trimmed) * 1000;
  }
  if (!/^(\d+(\.\d+)?[smhd])+$/.test(trimmed)) {
    return undefined;
  }
  let seconds = 0;
  for (const [, value, , unit] of trimmed.matchAll(/(\d+(\.\d+)?)([smhd])/g)) {
    seconds += Number(value) * UNIT_SECONDS[unit!]!;
  }
  return seconds * 1000;
}
