import { Command, Option } from "commander";

import { UsageError } from "../../../lib/errors.js";
import { formatCount } from "../../../lib/progress.js";
import type { SeedReport, SeedStep } from "../../../lib/summit/seed.js";
import { runContext } from "../../run.js";
import { QUEUE_OPTION, storageLocation } from "../rebuild/common.js";
import { progressPrinter } from "../upgrade/migrate-tables.js";

interface SeedFlags {
  from: string;
  manifest?: string;
  site?: string;
  years?: string;
  mark?: "listing" | "prefix" | "all";
  enqueue: boolean;
  queue: string;
  queuePreviews?: boolean;
  dryRun?: boolean;
  force?: boolean;
}

function describeDetails(details: Record<string, number>): string {
  return Object.entries(details)
    .map(([k, v]) => `${k} ${formatCount(v)}`)
    .join(", ");
}

export function describeStep(s: SeedStep, dryRun: boolean): string {
  return `${dryRun ? "[dry run] " : ""}${s.step}: ${s.summary}: ${formatCount(s.count)} (${describeDetails(s.details)})`;
}

export function describeSeed(r: SeedReport): string {
  return [
    `${r.dryRun ? "dry run, nothing written: " : ""}seeded ${r.target} from ${r.source} in ${r.seconds.toFixed(1)} s`,
    ...r.steps.map((s) => `  ${describeStep(s, false)}`),
    r.dryRun
      ? "the transaction was rolled back; run without --dry-run to seed"
      : r.enqueue === null
        ? "nothing was queued for ingest (no --storage, or --no-enqueue)"
        : "next: run the rebuild workers (`fitsfleet worker ingest`); files whose bytes match the archive's checksums keep their diskfile",
  ].join("\n");
}

export function seedHistoricCommand(): Command {
  return new Command("seed-historic")
    .description(
      "seed a fresh summit database from an archive backup: restore, empty preview and calcache, undo the .bz2 naming, mark what is not on the summit volume (--storage) not present, and queue the ingest of what is",
    )
    .requiredOption(
      "--from <backup>",
      "the archive backup: a pg_dump archive (custom file or directory), an s3:// URL of one, or a postgres:// URL",
    )
    .option(
      "--manifest <file>",
      "checksum manifest to verify the dump against (default: <dump>.manifest.json when present)",
    )
    .addOption(
      new Option("--site <site>", "the summit's site: files N… or S…").choices([
        "N",
        "S",
      ]),
    )
    .option(
      "--years <list>",
      "years the summit volume holds, e.g. 2019,2021-2023 (files <site><year>…)",
    )
    .addOption(
      new Option(
        "--mark <how>",
        "how files not on the volume are found: listing (the --storage listing, and --site/--years if given), prefix (--site/--years only), all (every file)",
      ).choices(["listing", "prefix", "all"]),
    )
    .option("--no-enqueue", "do not queue the ingest of the volume's files")
    .option(...QUEUE_OPTION)
    .option(
      "--queue-previews",
      "queue a preview for every diskfile left present, for `worker preview`",
    )
    .option(
      "--dry-run",
      "do every step in a transaction that is rolled back: the counts, nothing written",
    )
    .option(
      "--force",
      "seed a target that already holds rows, replacing them (in the same transaction)",
    )
    .action(async (flags: SeedFlags, command: Command) => {
      const [{ seedHistoric, parseYears }, { openStorage }] = await Promise.all(
        [
          import("../../../lib/summit/seed.js"),
          import("../../../lib/storage/index.js"),
        ],
      );
      const years =
        flags.years === undefined ? undefined : parseYears(flags.years);
      const { config, output, logger, databaseUrl, redisUrl } =
        await runContext(command);
      if (flags.mark === "listing" && config.storage === undefined) {
        throw new UsageError(
          "--mark listing needs --storage (the summit volume: a directory or s3://bucket/prefix)",
        );
      }
      const location =
        config.storage === undefined ? undefined : storageLocation(config);
      const storage =
        location === undefined
          ? undefined
          : openStorage(location, { s3Endpoint: config.s3Endpoint });
      const dryRun = flags.dryRun === true;
      try {
        const report = await seedHistoric({
          from: flags.from,
          manifest: flags.manifest,
          targetUrl: databaseUrl(),
          storage,
          storageLocation: location,
          site: flags.site as "N" | "S" | undefined,
          years,
          mark: flags.mark,
          enqueue: storage === undefined ? false : flags.enqueue,
          redisUrl:
            storage !== undefined && flags.enqueue ? redisUrl() : undefined,
          queue: flags.queue,
          queuePreviews: flags.queuePreviews === true,
          dryRun,
          force: flags.force === true,
          s3Endpoint: config.s3Endpoint,
          logger,
          onTable: progressPrinter(output),
          onListing: (listed) =>
            output.progress(
              { listed },
              `listing the summit volume: ${formatCount(listed)} files`,
            ),
          onStep: (s) => output.progress({ step: s }, describeStep(s, dryRun)),
        });
        output.result(report, describeSeed);
      } finally {
        await storage?.close();
      }
    });
}
