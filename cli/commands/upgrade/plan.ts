import { Command } from "commander";

import { withClient } from "../../../lib/db/connect.js";
import { databaseUrl } from "../../../lib/endpoints.js";
import { PreconditionError } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/logger.js";
import { formatCount } from "../../../lib/progress.js";
import { redactUrl } from "../../../lib/redact.js";
import { preparePlan } from "../../../lib/upgrade/migrate.js";
import {
  type ColumnPlan,
  sequenceFitProblem,
  sequenceSetting,
  type TablePlan,
  type UpgradePlan,
} from "../../../lib/upgrade/plan.js";
import type { TableScan } from "../../../lib/upgrade/source.js";
import { commandContext } from "../../context.js";
import { table } from "../../output.js";
import {
  addUpgradeOptions,
  type UpgradeFlags,
  withUpgradeSource,
} from "./options.js";

export interface PlannedSequence {
  column: string;
  sequence: string;
  sourceSequence: string | null;
  /** The source sequence as read: nextval gives lastValue when isCalled is false. */
  sourceLastValue: string | null;
  sourceIsCalled: boolean | null;
  sourceType: string | null;
  targetType: string | null;
  /** The largest value the column will hold (null: no rows, or computed by a cast or expression). */
  maxId: string | null;
  /** What migrate-tables gives setval, and what nextval returns after it. */
  setTo: string;
  isCalled: boolean;
  nextId: string;
}

export interface PlannedTable {
  target: string;
  source: string;
  /** Rows in the source (a dump is read through to count them). */
  rows: number;
  direct: boolean;
  columns: ColumnPlan[];
  dropped: string[];
  sequences: PlannedSequence[];
}

export interface UpgradePlanReport {
  source: string;
  target: string;
  manifest: string | null;
  tables: PlannedTable[];
  problems: string[];
}

/** The source column whose values a sequence's column takes unchanged, if any. */
function copiedFrom(t: TablePlan, column: string): string | undefined {
  const c = t.columns.find((x) => x.target === column);
  return c !== undefined && (c.kind === "copy" || c.kind === "widen")
    ? c.source
    : undefined;
}

export function planReport(
  plan: UpgradePlan,
  target: string,
  scans: Map<string, TableScan>,
  manifest: string | undefined,
): UpgradePlanReport {
  const problems = [...plan.problems];
  const tables = plan.tables.map((t) => {
    const scan = scans.get(t.source);
    return {
      target: t.target,
      source: t.source,
      rows: scan?.rows ?? 0,
      direct: t.direct,
      columns: t.columns,
      dropped: t.dropped,
      sequences: t.sequences.map((s) => {
        const from = copiedFrom(t, s.column);
        const maxId = from === undefined ? null : (scan?.max.get(from) ?? null);
        const setting = sequenceSetting(s.sourcePosition, maxId);
        const problem = sequenceFitProblem(t.target, s, setting);
        if (problem !== undefined && !problems.includes(problem)) {
          problems.push(problem);
        }
        return {
          column: s.column,
          sequence: s.sequence,
          sourceSequence: s.sourceSequence,
          sourceLastValue: s.sourceLastValue?.toString() ?? null,
          sourceIsCalled: s.sourceIsCalled,
          sourceType: s.sourceType,
          targetType: s.targetType,
          maxId: maxId?.toString() ?? null,
          setTo: setting.value.toString(),
          isCalled: setting.isCalled,
          nextId: setting.next.toString(),
        };
      }),
    };
  });
  return {
    source: plan.source,
    target: redactUrl(target),
    manifest: manifest ?? null,
    problems,
    tables,
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
    // Reading the rows anyway (to count them) also gives max(id), so the plan
    // shows the very values migrate-tables will set the sequences to.
    const scans = new Map<string, TableScan>();
    for (const t of plan.tables) {
      const columns = t.sequences
        .map((s) => copiedFrom(t, s.column))
        .filter((c): c is string => c !== undefined);
      scans.set(t.source, await opened.source.scan(t.source, columns));
    }
    return planReport(plan, targetUrl, scans, opened.manifestPath);
  });
}

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
