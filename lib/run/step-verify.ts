/**
 * The verify step: the run did what it says. Every ledger row is done,
 * skipped, or failed with a reason; the present diskfiles are exactly the
 * ledger's done files, which are the files the enqueue listed (checked
 * against the storage itself for a sample, so the storage is not listed
 * again); and the calibration cache is built.
 */
import { EXIT, FitsfleetError } from "../errors.js";
import { openStorage } from "../storage/index.js";
import type { StepContext, StepResult } from "./step-context.js";

export interface VerifyFindings {
  ledgerRows: number;
  unfinished: number;
  failedWithoutReason: number;
  presentDiskfiles: number;
  /** Done rows whose diskfile is missing or not present. */
  doneWithoutDiskfile: number;
  /** Present diskfiles no ledger row of this storage wrote. */
  diskfilesNotInLedger: number;
  /** Sampled files missing from storage or of another size than listed. */
  sampled: number;
  sampleMismatches: number;
  calcacheFrames: number;
  problems: string[];
}

export async function verifyRun(ctx: StepContext): Promise<VerifyFindings> {
  const { client, settings } = ctx;
  const one = async (sql: string, params: unknown[] = []) => {
    const { rows } = await client.query<{ n: string }>(sql, params);
    return Number(rows[0]?.n ?? 0);
  };
  const ledgerRows = await one(
    "SELECT count(*) AS n FROM fitsfleet.ingest_ledger WHERE storage = $1",
    [settings.storage],
  );
  const unfinished = await one(
    "SELECT count(*) AS n FROM fitsfleet.ingest_ledger WHERE state IN ('queued', 'active')",
  );
  const failedWithoutReason = await one(
    "SELECT count(*) AS n FROM fitsfleet.ingest_ledger WHERE state = 'failed' AND coalesce(btrim(error), '') = ''",
  );
  const presentDiskfiles = await one(
    "SELECT count(*) AS n FROM diskfile WHERE present",
  );
  const doneWithoutDiskfile = await one(
    `SELECT count(*) AS n FROM fitsfleet.ingest_ledger l
      WHERE l.state = 'done' AND l.storage = $1
        AND NOT EXISTS (SELECT 1 FROM diskfile d
                         WHERE d.present AND d.path = l.path AND d.filename = l.filename)`,
    [settings.storage],
  );
  const diskfilesNotInLedger = await one(
    `SELECT count(*) AS n FROM diskfile d
      WHERE d.present AND NOT EXISTS (
        SELECT 1 FROM fitsfleet.ingest_ledger l
         WHERE l.storage = $1 AND l.path = d.path AND l.filename = d.filename AND l.state = 'done')`,
    [settings.storage],
  );
  const { rows: sample } = await client.query<{
    path: string;
    filename: string;
    size: string | null;
  }>(
    `SELECT path, filename, size::text FROM fitsfleet.ingest_ledger
      WHERE storage = $1 AND state = 'done' ORDER BY random() LIMIT $2`,
    [settings.storage, settings.verifySample],
  );
  let sampleMismatches = 0;
  const missing: string[] = [];
  const storage = openStorage(settings.storage, {
    s3Endpoint: settings.s3Endpoint,
  });
  try {
    for (const r of sample) {
      const entry = await storage.stat(r.path, r.filename);
      if (
        entry === undefined ||
        (r.size !== null && entry.size !== Number(r.size))
      ) {
        sampleMismatches++;
        missing.push(`${r.path}/${r.filename}`);
      }
    }
  } finally {
    await storage.close();
  }
  const calcacheFrames = await one(
    "SELECT count(DISTINCT obs_hid) AS n FROM calcache",
  );
  const problems: string[] = [];
  if (unfinished > 0) {
    problems.push(`${unfinished} ledger row(s) still queued or active`);
  }
  if (failedWithoutReason > 0) {
    problems.push(
      `${failedWithoutReason} failed ledger row(s) without a reason`,
    );
  }
  if (doneWithoutDiskfile > 0) {
    problems.push(
      `${doneWithoutDiskfile} ingested file(s) without a present diskfile`,
    );
  }
  if (diskfilesNotInLedger > 0) {
    problems.push(
      `${diskfilesNotInLedger} present diskfile(s) that are not files of ${settings.storage} this run ingested`,
    );
  }
  if (sampleMismatches > 0) {
    problems.push(
      `${sampleMismatches} of ${sample.length} sampled file(s) missing from the storage or changed since listed: ${missing.slice(0, 5).join(", ")}`,
    );
  }
  const calcache = ctx.calcacheFigures;
  if (settings.calcache && calcache !== undefined) {
    const expected = calcache.associated ?? 0;
    if (calcacheFrames < Math.min(expected, 1)) {
      problems.push(
        `the calibration cache is empty, though ${expected} frame(s) were associated`,
      );
    }
  }
  return {
    ledgerRows,
    unfinished,
    failedWithoutReason,
    presentDiskfiles,
    doneWithoutDiskfile,
    diskfilesNotInLedger,
    sampled: sample.length,
    sampleMismatches,
    calcacheFrames,
    problems,
  };
}

export async function verifyStep(ctx: StepContext): Promise<StepResult> {
  const f = await verifyRun(ctx);
  if (f.problems.length > 0) {
    throw new FitsfleetError(
      "run-verify",
      EXIT.failed,
      `the run's verification failed: ${f.problems.join("; ")}`,
      {
        suggestion:
          "see `fitsfleet rebuild status` and `fitsfleet rebuild failures`; fix the cause, then `fitsfleet rebuild run --resume RUN` verifies again",
        context: { findings: f },
      },
    );
  }
  const { problems: _problems, ...figures } = f;
  return { status: "done", figures };
}
