import { Command } from "commander";

import { UsageError } from "../../lib/errors.js";
import { formatCount, formatDuration, formatRate } from "../../lib/progress.js";
import type { RollcallReport } from "../../lib/summit/rollcall.js";
import { runContext } from "../run.js";
import { storageLocation } from "./rebuild/common.js";

interface RollcallFlags {
  filePre?: string;
  limit?: string;
  checkmd5?: boolean;
  dryRun?: boolean;
  concurrency?: string;
  batchSize?: string;
  pauseMs?: string;
  restart?: boolean;
}

function wholeNumber(flag: string, value: string | undefined, min = 1) {
  if (value === undefined) {
    return undefined;
  }
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `${flag} ${JSON.stringify(value)}: must be a whole number of at least ${min}`,
    );
  }
  return n;
}

export function describeRollcall(r: RollcallReport): string {
  const lines = [
    `rollcall of ${r.storage}${r.filePre === null ? "" : `, names starting ${r.filePre}`}${r.limit === null ? "" : `, at most ${formatCount(r.limit)}`}${r.resumed ? " (resumed an interrupted run)" : ""}`,
    `${r.dryRun ? "dry run, nothing written: " : ""}${formatCount(r.checked)} present diskfiles checked: ${formatCount(r.found)} found, ${formatCount(r.missing)} missing${r.dryRun ? " (would be marked not present)" : " and marked not present"}`,
  ];
  if (r.checkMd5) {
    lines.push(`${formatCount(r.mismatched)} md5 mismatches`);
  }
  if (r.errors > 0) {
    lines.push(`${formatCount(r.errors)} could not be checked (left present)`);
  }
  for (const f of r.findings) {
    const where = f.path === "" ? f.filename : `${f.path}/${f.filename}`;
    lines.push(
      f.kind === "mismatch"
        ? `  md5 mismatch: diskfile ${f.diskfileId} ${where}: database ${f.expectedMd5 ?? "(none)"}, stored ${f.foundMd5} (from ${f.md5From === "metadata" ? "the object's md5 metadata" : "reading it"})`
        : `  not checked: diskfile ${f.diskfileId} ${where}: ${f.error}`,
    );
  }
  const shown = r.findings.length;
  if (shown < r.mismatched + r.errors) {
    lines.push(
      `  … and ${formatCount(r.mismatched + r.errors - shown)} more (fitsfleet.rollcall_findings)`,
    );
  }
  lines.push(
    `${formatCount(r.checkedNow)} checked in this run, ${r.seconds.toFixed(1)} s${r.seconds > 0 ? ` (${formatRate(r.checkedNow / r.seconds)}/s)` : ""}`,
  );
  return lines.join("\n");
}

export function rollcallCommand(): Command {
  return new Command("rollcall")
    .description(
      "check that every present diskfile is still in the storage (--storage), by its full path or key; mark the missing ones not present; resumes after a kill",
    )
    .option("--file-pre <prefix>", "only files whose name starts with this")
    .option("--limit <n>", "check at most N diskfiles")
    .option(
      "--checkmd5",
      "also compare each file's md5 with diskfile.file_md5 (S3: the object's md5 metadata, else its bytes); mismatches are reported, not changed",
    )
    .option("--dry-run", "check and report, but mark nothing")
    .option(
      "--concurrency <n>",
      "checks in flight (default 32 on disk, 64 on S3)",
    )
    .option("--batch-size <n>", "diskfiles per committed batch", "2000")
    .option(
      "--pause-ms <ms>",
      "pause after each batch, to leave the disks and the database to others",
    )
    .option(
      "--restart",
      "start over instead of resuming an interrupted run of the same selection",
    )
    .action(async (flags: RollcallFlags, command: Command) => {
      const limit = wholeNumber("--limit", flags.limit);
      const concurrency = wholeNumber("--concurrency", flags.concurrency);
      const batchSize = wholeNumber("--batch-size", flags.batchSize);
      const pauseMs = wholeNumber("--pause-ms", flags.pauseMs, 0);
      if (flags.filePre !== undefined && flags.filePre === "") {
        throw new UsageError("--file-pre: give a non-empty prefix");
      }
      const { config, output, databaseUrl } = await runContext(command);
      const location = storageLocation(config);
      const [{ rollcall }, { openStorage }] = await Promise.all([
        import("../../lib/summit/rollcall.js"),
        import("../../lib/storage/index.js"),
      ]);
      const storage = openStorage(location, { s3Endpoint: config.s3Endpoint });
      try {
        const report = await rollcall({
          databaseUrl: databaseUrl(),
          storage,
          storageLocation: location,
          filePre: flags.filePre,
          limit,
          checkMd5: flags.checkmd5 === true,
          dryRun: flags.dryRun === true,
          restart: flags.restart === true,
          concurrency,
          batchSize,
          pauseMs,
          onProgress: (p) =>
            output.progress(
              { ...p },
              `checked ${formatCount(p.checked)}/${formatCount(p.total)}, ${formatCount(p.missing)} missing${p.mismatched > 0 ? `, ${formatCount(p.mismatched)} md5 mismatches` : ""}, ${formatRate(p.rate)}/s, ETA ${formatDuration(p.etaSeconds)}`,
            ),
        });
        output.result(report, describeRollcall);
      } finally {
        await storage.close();
      }
    });
}
