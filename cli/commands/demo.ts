import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

import { Command } from "commander";

import {
  createPreviousVersionDatabase,
  dumpDatabase,
} from "../../fixtures/previous-version.js";
import {
  type SyntheticFile,
  writeSyntheticArchive,
} from "../../fixtures/synthetic/archive.js";
import { runLocalWorkers } from "../../infra/local.js";
import { truncateRebuiltTables } from "../../lib/archive-writer.js";
import { withClient } from "../../lib/db/connect.js";
import { UsageError } from "../../lib/errors.js";
import type { Logger } from "../../lib/logger.js";
import { packageRoot } from "../../lib/paths.js";
import { previewLocation } from "../../lib/preview/store.js";
import { formatCount, formatDuration, formatRate } from "../../lib/progress.js";
import { enqueue, type EnqueueReport } from "../../lib/rebuild/enqueue.js";
import { REBUILT_TABLES } from "../../lib/rebuild/ingest.js";
import {
  type Failure,
  listFailures,
  resetLedger,
} from "../../lib/rebuild/ledger.js";
import { batchSizeFor, withIngestQueue } from "../../lib/rebuild/queue.js";
import { stackUp, stackUrls } from "../../lib/stack/index.js";
import { openStorage } from "../../lib/storage/index.js";
import { writeManifest } from "../../lib/upgrade/manifest.js";
import {
  type MigrateTablesResult,
  runMigrateTables,
} from "../../lib/upgrade/steps.js";
import { commandContext } from "../context.js";
import type { Output } from "../output.js";
import {
  describeInit,
  initDatabase,
  type InitDatabaseResult,
} from "./db/init.js";
import {
  type DatabaseStatus,
  databaseStatus,
  describeStatus,
} from "./db/status.js";
import { describeStack, type StackReport, stackReport } from "./stack/up.js";
import { describeMigration } from "./upgrade/migrate-tables.js";

export interface DemoRebuild {
  archive: string;
  files: number;
  compressed: number;
  corrupt: number;
  enqueue: EnqueueReport;
  workers: number;
  /** Rows in the rebuilt tables. */
  rows: Record<string, number>;
  /** Preview rows, and where the JPEGs are. */
  previews: number;
  previewLocation: string;
  done: number;
  failed: number;
  failures: Failure[];
  seconds: number;
  filesPerSecond: number;
}

export interface DemoResult {
  stack: StackReport;
  init: InitDatabaseResult;
  status: DatabaseStatus;
  upgrade: MigrateTablesResult;
  rebuild: DemoRebuild;
  seconds: number;
}

export interface DemoOptions {
  /** Files in the synthetic archive. */
  files: number;
  workers: number;
  logger: Logger;
  output?: Output;
}

const DEMO_QUEUE = "fitsfleet-demo";

const DEMO_PREVIOUS = "demo_previous_version";

/**
 * A previous-version (v2) archive database with realistic preserved tables,
 * made afresh on the stack and dumped with a manifest, as an operator's
 * backup would be.
 */
async function previousVersionDump(
  stackDir: string,
  adminUrl: string,
): Promise<string> {
  await withClient(adminUrl, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${DEMO_PREVIOUS} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${DEMO_PREVIOUS}`);
  });
  const url = new URL(adminUrl);
  url.pathname = `/${DEMO_PREVIOUS}`;
  await withClient(url.toString(), (c) =>
    createPreviousVersionDatabase(c, { usagelogRows: 20_000 }),
  );
  const dir = join(stackDir, "demo");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const dump = join(dir, "previous-version.dump");
  await dumpDatabase(url.toString(), dump, "custom");
  await writeManifest(dump);
  return dump;
}

/**
 * The README's main command. So far: bring up the embedded stack, create the
 * archive schema in it, and carry a generated previous version's users, logs
 * and QA metrics over from its dump. Later stages (enqueue, ingest workers,
 * calibration cache) join as they land.
 */
export async function runDemo(
  stackDir: string,
  options: DemoOptions,
): Promise<DemoResult> {
  const begun = Date.now();
  const { logger } = options;
  const { state, created, started } = await stackUp(stackDir, { logger });
  const urls = stackUrls(state);
  const url = urls.databaseUrl;
  const init = await initDatabase(url, { logger });
  const status = await databaseStatus(url);
  const dump = await previousVersionDump(stackDir, urls.adminUrl);
  // The demo replaces its own earlier rows, so it can run again and again.
  const upgrade = await runMigrateTables(
    {
      from: dump,
      preset: ["archive,summit"],
      table: [],
      excludeTable: [],
      mapping: join(packageRoot(), "mappings", "fitsstorage-v2-to-v3.json"),
    },
    url,
    { logger, truncateTarget: true },
  );
  const rebuild = await demoRebuild(stackDir, urls, options);
  return {
    stack: stackReport(stackDir, { created, started }),
    init,
    status,
    upgrade,
    rebuild,
    seconds: (Date.now() - begun) / 1000,
  };
}

/**
 * A rebuild of a synthetic archive: realistic GMOS, NIRI, F2 and GNIRS files
 * (some compressed, a few broken), enqueued and ingested by local worker
 * processes. The demo's earlier rebuild rows are replaced.
 */
async function demoRebuild(
  stackDir: string,
  urls: { databaseUrl: string; redisUrl: string },
  options: DemoOptions,
): Promise<DemoRebuild> {
  const begun = Date.now();
  const archive = join(stackDir, "demo", "archive");
  rmSync(archive, { recursive: true, force: true });
  const files: SyntheticFile[] = await writeSyntheticArchive(archive, {
    files: options.files,
    dataScale: "small",
    layout: "by-night",
  });
  await withClient(urls.databaseUrl, async (c) => {
    await resetLedger(c);
    await truncateRebuiltTables(c);
  });
  await withIngestQueue(urls.redisUrl, DEMO_QUEUE, (queue) =>
    queue.obliterate({ force: true }),
  );
  const storage = openStorage(archive);
  const enqueued = await enqueue({
    databaseUrl: urls.databaseUrl,
    redisUrl: urls.redisUrl,
    queue: DEMO_QUEUE,
    storage,
    storageLocation: archive,
    // Small batches, so that every worker gets a share of a small archive.
    batchSize: batchSizeFor(files.length, options.workers),
  }).finally(() => storage.close());
  const run = await runLocalWorkers({
    databaseUrl: urls.databaseUrl,
    redisUrl: urls.redisUrl,
    queue: DEMO_QUEUE,
    workers: options.workers,
    name: "demo",
    fastRebuild: true,
    makePreviews: true,
    onStatus: (s) => {
      const finished = s.counts.done + s.counts.failed + s.counts.skipped;
      options.output?.progress(
        {
          phase: "ingest",
          ...s.counts,
          total: s.total,
          filesPerSecond: s.runFilesPerSecond,
          etaSeconds: s.etaSeconds,
        },
        `ingest: ${formatCount(finished)} of ${formatCount(s.total)} files (${formatCount(s.counts.failed)} failed), ${formatRate(s.runFilesPerSecond)} files/s, ETA ${formatDuration(s.etaSeconds)}`,
      );
    },
  });
  const rows: Record<string, number> = {};
  let previews = 0;
  const failures = await withClient(urls.databaseUrl, async (c) => {
    for (const table of REBUILT_TABLES) {
      const { rows: n } = await c.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${table}`,
      );
      rows[table] = Number(n[0]!.n);
    }
    const { rows: p } = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM preview",
    );
    previews = Number(p[0]!.n);
    return listFailures(c, 20);
  });
  const seconds = (Date.now() - begun) / 1000;
  return {
    archive,
    files: files.length,
    compressed: files.filter((f) => f.name.endsWith(".bz2")).length,
    corrupt: files.filter((f) => f.corrupt !== undefined).length,
    enqueue: enqueued,
    workers: options.workers,
    rows,
    previews,
    previewLocation: previewLocation(archive, undefined),
    done: run.status.counts.done,
    failed: run.status.counts.failed,
    failures: failures.failures,
    seconds,
    // The ledger's rate over the run, the same figure the progress line and
    // `rebuild status` give.
    filesPerSecond: run.status.runFilesPerSecond,
  };
}

function describeRebuild(r: DemoRebuild): string {
  return [
    `synthetic archive ${r.archive}: ${formatCount(r.files)} files (${r.compressed} .bz2, ${r.corrupt} deliberately broken)`,
    `enqueued ${formatCount(r.enqueue.queued)} in ${r.enqueue.jobs} job(s); ${r.workers} local worker processes (--fast-rebuild --make-previews)`,
    `ingested ${formatCount(r.done)}, failed ${formatCount(r.failed)} in ${r.seconds.toFixed(1)} s (${formatRate(r.filesPerSecond)} files/s from the first file started to the last finished)`,
    `rows: ${Object.entries(r.rows)
      .map(([t, n]) => `${t} ${formatCount(n)}`)
      .join(", ")}`,
    `previews: ${formatCount(r.previews)} JPEGs in ${r.previewLocation}, rendered while ingesting`,
    ...(r.failures.length === 0
      ? []
      : [
          "failures (as `fitsfleet rebuild failures` lists them):",
          ...r.failures.map((f) => `  ${f.error.split("\n")[0]}`),
        ]),
  ].join("\n");
}

function describeDemo(result: DemoResult): string {
  return [
    "== embedded stack",
    describeStack(result.stack),
    "",
    "== db init",
    describeInit(result.init),
    "",
    "== db status",
    describeStatus(result.status),
    "",
    "== upgrade migrate-tables (a generated v2 archive's dump, mapped by mappings/fitsstorage-v2-to-v3.json)",
    describeMigration(result.upgrade),
    "",
    "== rebuild (enqueue, local ingest workers)",
    describeRebuild(result.rebuild),
    "",
    `demo finished in ${result.seconds.toFixed(1)} s; the stack keeps running (\`fitsfleet rebuild status\`, \`fitsfleet stack down\`)`,
  ].join("\n");
}

export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "run the toolkit end to end on the embedded local stack: stack up, db init, upgrade migrate-tables from a generated previous-version dump, and a rebuild of a synthetic archive by local worker processes",
    )
    .option("--files <n>", "files in the synthetic archive", "240")
    .option("--workers <n>", "local ingest worker processes", "2")
    .action(
      async (flags: { files: string; workers: string }, command: Command) => {
        const { config, logger, output } = commandContext(command);
        const files = Number(flags.files);
        const workers = Number(flags.workers);
        if (!Number.isInteger(files) || files < 1) {
          throw new UsageError(
            `--files ${flags.files}: a whole number, at least 1`,
          );
        }
        if (!Number.isInteger(workers) || workers < 1 || workers > 32) {
          throw new UsageError(
            `--workers ${flags.workers}: a whole number from 1 to 32`,
          );
        }
        output.result(
          await runDemo(config.stackDir, { files, workers, logger, output }),
          describeDemo,
        );
      },
    );
}
