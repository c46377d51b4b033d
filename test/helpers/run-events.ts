/**
 * Run events for the coordinator's tests and benchmark: a plausible run's
 * events by number, and fast-check arbitraries for any sequence of them.
 */
import fc from "fast-check";

import { RUN_STEPS, type RunEvent } from "../../lib/run/types.js";

const AT = "2026-12-07T06:00:00.000Z";

/** The i-th event of a long, plausible run (progress mostly, some steps and instances). */
export function sampleEvent(i: number, runId = "run"): RunEvent {
  if (i === 0) {
    return { type: "run-started", runId, at: AT, provider: "local" };
  }
  const step = RUN_STEPS[i % RUN_STEPS.length]!;
  switch (i % 10) {
    case 1:
      return { type: "step-started", step, at: AT };
    case 2:
      return { type: "step-finished", step, at: AT, figures: { files: i } };
    case 3:
      return {
        type: "instance-joined",
        at: AT,
        instanceId: `i-${i % 97}`,
        instanceType: "c7g.large",
        hourlyPrice: 0.03,
      };
    case 4:
      return { type: "instance-left", at: AT, instanceId: `i-${(i * 7) % 97}` };
    case 5:
      return { type: "spend", at: AT, dollars: i / 100 };
    default:
      return {
        type: "progress",
        at: AT,
        done: i,
        failed: i % 13,
        queued: 1_000_000 - i,
        active: i % 8,
      };
  }
}

const at = fc
  .integer({ min: 0, max: 10_000_000 })
  .map((s) => new Date(Date.UTC(2026, 11, 7) + s * 1000).toISOString());
const step = fc.constantFrom(...RUN_STEPS);
const count = fc.nat({ max: 1_000_000 });
const instanceId = fc.constantFrom("i-a", "i-b", "i-c", "local-1");
const text = fc.string({ maxLength: 20 });

export const runEventArb: fc.Arbitrary<RunEvent> = fc.oneof(
  fc.record({
    type: fc.constant("run-started" as const),
    runId: fc.constant("prop"),
    at,
    provider: fc.constantFrom("local", "ec2"),
  }),
  fc.record({ type: fc.constant("step-started" as const), step, at }),
  fc.record({
    type: fc.constant("step-finished" as const),
    step,
    at,
    figures: fc.dictionary(fc.constantFrom("files", "rows", "bytes"), count),
  }),
  fc.record({
    type: fc.constant("step-skipped" as const),
    step,
    at,
    reason: text,
  }),
  fc.record({
    type: fc.constant("step-failed" as const),
    step,
    at,
    reason: text,
  }),
  fc.record({
    type: fc.constant("progress" as const),
    at,
    done: count,
    failed: count,
    queued: count,
    active: count,
  }),
  fc.record({
    type: fc.constant("instance-joined" as const),
    at,
    instanceId,
    instanceType: fc.constantFrom("c7g.large", "m7i.xlarge", "local"),
    // + 0: JSON has no -0, so a stored snapshot would not hold one.
    hourlyPrice: fc.double({ min: 0, max: 5, noNaN: true }).map((x) => x + 0),
  }),
  fc.record({ type: fc.constant("instance-left" as const), at, instanceId }),
  fc.record({
    type: fc.constant("spend" as const),
    at,
    dollars: fc.double({ min: 0, max: 1e6, noNaN: true }).map((x) => x + 0),
  }),
  fc.record({
    type: fc.constant("run-finished" as const),
    at,
    outcome: fc.constantFrom(
      "succeeded" as const,
      "failed" as const,
      "aborted" as const,
    ),
  }),
);
