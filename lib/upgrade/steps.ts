/**
 * The upgrade's steps as library functions, for the CLI and for a
 * coordinator alike: open (and verify) the previous version, plan, and
 * carry the preserved tables over. The CLI only parses flags into an
 * `UpgradeSelection` and prints what these return.
 */
import { selectTables } from "../archive-tables.js";
import { withClient } from "../db/connect.js";
import type { Logger } from "../logger.js";
import { redactUrl } from "../redact.js";
import { EMPTY_MAPPING, loadMapping, type UpgradeMapping } from "./mapping.js";
import {
  type MigrateReport,
  migrateTables,
  preparePlan,
  type TableProgress,
} from "./migrate.js";
import { type OpenedSource, openSource } from "./open-source.js";
import {
  type ColumnPlan,
  sequenceFitProblem,
  sequenceSetting,
  type TablePlan,
  type UpgradePlan,
} from "./plan.js";
import type { TableScan } from "./source.js";

/** What to carry over, and from where. */
export interface UpgradeSelection {
  from: string;
  preset: string[];
  table: string[];
  excludeTable: string[];
  mapping?: string;
  manifest?: string;
}

export interface UpgradeInputs {
  tables: string[];
  mapping: UpgradeMapping;
}

export function upgradeInputs(flags: UpgradeSelection): UpgradeInputs {
  return {
    tables: selectTables({
      presets: flags.preset.length > 0 ? flags.preset : ["archive"],
      add: flags.table,
      exclude: flags.excludeTable,
    }),
    mapping:
      flags.mapping === undefined ? EMPTY_MAPPING : loadMapping(flags.mapping),
  };
}

/** Validates the selection and mapping, opens (and verifies) the source, runs `fn`, cleans up. */
export async function withUpgradeSource<T>(
  flags: UpgradeSelection,
  options: { s3Endpoint?: string; logger: Logger },
  fn: (opened: OpenedSource, inputs: UpgradeInputs) => Promise<T>,
): Promise<T> {
  const inputs = upgradeInputs(flags);
  const opened = await openSource(flags.from, {
    manifest: flags.manifest,
    s3Endpoint: options.s3Endpoint,
    logger: options.logger,
  });
  try {
    return await fn(opened, inputs);
  } finally {
    await opened.cleanup();
  }
}

export interface MigrateTablesResult extends MigrateReport {
  target: string;
  manifest: string | null;
}

export interface MigrateTablesOptions {
  truncateTarget?: boolean;
  s3Endpoint?: string;
  logger: Logger;
  onProgress?: (p: TableProgress) => void;
  /** See MigrateOptions.beforeTransaction. */
  beforeTransaction?: () => Promise<void>;
}

/** Plans, then copies and verifies every selected table in one transaction. */
export async function runMigrateTables(
  flags: UpgradeSelection,
  targetUrl: string,
  options: MigrateTablesOptions,
): Promise<MigrateTablesResult> {
  return withUpgradeSource(flags, options, async (opened, inputs) => {
    const report = await migrateTables({
      source: opened.source,
      targetUrl,
      ...inputs,
      truncateTarget: options.truncateTarget,
      onProgress: options.onProgress,
      beforeTransaction: options.beforeTransaction,
    });
    return {
      ...report,
      target: redactUrl(targetUrl),
      manifest: opened.manifestPath ?? null,
    };
  });
}

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
  flags: UpgradeSelection,
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
