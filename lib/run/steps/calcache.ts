/**
 * The calcache step's engine, in one place.
 *
 * INTEGRATION POINT (issue 21, `rebuildCalcache` in lib/cal/rebuild/): the
 * body of `buildRunCalcache` below runs the per-frame evaluator over every
 * present frame, one transaction a frame: correct, and the slow path. When
 * the set-based rebuild lands, replace the body with a call to
 * `rebuildCalcache` and map its report onto `RunCalcacheReport`; the step
 * (`calcacheStep`) and the verify step read only that report.
 */
import { writeFrameAssociations } from "../../cal/calcache.js";
import { evaluateFrame } from "../../cal/evaluate.js";
import { withTransaction } from "../../db/connect.js";
import { connect } from "../../db/connect.js";
import type { StepContext, StepResult } from "./context.js";

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
  /** Every few hundred frames: how far it has got. */
  onProgress?: (done: number, total: number) => void;
}

/** The calibration cache of every present frame. */
export async function buildRunCalcache(
  databaseUrl: string,
  options: RunCalcacheOptions = {},
): Promise<RunCalcacheReport> {
  const started = Date.now();
  const client = await connect(databaseUrl, {
    applicationName: "fitsfleet rebuild run (calcache)",
  });
  try {
    const { rows: frames } = await client.query<{ id: number }>(
      `SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id
        WHERE d.present ORDER BY h.id`,
    );
    const report: RunCalcacheReport = {
      frames: frames.length,
      associated: 0,
      skipped: 0,
      failed: 0,
      rows: 0,
      seconds: 0,
    };
    let done = 0;
    for (const { id } of frames) {
      await withTransaction(client, async (c) => {
        const evaluation = await evaluateFrame(c, id);
        report.rows += await writeFrameAssociations(c, evaluation);
        if (evaluation.outcome === "associated") {
          report.associated++;
        } else if (evaluation.outcome === "failed") {
          report.failed++;
        } else {
          report.skipped++;
        }
      });
      done++;
      if (done % 200 === 0 || done === frames.length) {
        options.onProgress?.(done, frames.length);
      }
    }
    report.seconds = (Date.now() - started) / 1000;
    return report;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Writing a frame's associations replaces its rows, so a step cut off
 * halfway is simply run again from the start.
 */
export async function calcacheStep(ctx: StepContext): Promise<StepResult> {
  if (!ctx.settings.calcache) {
    return { status: "skipped", reason: "--no-calcache" };
  }
  const report = await buildRunCalcache(ctx.databaseUrl, {
    onProgress: (done, total) => {
      ctx.progress({
        message: `calcache: ${done} of ${total} frames`,
        fields: { done, total },
      });
      ctx.fault("calcache:working");
    },
  });
  return {
    status: "done",
    figures: { ...report },
  };
}
