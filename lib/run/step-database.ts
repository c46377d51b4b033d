/** The init and migrate steps: `db init` and `upgrade migrate-tables`, as the run takes them. */
import { join } from "node:path";

import { initDatabase } from "../db/init.js";
import { PreconditionError } from "../errors.js";
import { packageRoot } from "../paths.js";
import { runMigrateTables } from "../upgrade/steps.js";
import type { RunSettings } from "./settings.js";
import type { StepContext, StepResult } from "./step-context.js";

/**
 * `db init`. The run's own tables come from it, so the pipeline calls this
 * before the run exists and records it as the run's first step.
 */
export async function initStep(
  databaseUrl: string,
  ctx: Pick<StepContext, "logger">,
): Promise<StepResult & { status: "done" }> {
  const init = await initDatabase(databaseUrl, { logger: ctx.logger });
  return {
    status: "done",
    figures: {
      migrationsApplied: init.applied.length,
      schemaVersion: init.version,
      seconds: init.seconds,
    },
    detail: init,
  };
}

/** The migrate step's mapping file by default: the v2 → v3 one shipped here. */
export function defaultMapping(): string {
  return join(packageRoot(), "mappings", "fitsstorage-v2-to-v3.json");
}

export function upgradeSelection(settings: RunSettings) {
  return {
    from: settings.from!,
    preset: settings.preset,
    table: settings.table,
    excludeTable: settings.excludeTable,
    mapping: settings.mapping,
    manifest: settings.manifest,
  };
}

/**
 * `upgrade migrate-tables --from …`, one transaction. A killed attempt that
 * had committed is found on resume: the target is no longer empty, and the
 * checkpoint says this run started the copy.
 */
export async function migrateStep(ctx: StepContext): Promise<StepResult> {
  const { settings } = ctx;
  if (settings.from === undefined) {
    return { status: "skipped", reason: "no --from: nothing to carry over" };
  }
  await ctx.commit({ copyStarted: true }, []);
  ctx.fault("migrate:started");
  try {
    const report = await runMigrateTables(
      upgradeSelection(settings),
      ctx.databaseUrl,
      {
        logger: ctx.logger,
        truncateTarget: settings.truncateTarget,
        s3Endpoint: settings.s3Endpoint,
        onProgress: (p) =>
          ctx.progress({
            message: `migrate: ${p.table} (${p.phase}) ${p.rows} rows`,
            fields: { ...p },
          }),
      },
    );
    return {
      status: "done",
      figures: {
        tables: report.tables.length,
        rows: report.tables.reduce((n, t) => n + t.targetRows, 0),
        seconds: report.seconds,
      },
      detail: report,
    };
  } catch (error) {
    if (
      ctx.resumed &&
      ctx.checkpoint.copyStarted === true &&
      error instanceof PreconditionError &&
      /target tables are not empty/.test(error.message)
    ) {
      ctx.logger.info(
        "the migrate step's copy had committed before the run was stopped",
        { run: ctx.runId },
      );
      return { status: "done", figures: { committedBeforeResume: 1 } };
    }
    throw error;
  }
}
