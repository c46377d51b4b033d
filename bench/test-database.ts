/**
 * Per-test database isolation: cloning a template that already holds the
 * schema (what the test suite does) against creating an empty database and
 * running the migrations (the baseline), on the same throwaway stack, in the
 * same run. Also reports the embedded stack's cold start.
 *
 * Usage: node --import tsx bench/test-database.ts [rounds=10]
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";

const rounds = Number(process.argv[2] ?? 10);
const dir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-"));

function dbUrl(admin: string, name: string): string {
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

try {
  let t = performance.now();
  const { state } = await stackUp(dir, { unsafeFast: true });
  const coldStart = performance.now() - t;
  const { adminUrl } = stackUrls(state);
  await withClient(adminUrl, (c) => c.query("CREATE DATABASE bench_template"));
  await withClient(dbUrl(adminUrl, "bench_template"), (c) => runMigrations(c));

  const clone: number[] = [];
  const migrate: number[] = [];
  await withClient(adminUrl, async (admin) => {
    for (let i = 0; i < rounds; i++) {
      t = performance.now();
      await admin.query(`CREATE DATABASE clone_${i} TEMPLATE bench_template`);
      clone.push(performance.now() - t);

      t = performance.now();
      await admin.query(`CREATE DATABASE fresh_${i}`);
      await withClient(dbUrl(adminUrl, `fresh_${i}`), (c) => runMigrations(c));
      migrate.push(performance.now() - t);
    }
  });
  const a = median(clone);
  const b = median(migrate);
  console.log(
    `embedded stack cold start (initdb + start PostgreSQL and Redis): ${coldStart.toFixed(0)} ms`,
  );
  console.log(`per-test database, median of ${rounds}:`);
  console.log(`  fitsfleet (clone template):      ${a.toFixed(1)} ms`);
  console.log(`  baseline (create + migrate):     ${b.toFixed(1)} ms`);
  console.log(`  ratio baseline/fitsfleet:        ${(b / a).toFixed(2)}x`);
} finally {
  await stackDown(dir, { purge: true });
}
