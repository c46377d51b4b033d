/**
 * `fitsfleet rollcall` on a million present diskfiles against the
 * reference's way (rollcall.py: the rows read in lastmod order, one
 * existence check at a time, and an UPDATE and COMMIT for every missing
 * file), in the same run on one throwaway stack.
 *
 * The storage is a folder holding a fraction of the files (default 5%: a
 * summit volume against an archive's rows, the case the seeding recipe
 * creates), in 100 folders; every other row is missing and gets marked. The
 * baseline runs on samples of rows taken between the full fitsfleet runs
 * (interleaved, each sample put back afterwards), and its rate is scaled to
 * the whole table.
 *
 * Usage: node --import tsx bench/rollcall.ts [rows=1000000] [percentOnDisk=5] [sample=4000] [--fast]
 *   --fast: PostgreSQL without fsync (the per-commit baseline gains most)
 */
import {
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import { openStorage } from "../lib/storage/index.js";
import { rollcall } from "../lib/summit/rollcall.js";

const numbers = process.argv
  .slice(2)
  .filter((a) => /^\d+$/.test(a))
  .map(Number);
const rows = numbers[0] ?? 1_000_000;
const percent = numbers[1] ?? 5;
const sample = numbers[2] ?? 4000;
const fast = process.argv.includes("--fast");
const rounds = 2;
const work = mkdtempSync(join(tmpdir(), "fitsfleet-bench-rollcall-"));
const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-stack-"));
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Row i's file is on disk for `percent` of the rows, spread evenly. */
const onDisk = (id: number) => id % 100 < percent;

try {
  const { state } = await stackUp(stackDir, { unsafeFast: fast });
  const urls = stackUrls(state);
  await withClient(urls.adminUrl, (c) =>
    c.query("CREATE DATABASE bench_rollcall"),
  );
  const url = new URL(urls.adminUrl);
  url.pathname = "/bench_rollcall";
  const db = url.toString();
  let t = performance.now();
  await withClient(db, async (c) => {
    await runMigrations(c);
    await c.query(
      `INSERT INTO file (name)
       SELECT 'N' || to_char(date '2010-01-01' + (g / 500), 'YYYYMMDD') || 'S' || lpad((g % 500 + 1)::text, 4, '0') || '.fits'
         FROM generate_series(0, $1 - 1) g`,
      [rows],
    );
    await c.query(
      `INSERT INTO diskfile (file_id, filename, path, present, canonical, file_md5, file_size,
                             compressed, data_md5, data_size, lastmod, entrytime)
       SELECT id, name, 'raw/' || (id % 100), true, true, md5(name), 0, false, md5(name), 0,
              timestamp '2010-01-01' + id * interval '1 minute', now()
         FROM file`,
    );
    await c.query("ANALYZE file, diskfile");
  });
  const { rows: stored } = await withClient(db, (c) =>
    c.query<{ id: number; path: string; filename: string }>(
      "SELECT id, path, filename FROM diskfile ORDER BY id",
    ),
  );
  const volume = join(work, "volume");
  for (let i = 0; i < 100; i++) {
    mkdirSync(join(volume, "raw", String(i)), { recursive: true });
  }
  let files = 0;
  for (const r of stored) {
    if (onDisk(r.id)) {
      writeFileSync(join(volume, r.path, r.filename), "");
      files++;
    }
  }
  console.log(
    `${fmt(rows)} present diskfiles, ${fmt(files)} files on disk (${percent}%), made in ${((performance.now() - t) / 1000).toFixed(0)} s; PostgreSQL fsync ${fast ? "off" : "on"}`,
  );

  const restore = () =>
    withClient(db, async (c) => {
      await c.query("UPDATE diskfile SET present = true WHERE NOT present");
      await c.query("DELETE FROM fitsfleet.rollcall_runs");
      await c.query("VACUUM ANALYZE diskfile");
    });

  /** rollcall.py's loop on `sample` rows from `offset` in lastmod order; files/s. */
  const baseline = async (offset: number): Promise<number> => {
    await restore();
    const result = await withClient(db, async (c) => {
      const begin = performance.now();
      const { rows: todo } = await c.query<{
        id: number;
        path: string;
        filename: string;
      }>(
        `SELECT id, path, filename FROM diskfile WHERE present
          ORDER BY lastmod OFFSET $1 LIMIT $2`,
        [offset, sample],
      );
      for (const r of todo) {
        let exists = false;
        try {
          // os.access + isfile on the full path, one at a time.
          exists = statSync(join(volume, r.path, r.filename)).isFile();
        } catch {
          exists = false;
        }
        if (!exists) {
          await c.query("BEGIN");
          await c.query("UPDATE diskfile SET present = false WHERE id = $1", [
            r.id,
          ]);
          await c.query("COMMIT");
        }
      }
      return todo.length / ((performance.now() - begin) / 1000);
    });
    await withClient(db, (c) =>
      c.query("UPDATE diskfile SET present = true WHERE NOT present"),
    );
    return result;
  };

  const storage = openStorage(volume);
  const baseRates: number[] = [];
  const ours: { seconds: number; missing: number }[] = [];
  baseRates.push(await baseline(0));
  for (let round = 0; round < rounds; round++) {
    await restore();
    t = performance.now();
    let lastLine = 0;
    const report = await rollcall({
      databaseUrl: db,
      storage,
      storageLocation: volume,
      onProgress: (p) => {
        if (performance.now() - lastLine > 10_000) {
          lastLine = performance.now();
          console.log(
            `  fitsfleet: ${fmt(p.checked)}/${fmt(p.total)}, ${fmt(p.rate)}/s`,
          );
        }
      },
    });
    const seconds = (performance.now() - t) / 1000;
    ours.push({ seconds, missing: report.missing });
    if (report.missing !== rows - files || report.checked !== rows) {
      throw new Error(
        `rollcall checked ${report.checked} and found ${report.missing} missing; expected ${rows} and ${rows - files}`,
      );
    }
    baseRates.push(
      await baseline(Math.floor(((round + 1) * rows) / (rounds + 1))),
    );
  }
  await storage.close();
  const baseRate = baseRates.reduce((a, b) => a + b, 0) / baseRates.length;
  const best = Math.min(...ours.map((o) => o.seconds));
  const mean = ours.reduce((a, o) => a + o.seconds, 0) / ours.length;
  console.log(
    `fitsfleet rollcall: ${ours.map((o) => `${o.seconds.toFixed(1)} s`).join(", ")} for ${fmt(rows)} rows (${fmt(ours[0]!.missing)} marked not present); mean ${fmt(rows / mean)} rows/s, best ${fmt(rows / best)} rows/s`,
  );
  console.log(
    `reference's way (a check, and a commit per missing file), ${baseRates.length} samples of ${fmt(sample)} rows interleaved: ${baseRates.map(fmt).join(", ")} rows/s; scaled to ${fmt(rows)} rows: ${fmt(rows / baseRate)} s`,
  );
  console.log(
    `ratio: ${(rows / mean / baseRate).toFixed(1)}x on the mean run, ${(rows / best / baseRate).toFixed(1)}x on the best (target >= 20x)`,
  );
} finally {
  await stackDown(stackDir, { purge: true }).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
