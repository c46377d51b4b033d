import { Command } from "commander";

import { databaseUrl } from "../../../lib/endpoints.js";
import {
  formatCount,
  formatDuration,
  formatMegabytes,
  RateMeter,
} from "../../../lib/progress.js";
import { type TableProgress } from "../../../lib/upgrade/migrate.js";
import {
  type MigrateTablesResult,
  runMigrateTables,
  type UpgradeSelection,
} from "../../../lib/upgrade/steps.js";
import { commandContext } from "../../context.js";
import { type Output, table } from "../../output.js";
import { addUpgradeOptions } from "./options.js";

/** Per-table lines every two seconds and at each phase change: rows, MB/s, ETA. */
export function progressPrinter(output: Output): (p: TableProgress) => void {
  const meters = new Map<string, { rows: RateMeter; bytes: RateMeter }>();
  const last = new Map<string, { at: number; phase: string }>();
  return (p) => {
    let meter = meters.get(p.table);
    if (meter === undefined) {
      meter = { rows: new RateMeter(), bytes: new RateMeter() };
      meters.set(p.table, meter);
    }
    const now = Date.now();
    if (p.phase === "copy") {
      meter.rows.sample(p.rows, now);
      meter.bytes.sample(p.bytes, now);
    }
    const previous = last.get(p.table);
    if (
      previous !== undefined &&
      previous.phase === p.phase &&
      now - previous.at < 2000
    ) {
      return;
    }
    last.set(p.table, { at: now, phase: p.phase });
    const rate = meter.rows.rate();
    const eta = meter.rows.eta(p.expectedRows);
    const mbps = meter.bytes.rate() / 1_000_000;
    const of =
      p.expectedRows === null ? "" : ` of ~${formatCount(p.expectedRows)}`;
    output.progress(
      {
        table: p.table,
        phase: p.phase,
        rows: p.rows,
        expectedRows: p.expectedRows,
        bytes: p.bytes,
        rowsPerSecond: Math.round(rate),
        megabytesPerSecond: Number(mbps.toFixed(2)),
        etaSeconds: eta === null ? null : Math.round(eta),
      },
      p.phase === "copy"
        ? `${p.table}: ${formatCount(p.rows)}${of} rows, ${formatMegabytes(p.bytes)}, ${mbps.toFixed(1)} MB/s, ${formatCount(rate)} rows/s, ETA ${formatDuration(eta)}`
        : `${p.table}: ${p.phase === "done" ? "verified" : p.phase === "verify" ? "verifying" : p.phase}`,
    );
  };
}

export function describeMigration(r: MigrateTablesResult): string {
  const rows = r.tables.map((t) => [
    t.table,
    t.source === t.table ? "" : t.source,
    formatCount(t.rows),
    t.sourceFingerprint === t.targetFingerprint ? "match" : "DIFFERS",
    t.sequences
      .map((s) => `${s.sequence.replace(/^public\./, "")}=${s.setTo}`)
      .join(" "),
    String(t.indexesRebuilt),
    t.ok ? "ok" : "FAILED",
  ]);
  return [
    `from ${r.source}${r.manifest === null ? "" : ` (verified against ${r.manifest})`}`,
    `into ${r.target}`,
    table(
      [
        "table",
        "from",
        "rows",
        "fingerprint",
        "sequences",
        "indexes rebuilt",
        "check",
      ],
      rows,
    ),
    `${r.tables.length} table(s), ${formatCount(r.tables.reduce((n, t) => n + t.rows, 0))} rows in ${r.seconds.toFixed(1)} s; committed`,
    `time: plan ${r.phases.plan.toFixed(1)} s, copy ${r.phases.copy.toFixed(1)} s, indexes ${r.phases.indexes.toFixed(1)} s, foreign keys ${r.phases.foreignKeys.toFixed(1)} s, verification ${r.phases.verify.toFixed(1)} s`,
  ].join("\n");
}

export function migrateTablesCommand(): Command {
  return addUpgradeOptions(
    new Command("migrate-tables").description(
      "copy the preserved tables and their sequences from the previous version into the fresh schema made by `db init`, in one transaction, and verify them (counts, fingerprints, sequences); on any failure nothing is written",
    ),
  )
    .option(
      "--truncate-target",
      "replace rows already in the target tables (in the same transaction) instead of refusing",
    )
    .action(
      async (
        flags: UpgradeSelection & { truncateTarget?: boolean },
        command: Command,
      ) => {
        const { config, logger, output } = commandContext(command);
        const result = await runMigrateTables(
          flags,
          databaseUrl(config, logger),
          {
            truncateTarget: flags.truncateTarget,
            s3Endpoint: config.s3Endpoint,
            logger,
            onProgress: progressPrinter(output),
          },
        );
        output.result(result, describeMigration);
      },
    );
}
