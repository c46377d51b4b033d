/**
 * Database connections a worker holds, before and after "connections only
 * when needed" (issue 17): the same rebuild of a synthetic archive by
 * `worker ingest --fast-rebuild --make-previews` processes of this build
 * and of an earlier one (`--before PATH/dist/cli/main.js`, built from
 * another checkout), each into its own database on one throwaway stack,
 * taking turns. pg_stat_activity is sampled every 20 ms: the mean and the
 * peak of the workers' connections, per worker, and files/s.
 *
 * Usage: node --import tsx bench/worker-connections.ts --before OLD/dist/cli/main.js
 *          [--files 400] [--workers 2] [--concurrency 2] [--rounds 2]
 *          [--data-scale full|small|tiny] [--batch-size 10]
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { writeSyntheticArchive } from "../fixtures/synthetic/archive.js";
import { withClient } from "../lib/db/connect.js";
import { packageRoot } from "../lib/paths.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";

const run = promisify(execFile);

function option(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const before = option("--before");
if (before === undefined) {
  console.error(
    "give --before OLD/dist/cli/main.js: the build to compare with (git worktree add /tmp/old REV && (cd /tmp/old && ln -s $PWD/node_modules . && node scripts/build.mjs))",
  );
  process.exit(2);
}
const files = Number(option("--files", "400"));
const workers = Number(option("--workers", "2"));
const concurrency = Number(option("--concurrency", "2"));
const rounds = Number(option("--rounds", "2"));
const dataScale = option("--data-scale", "full") as "tiny" | "small" | "full";
const batchSize = option("--batch-size", "10")!;
const contenders = [
  { name: "before", cli: before },
  { name: "after", cli: join(packageRoot(), "dist", "cli", "main.js") },
];

const work = mkdtempSync(join(tmpdir(), "fitsfleet-bench-connections-"));
// Its own folder: the server's user must be able to enter it.
const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-stack-"));
try {
  const { state } = await stackUp(stackDir, { unsafeFast: true });
  const urls = stackUrls(state);
  const archive = join(work, "archive");
  await writeSyntheticArchive(archive, {
    files,
    dataScale,
    layout: "by-night",
  });
  const results = new Map<
    string,
    { mean: number[]; peak: number[]; rate: number[] }
  >();
  for (let round = 1; round <= rounds; round++) {
    for (const c of round % 2 === 1 ? contenders : [...contenders].reverse()) {
      const db = `conn_${c.name}_${round}`;
      await withClient(urls.adminUrl, (client) =>
        client.query(`CREATE DATABASE ${db}`),
      );
      const url = new URL(urls.adminUrl);
      url.pathname = `/${db}`;
      const env = {
        ...process.env,
        FITSFLEET_DATABASE_URL: url.toString(),
        FITSFLEET_REDIS_URL: urls.redisUrl,
        FITSFLEET_LOG_LEVEL: "error",
        MALLOC_ARENA_MAX: "2",
      };
      const queue = `conn-${c.name}-${round}`;
      await run(process.execPath, [c.cli, "db", "init"], { env });
      await run(
        process.execPath,
        [
          c.cli,
          "--storage",
          archive,
          "rebuild",
          "enqueue",
          "--queue",
          queue,
          "--batch-size",
          batchSize,
        ],
        { env },
      );
      const started = Date.now();
      const exits = Array.from({ length: workers }, (_, i) => {
        const child = spawn(
          process.execPath,
          [
            "--max-semi-space-size=64",
            c.cli,
            "worker",
            "ingest",
            "--empty",
            "--fast-rebuild",
            "--make-previews",
            "--name",
            `${c.name}-${i + 1}`,
            "--queue",
            queue,
            "--concurrency",
            String(concurrency),
          ],
          { env, stdio: "ignore" },
        );
        return new Promise<number | null>((resolve) =>
          child.once("exit", (code) => resolve(code)),
        );
      });
      let running = true;
      const finished = Promise.all(exits).finally(() => {
        running = false;
      });
      const samples: number[] = [];
      await withClient(urls.adminUrl, async (client) => {
        while (running) {
          const { rows } = await client.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity
              WHERE datname = $1 AND application_name LIKE 'fitsfleet worker ingest%'`,
            [db],
          );
          samples.push(Number(rows[0]!.n));
          await Promise.race([finished, new Promise((r) => setTimeout(r, 20))]);
        }
      });
      const codes = await finished;
      const seconds = (Date.now() - started) / 1000;
      if (codes.some((code) => code !== 0)) {
        throw new Error(`${c.name}: a worker exited with ${codes.join(", ")}`);
      }
      const r = results.get(c.name) ?? { mean: [], peak: [], rate: [] };
      r.mean.push(
        samples.reduce((a, b) => a + b, 0) / samples.length / workers,
      );
      r.peak.push(Math.max(...samples) / workers);
      r.rate.push(files / seconds);
      results.set(c.name, r);
      console.log(
        `round ${round} ${c.name}: ${(r.mean.at(-1) ?? 0).toFixed(2)} connections per worker on average, peak ${(r.peak.at(-1) ?? 0).toFixed(1)}, ${(files / seconds).toFixed(1)} files/s`,
      );
    }
  }
  const median = (xs: number[]) =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const b = results.get("before")!;
  const a = results.get("after")!;
  console.log(
    `\n${workers} workers x concurrency ${concurrency}, ${files} files, medians of ${rounds} rounds:`,
  );
  console.log(
    `before: ${median(b.mean).toFixed(2)} connections per worker (peak ${median(b.peak).toFixed(1)}), ${median(b.rate).toFixed(1)} files/s`,
  );
  console.log(
    `after:  ${median(a.mean).toFixed(2)} connections per worker (peak ${median(a.peak).toFixed(1)}), ${median(a.rate).toFixed(1)} files/s`,
  );
  console.log(
    `connections: after/before ${(median(a.mean) / median(b.mean)).toFixed(2)}; speed after/before ${(median(a.rate) / median(b.rate)).toFixed(2)}`,
  );
} finally {
  await stackDown(stackDir, { purge: true });
  rmSync(stackDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
