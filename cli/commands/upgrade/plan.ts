import { Command } from "commander";

import { databaseUrl } from "../../../lib/endpoints.js";
import { PreconditionError } from "../../../lib/errors.js";
import { formatCount } from "../../../lib/progress.js";
import { type ColumnPlan } from "../../../lib/upgrade/plan.js";
import {
  type PlannedSequence,
  upgradePlan,
  type UpgradePlanReport,
  type UpgradeSelection,
} from "../../../lib/upgrade/steps.js";
import { commandContext } from "../../context.js";
import { table } from "../../output.js";
import { addUpgradeOptions } from "./options.js";

function sequenceLine(s: PlannedSequence): string {
  const type =
    s.sourceType !== null &&
    s.targetType !== null &&
    s.sourceType !== s.targetType
      ? `${s.sourceType} -> ${s.targetType}`
      : (s.targetType ?? "");
  const source =
    s.sourceSequence === null
      ? "no source sequence"
      : s.sourceIsCalled === true
        ? `source ${s.sourceSequence} at ${s.sourceLastValue ?? "?"}`
        : `source ${s.sourceSequence} not called (is_called false), its next value ${s.sourceLastValue ?? "?"}`;
  const set = s.isCalled
    ? `set to ${s.setTo}`
    : `set to ${s.setTo}, not called`;
  return `  sequence ${s.sequence} (${s.column}${type === "" ? "" : `, ${type}`}): ${set}, next id ${s.nextId} (${source}; max(${s.column}) ${s.maxId ?? "none"})`;
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
      lines.push(sequenceLine(s));
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
  ).action(async (flags: UpgradeSelection, command: Command) => {
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
