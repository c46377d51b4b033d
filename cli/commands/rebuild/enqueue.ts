import { Command } from "commander";

import { UsageError } from "../../../lib/errors.js";
import { formatCount } from "../../../lib/progress.js";
import type { EnqueueReport } from "../../../lib/rebuild/enqueue.js";
import { runContext } from "../../run.js";
import { QUEUE_OPTION, storageLocation } from "./common.js";

interface EnqueueFlags {
  queue: string;
  path?: string;
  recursive: boolean;
  fileRe?: string;
  filename?: string;
  listfile?: string;
  newfiles?: string;
  after?: string;
  force?: boolean;
  forceMd5?: boolean;
  dryRun?: boolean;
  batchSize: string;
}

function positiveNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(
      `${flag} ${JSON.stringify(value)}: must be a positive number`,
    );
  }
  return n;
}

export function describeEnqueue(r: EnqueueReport): string {
  const head = r.dryRun ? "dry run, nothing written: would queue" : "queued";
  return [
    `storage ${r.storage}: ${formatCount(r.listed)} listed, ${formatCount(r.matched)} FITS files matched`,
    `${head} ${formatCount(r.queued)} new and ${formatCount(r.requeued)} again (${formatCount(r.unchanged)} already queued, running or ingested unchanged)${r.dryRun ? "" : ` in ${formatCount(r.jobs)} job(s)`}, ${r.seconds.toFixed(1)} s`,
  ].join("\n");
}

export function enqueueCommand(): Command {
  return new Command("enqueue")
    .description(
      "queue an ingest of every FITS file in the storage (--storage), newest first; files already queued are left alone",
    )
    .option(...QUEUE_OPTION)
    .option("--path <dir>", "only under this directory of the storage")
    .option(
      "--no-recursive",
      "only the files directly in --path, not its subdirectories",
    )
    .option(
      "--file-re <regex>",
      "only names matching this regular expression, or today, twoday, fourday, tenday, twentyday for the last days' dates",
    )
    .option("--filename <name>", "just this file (relative to --path)")
    .option(
      "--listfile <file>",
      "the files named in this file, one per line (relative to --path)",
    )
    .option("--newfiles <days>", "only files modified in the last DAYS days")
    .option("--after <time>", "not to be ingested before this ISO time")
    .option("--force", "ingest even files whose stored copy is unchanged")
    .option(
      "--force-md5",
      "compare checksums even when the modification time is unchanged",
    )
    .option("--dry-run", "count what would be queued without writing anything")
    .option("--batch-size <files>", "files per queued job", "200")
    .action(async (flags: EnqueueFlags, command: Command) => {
      const { config, output, databaseUrl, redisUrl } =
        await runContext(command);
      if (
        [flags.filename, flags.listfile].filter((x) => x !== undefined).length >
        1
      ) {
        throw new UsageError("--filename and --listfile exclude each other");
      }
      const after =
        flags.after === undefined ? undefined : new Date(flags.after);
      if (after !== undefined && Number.isNaN(after.getTime())) {
        throw new UsageError(
          `--after ${JSON.stringify(flags.after)}: not an ISO date and time`,
        );
      }
      const location = storageLocation(config);
      // Loaded here, not at the top: `--help` need not load the drivers.
      const [{ enqueue }, { openStorage }] = await Promise.all([
        import("../../../lib/rebuild/enqueue.js"),
        import("../../../lib/storage/index.js"),
      ]);
      const storage = openStorage(location, { s3Endpoint: config.s3Endpoint });
      try {
        const report = await enqueue({
          databaseUrl: databaseUrl(),
          redisUrl: redisUrl(),
          queue: flags.queue,
          storage,
          storageLocation: location,
          path: flags.path,
          recursive: flags.recursive,
          fileRe: flags.fileRe,
          filename: flags.filename,
          listfile: flags.listfile,
          newfiles:
            flags.newfiles === undefined
              ? undefined
              : positiveNumber("--newfiles", flags.newfiles),
          after,
          force: flags.force,
          forceMd5: flags.forceMd5,
          dryRun: flags.dryRun,
          batchSize: positiveNumber("--batch-size", flags.batchSize),
          onProgress: (listed, matched) =>
            output.progress(
              { listed, matched },
              `listed ${formatCount(listed)}, matched ${formatCount(matched)}`,
            ),
        });
        output.result(report, describeEnqueue);
      } finally {
        await storage.close();
      }
    });
}
