/**
 * `rebuild enqueue` throughput and Redis cost per queued file, against the
 * reference's way of queuing (add_to_ingest_queue: one INSERT and one COMMIT
 * per file into ingestqueue), in the same run on one throwaway stack.
 *
 * - a listfile of N lines (default 1,000,000);
 * - a directory tree of M empty files, 100 per folder (default 200,000);
 * - the baseline on a sample of the same names (default 20,000), per-file
 *   commits, its rate extrapolated.
 *
 * Usage: node --import tsx bench/rebuild-enqueue.ts [lines=1000000] [files=200000] [sample=20000] [--fast]
 */
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Redis } from "ioredis";

import { withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { enqueue } from "../lib/rebuild/enqueue.js";
import { sortKey } from "../lib/rebuild/names.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import { openStorage } from "../lib/storage/index.js";

const numbers = process.argv
  .slice(2)
  .filter((a) => /^\d+$/.test(a))
  .map(Number);
const lines = numbers[0] ?? 1_000_000;
const treeFiles = numbers[1] ?? 200_000;
const sample = numbers[2] ?? 20_000;
const fast = process.argv.includes("--fast");
const work = mkdtempSync(join(tmpdir(), "fitsfleet-bench-enqueue-"));
const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-stack-"));

/** A plausible archive name for file i: newest nights first, 500 frames a night, both sites. */
function name(i: number): string {
  const night = Math.floor(i / 500);
  const date = new Date(Date.UTC(2024, 0, 1) - night * 86_400_000)
    .toISOString()
    .slice(0, 10)
    .replaceAll("-", "");
  const site = i % 2 === 0 ? "N" : "S";
  return `${site}${date}S${String((i % 500) + 1).padStart(4, "0")}.fits${i % 3 === 0 ? "" : ".bz2"}`;
}

async function redisBytes(url: string): Promise<number> {
  const redis = new Redis(url);
  try {
    const info = await redis.info("memory");
    return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
  } finally {
    redis.disconnect();
  }
}

async function freshDatabase(admin: string, db: string): Promise<string> {
  await withClient(admin, (c) => c.query(`CREATE DATABASE ${db}`));
  const url = new URL(admin);
  url.pathname = `/${db}`;
  await withClient(url.toString(), (c) => runMigrations(c));
  return url.toString();
}

try {
  const { state } = await stackUp(stackDir, { unsafeFast: fast });
  const urls = stackUrls(state);

  // 1. The listfile.
  const listfile = join(work, "files.txt");
  const out = createWriteStream(listfile);
  for (let i = 0; i < lines; i++) {
    out.write(`${2000 + (i % 7)}/${name(i)}\n`);
  }
  await new Promise((resolve) => out.end(resolve));
  const storage = openStorage(work);
  const listDb = await freshDatabase(urls.adminUrl, "bench_listfile");
  const memoryBefore = await redisBytes(urls.redisUrl);
  let t = performance.now();
  const listed = await enqueue({
    databaseUrl: listDb,
    redisUrl: urls.redisUrl,
    queue: "bench-listfile",
    storage,
    storageLocation: work,
    listfile,
  });
  const listSeconds = (performance.now() - t) / 1000;
  const perFile =
    ((await redisBytes(urls.redisUrl)) - memoryBefore) / listed.queued;

  // 2. The directory tree.
  const tree = join(work, "tree");
  for (let i = 0; i < treeFiles; i++) {
    const dir = join(
      tree,
      String(Math.floor(i / 10_000)),
      String(Math.floor(i / 100) % 100),
    );
    if (i % 100 === 0) {
      mkdirSync(dir, { recursive: true });
    }
    writeFileSync(join(dir, name(i)), "");
  }
  const treeStorage = openStorage(tree);
  const treeDb = await freshDatabase(urls.adminUrl, "bench_tree");
  t = performance.now();
  const scanned = await enqueue({
    databaseUrl: treeDb,
    redisUrl: urls.redisUrl,
    queue: "bench-tree",
    storage: treeStorage,
    storageLocation: tree,
  });
  const treeSeconds = (performance.now() - t) / 1000;

  // 3. The reference's way: one INSERT and COMMIT per file.
  const baseDb = await freshDatabase(urls.adminUrl, "bench_baseline");
  t = performance.now();
  await withClient(baseDb, async (c) => {
    for (let i = 0; i < sample; i++) {
      const n = name(i);
      await c.query(
        `INSERT INTO ingestqueue (filename, path, inprogress, fail_dt, added, force, force_md5, after, sortkey)
         VALUES ($1, $2, false, '9999-12-31 23:59:59.999999', now(), false, false, now(), $3)`,
        [n, String(2000 + (i % 7)), sortKey(n)],
      );
    }
  });
  const baseRate = sample / ((performance.now() - t) / 1000);

  const listRate = listed.queued / listSeconds;
  const treeRate = scanned.queued / treeSeconds;
  console.log(
    `PostgreSQL fsync ${fast ? "off" : "on"}; baseline on ${sample.toLocaleString("en-US")} files`,
  );
  console.log(
    `listfile, ${lines.toLocaleString("en-US")} lines: ${listSeconds.toFixed(1)} s, ${Math.round(listRate).toLocaleString("en-US")} files/s (target >= 50,000), ${listed.jobs} jobs`,
  );
  console.log(
    `directory tree, ${treeFiles.toLocaleString("en-US")} files: ${treeSeconds.toFixed(1)} s, ${Math.round(treeRate).toLocaleString("en-US")} files/s`,
  );
  console.log(
    `reference's way (a commit per file): ${Math.round(baseRate).toLocaleString("en-US")} files/s`,
  );
  console.log(
    `ratio: listfile ${(listRate / baseRate).toFixed(1)}x, tree ${(treeRate / baseRate).toFixed(1)}x`,
  );
  console.log(
    `Redis: ${perFile.toFixed(1)} bytes per queued file (target < 100)`,
  );
  await storage.close();
  await treeStorage.close();
} finally {
  await stackDown(stackDir, { purge: true }).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
