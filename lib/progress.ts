/**
 * Rates and ETAs for long operations, from a sliding window of samples so a
 * slow start or a pause does not distort the estimate for minutes.
 */

export class RateMeter {
  private samples: { at: number; units: number }[] = [];

  constructor(private readonly windowMs = 15_000) {}

  /** Records the running total `units` at time `at`. */
  sample(units: number, at = Date.now()): void {
    this.samples.push({ at, units });
    while (
      this.samples.length > 2 &&
      at - this.samples[0]!.at > this.windowMs
    ) {
      this.samples.shift();
    }
  }

  /** Units per second over the window, or 0 before two samples. */
  rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last.at <= first.at) {
      return 0;
    }
    return ((last.units - first.units) * 1000) / (last.at - first.at);
  }

  /** Seconds until `total`, or null when unknown. */
  eta(total: number | null): number | null {
    const last = this.samples[this.samples.length - 1];
    const rate = this.rate();
    if (total === null || last === undefined || rate <= 0) {
      return null;
    }
    return Math.max(0, (total - last.units) / rate);
  }
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) {
    return "?";
  }
  const s = Math.round(seconds);
  if (s < 60) {
    return `${s}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  }
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** A rate: one decimal, or two significant digits below 1, where one decimal would read as a stop (0.0). */
export function formatRate(perSecond: number): string {
  return perSecond > 0 && perSecond < 1
    ? perSecond.toPrecision(2)
    : perSecond.toFixed(1);
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

export function formatMegabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}
