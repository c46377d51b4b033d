/** A worker's closing line: what it did, by outcome, and how long it took. */
export function describeWorkerRun(
  s: {
    name: string;
    batches: number;
    outcomes: Record<string, number>;
    seconds: number;
  },
  done: string,
): string {
  const outcomes = Object.entries(s.outcomes)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ");
  return `worker ${s.name}: ${done} in ${s.batches} batch(es) — ${outcomes} — ${s.seconds.toFixed(1)} s`;
}
