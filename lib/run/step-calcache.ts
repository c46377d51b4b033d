/**
 * The calcache step: the set-based rebuild of the whole calibration cache
 * (lib/cal/rebuild), swapped in at once. A step cut off halfway left the old
 * cache in place (the swap is one transaction), so it is simply run again.
 */
import {
  rebuildCalcache,
  type RebuildCalcacheReport,
} from "../cal/rebuild/index.js";
import type { StepContext, StepResult } from "./step-context.js";

export interface RunCalcacheReport {
  /** Frames looked at. */
  frames: number;
  /** Frames whose associations were written. */
  associated: number;
  /** Frames the reference would leave alone, or whose instrument has no rules here. */
  skipped: number;
  /** Frames whose evaluation raised, as the reference's would. */
  failed: number;
  /** calcache rows written. */
  rows: number;
  seconds: number;
}

export interface RunCalcacheOptions {
  /** Now and then: the phase (wait, search, rank, index, replace) and how far it has got. */
  onProgress?: (phase: string, done: number, total: number) => void;
}

/** The step's figures from the rebuild's report. */
export function runCalcacheReport(r: RebuildCalcacheReport): RunCalcacheReport {
  return {
    frames: r.framesTotal,
    associated: r.outcomes.associated,
    skipped: r.outcomes.skipped + r.outcomes.unsupported,
    failed: r.outcomes.failed,
    rows: r.rowsWritten,
    seconds: r.seconds,
  };
}

/** The calibration cache of every covered frame, rebuilt and swapped in. */
export async function buildRunCalcache(
  databaseUrl: string,
  options: RunCalcacheOptions = {},
): Promise<{ report: RunCalcacheReport; rebuild: RebuildCalcacheReport }> {
  const rebuild = await rebuildCalcache({
    databaseUrl,
    onProgress: (p) =>
      options.onProgress?.(p.phase, p.framesDone, p.framesTotal),
  });
  return { report: runCalcacheReport(rebuild), rebuild };
}

export async function calcacheStep(ctx: StepContext): Promise<StepResult> {
  if (!ctx.settings.calcache) {
    return { status: "skipped", reason: "--no-calcache" };
  }
  const { report, rebuild } = await buildRunCalcache(ctx.databaseUrl, {
    onProgress: (phase, done, total) => {
      ctx.progress({
        message:
          phase === "wait"
            ? "calcache: waiting for calcache workers' current batches"
            : `calcache: ${phase}, ${done} of ${total} frames`,
        fields: { phase, done, total },
      });
      ctx.fault("calcache:working");
    },
  });
  return { status: "done", figures: { ...report }, detail: rebuild };
}
