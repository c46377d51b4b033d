/**
 * The run's state as a pure fold of its events. A standby rebuilds the same
 * state from a snapshot plus the later events as from all events, because
 * `evolve` only reads the state and the event, and it skips any event whose
 * sequence number the state has already folded in: replaying from the
 * snapshot's own number (an off-by-one at the boundary) changes nothing.
 */
import {
  RUN_STEPS,
  type RunEvent,
  type RunState,
  type RunStep,
  type StepState,
} from "./types.js";

/** An event as the log keeps it: its number, the lease epoch that wrote it. */
export interface StoredEvent {
  seq: number;
  epoch: number;
  writtenAt: Date;
  event: RunEvent;
}

/** What `evolve` needs of an event: its number and content. */
export type SequencedEvent = Pick<StoredEvent, "seq" | "event">;

export function initialState(runId: string): RunState {
  const steps = Object.fromEntries(
    RUN_STEPS.map((step) => [step, { status: "pending" }]),
  ) as Record<RunStep, StepState>;
  return {
    runId,
    seq: 0,
    status: "new",
    steps,
    progress: { done: 0, failed: 0, queued: 0, active: 0 },
    instances: {},
    spendDollars: 0,
  };
}

function withStep(
  state: RunState,
  step: RunStep,
  value: StepState,
): Record<RunStep, StepState> {
  return { ...state.steps, [step]: value };
}

/** The state after one more event; `state` itself is never changed. */
export function evolve(state: RunState, stored: SequencedEvent): RunState {
  if (stored.seq <= state.seq) {
    return state;
  }
  const next: RunState = { ...state, seq: stored.seq };
  const e = stored.event;
  switch (e.type) {
    case "run-started":
      next.status = "running";
      next.provider = e.provider;
      next.startedAt = e.at;
      break;
    case "step-started":
      next.steps = withStep(state, e.step, {
        status: "running",
        startedAt: e.at,
      });
      break;
    case "step-finished":
      next.steps = withStep(state, e.step, {
        ...state.steps[e.step],
        status: "done",
        endedAt: e.at,
        figures: { ...e.figures },
      });
      break;
    case "step-skipped":
      next.steps = withStep(state, e.step, {
        ...state.steps[e.step],
        status: "skipped",
        endedAt: e.at,
        reason: e.reason,
      });
      break;
    case "step-failed":
      next.steps = withStep(state, e.step, {
        ...state.steps[e.step],
        status: "failed",
        endedAt: e.at,
        reason: e.reason,
      });
      break;
    case "progress":
      // Counters are absolute (the ledger's counts when measured), so a
      // replayed or re-sent progress event cannot inflate them.
      next.progress = {
        done: e.done,
        failed: e.failed,
        queued: e.queued,
        active: e.active,
      };
      break;
    case "instance-joined":
      next.instances = {
        ...state.instances,
        [e.instanceId]: {
          instanceType: e.instanceType,
          hourlyPrice: e.hourlyPrice,
          joinedAt: e.at,
        },
      };
      break;
    case "instance-left": {
      const known = state.instances[e.instanceId];
      if (known !== undefined) {
        next.instances = {
          ...state.instances,
          [e.instanceId]: { ...known, leftAt: e.at },
        };
      }
      break;
    }
    case "spend":
      // Spend as last measured, like the fleet guard records it.
      next.spendDollars = e.dollars;
      break;
    case "run-finished":
      next.status = e.outcome;
      next.endedAt = e.at;
      break;
    default:
      // An event kind from a newer build: its number is taken, its content
      // is not ours to interpret.
      break;
  }
  return next;
}

/** `evolve` over many events, in the order given. */
export function fold(
  state: RunState,
  events: Iterable<SequencedEvent>,
): RunState {
  let s = state;
  for (const e of events) {
    s = evolve(s, e);
  }
  return s;
}
