import { Command } from "commander";

import { withClient } from "../../../lib/db/connect.js";
import { databaseUrl } from "../../../lib/endpoints.js";
import { PreconditionError } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/logger.js";
import { formatCount } from "../../../lib/progress.js";
import { redactUrl } from "../../../lib/redact.js";
import { preparePlan } from "../../../lib/upgrade/migrate.js";
import type { ColumnPlan, UpgradePlan } from "../../../lib/upgrade/plan.js";
import { commandContext } from "../../context.js";
import { table } from "../../output.js";
import {
  addUpgradeOptions,
  type UpgradeFlags,
  withUpgradeSource,
} from "./options.js";

export interface PlannedTable {
  target: string;
  source: string;
  /** Rows in the source (a dump is read through to count them). */
  rows: number;
  direct: boolean;
  columns: ColumnPlan[];
  dropped: string[];
  sequences: {
    column: string;
    sequence: string;
    sourceSequence: string | null;
    sourcePosition: string | null;
  }[];
}

export interface UpgradePlanReport {
  source: string;
  target: string;
  manifest: string | null;
  tables: PlannedTable[];
  problems: string[];
}

export function planReport(
  plan: UpgradePlan,
  target: string,
  counts: Map<string, number>,
  manifest: string | undefined,
): UpgradePlanReport {
  return {
    source: plan.source,
    target: redactUrl(target),
    manifest: manifest ?? null,
    problems: plan.problems,
    tables: plan.tables.map((t) => ({
      target: t.target,
      source: t.source,
      rows: counts.get(t.source) ?? 0,
      direct: t.direct,
      columns: t.columns,
      dropped: t.dropped,
      sequences: t.sequences.map((s) => ({
        column: s.column,
        sequence: s.sequence,
        sourceSequence: s.sourceSequence,
        sourcePosition: s.sourcePosition?.toString() ?? null,
      })),
    })),
  };
}

/** The full mapping per table, without writing anything. */
export async function upgradePlan(
  flags: UpgradeFlags,
  targetUrl: string,
  options: { s3Endpoint?: string; logger: Logger },
): Promise<UpgradePlanReport> {
  return withUpgradeSource(flags, options, async (opened, inputs) => {
    const { plan } = await withClient(targetUrl, (target) =>
      preparePlan({ source: opened.source, target, ...inputs }),
    );
    const counts = new Map<string, number>();
    for (const t of plan.tables) {
      counts.set(t.source, await opened.source.count(t.source));
    }
    return planReport(plan, targetUrl, counts, opened.manifestPath);
  });
}

function columnLine(c: ColumnPlan): string[] {
  const from =
    c.kind === "expr"
      ? `(${c.expr ?? ""})`
      : c.kind === "default"
        ? `default ${c.default ?? ""}`
        : c.kind === "null"
          ? "NULL"
          : `${c.source ?? ""} ${c.sourceType ?? ""}`;
  return [from, "->", `${c.target} ${c.targetType}`, c.kind];
}

export function describePlan(report: UpgradePlanReport): string {
  const lines = [
    `from ${report.source}${report.manifest === null ? "" : ` (verified against ${report.manifest})`}`,
    `into ${report.target}`,
  ];
  for (const t of report.tables) {
    lines.push(
      "",
      `${t.source === t.target ? t.target : `${t.source} -> ${t.target}`}: ${formatCount(t.rows)} rows, ${t.direct ? "streamed directly" : "through a staging table (casts or expressions)"}`,
    );
    lines.push(
      ...table(["source", "", "target", "how"], t.columns.map(columnLine))
        .split("\n")
        .map((l) => `  ${l}`),
    );
    for (const d of t.dropped) {
      lines.push(`  dropped: ${d} (by the mapping)`);
    }
    for (const s of t.sequences) {
      lines.push(
        `  sequence ${s.sequence} (${s.column}): ${s.sourceSequence === null ? "no source sequence; set to max(id)" : `source ${s.sourceSequence} at ${s.sourcePosition ?? "unused"}; set to the larger of that and max(id)`}`,
      );
    }
  }
  if (report.problems.length > 0) {
    lines.push(
      "",
      `${report.problems.length} problem(s) stop the migration:`,
      ...report.problems.map((p) => `  - ${p}`),
    );
  } else {
    lines.push(
      "",
      "no problems: `upgrade migrate-tables` with the same options will run this plan",
    );
  }
  return lines.join("\n");
}

export function planCommand(): Command {
  return addUpgradeOptions(
    new Command("plan").description(
      "show how each preserved table maps from the previous version (columns, casts, defaults, dropped columns, row counts, sequences) without writing anything; exit 3 if there are problems",
    ),
  ).action(async (flags: UpgradeFlags, command: Command) => {
    const { config, logger, output } = commandContext(command);
    const report = await upgradePlan(flags, databaseUrl(config, logger), {
      s3Endpoint: config.s3Endpoint,
      logger,
    });
    output.result(report, describePlan);
    if (report.problems.length > 0) {
      throw new PreconditionError(
        `${report.problems.length} problem(s) in the plan; see above`,
        { suggestion: "fix the mapping file or the table selection" },
      );
    }
  });
}
