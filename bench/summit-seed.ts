/**
 * `fitsfleet summit seed-historic` on an archive database of a million
 * files: how long the whole seeding takes and where the time goes (restore,
 * the naming fix-up, marking by the volume's listing, commit, enqueue).
 *
 * The archive is generated on the server (generate_series): file, diskfile
 * with `.bz2` names and distinct file/data checksums, a header row per
 * diskfile, v2 preview names, and a calibration cache; both sites,
 * 2010-2023. The summit volume is a folder of empty files: site N's files of
 * the last two years that a sample keeps (default 2% of all rows). The seed
 * reads the archive as a live database; with --dump also from a pg_dump
 * custom-format file of it (the dump's own time not counted).
 *
 * Usage: node --import tsx bench/summit-seed.ts [files=1000000] [percentOnVolume=2] [--dump] [--fast]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { dumpDatabase } from "../fixtures/previous-version.js";
import { withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import { openStorage } from "../lib/storage/index.js";
import { seedHistoric, type SeedStep } from "../lib/summit/seed.js";

const numbers = process.argv
  .slice(2)
  .filter((a) => /^\d+$/.test(a))
  .map(Number);
const files = numbers[0] ?? 1_000_000;
const percent = numbers[1] ?? 2;
const fromDump = process.argv.includes("--dump");
const fast = process.argv.includes("--fast");
const work = mkdtempSync(join(tmpdir(), "fitsfleet-bench-seed-"));
const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-stack-"));
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

async function freshDatabase(admin: string, name: string): Promise<string> {
  await withClient(admin, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(admin);
  url.pathname = `/${name}`;
  await withClient(url.toString(), (c) => runMigrations(c));
  return url.toString();
}

try {
  const { state } = await stackUp(stackDir, { unsafeFast: fast });
  const urls = stackUrls(state);
  let t = performance.now();
  const archive = await freshDatabase(urls.adminUrl, "bench_archive");
  // Row g: night g / 400 counted back from 2023-12-31, sites alternating.
  await withClient(archive, async (c) => {
    await c.query(
      `INSERT INTO file (name)
       SELECT CASE WHEN g % 2 = 0 THEN 'N' ELSE 'S' END
              || to_char(date '2023-12-31' - (g / 400), 'YYYYMMDD')
              || 'S' || lpad((g % 400 + 1)::text, 4, '0') || '.fits'
         FROM generate_series(0, $1 - 1) g`,
      [files],
    );
    await c.query(
      `INSERT INTO diskfile (file_id, filename, path, present, canonical, file_md5, file_size,
                             lastmod, entrytime, compressed, data_md5, data_size, isfits)
       SELECT id, name || '.bz2', '', true, true, md5('z' || name), 2000000 + id % 1000,
              now(), now(), true, md5(name), 8000000 + id % 1000, true
         FROM file`,
    );
    await c.query(
      `INSERT INTO header (diskfile_id, telescope, instrument, ut_datetime, observation_type,
                           observation_class, program_id, data_label)
       SELECT id, CASE WHEN filename LIKE 'N%' THEN 'Gemini-North'::telescope ELSE 'Gemini-South'::telescope END,
              CASE id % 4 WHEN 0 THEN 'GMOS-N' WHEN 1 THEN 'NIRI' WHEN 2 THEN 'F2' ELSE 'GNIRS' END,
              lastmod, 'OBJECT', 'science', 'GN-2020A-Q-1', 'GN-2020A-Q-1-' || id
         FROM diskfile`,
    );
    await c.query(
      `INSERT INTO preview (diskfile_id, filename)
       SELECT id, filename || '_preview.jpg' FROM diskfile`,
    );
    await c.query(
      `INSERT INTO calcache (obs_hid, cal_hid, rank, caltype)
       SELECT id, (1 + (id::bigint * 7919) % $1)::int, 0, 'bias' FROM header`,
      [files],
    );
    await c.query("VACUUM ANALYZE");
  });
  // The summit volume: site N, 2022-2023, a sample of `percent`% of all files.
  const { rows: kept } = await withClient(archive, async (c) => {
    const { rows: subset } = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM file WHERE name ~ '^N202[23]'",
    );
    const share = Math.min(1, (percent / 100) * (files / Number(subset[0]!.n)));
    return c.query<{ name: string }>(
      `SELECT name FROM file WHERE name ~ '^N202[23]' AND id % 1000 < $1`,
      [Math.round(share * 1000)],
    );
  });
  const volume = join(work, "volume");
  mkdirSync(volume, { recursive: true });
  for (const { name } of kept) {
    writeFileSync(join(volume, name), "");
  }
  console.log(
    `archive: ${fmt(files)} files (file, diskfile, header, preview, calcache rows), volume: ${fmt(kept.length)} files, made in ${((performance.now() - t) / 1000).toFixed(0)} s; PostgreSQL fsync ${fast ? "off" : "on"}`,
  );

  const storage = openStorage(volume);
  const seedFrom = async (from: string, label: string) => {
    const target = await freshDatabase(
      urls.adminUrl,
      `bench_summit_${label.replace(/\W/g, "_")}`,
    );
    const marks: { step: SeedStep; at: number }[] = [];
    const start = performance.now();
    const report = await seedHistoric({
      from,
      targetUrl: target,
      storage,
      storageLocation: volume,
      site: "N",
      redisUrl: urls.redisUrl,
      queue: `bench-seed-${label}`,
      onStep: (step) => marks.push({ step, at: performance.now() }),
    });
    const total = (performance.now() - start) / 1000;
    const mark = report.steps.find((s) => s.step === "mark")!;
    if (mark.details.leftPresent !== kept.length) {
      throw new Error(
        `${mark.details.leftPresent} left present; expected ${kept.length}`,
      );
    }
    let previous = start;
    const phases = marks.map(({ step, at }) => {
      const seconds = (at - previous) / 1000;
      previous = at;
      return `${step.step} ${seconds.toFixed(1)} s (${fmt(step.count)})`;
    });
    console.log(
      `seed from ${label}: ${total.toFixed(1)} s in all, ${fmt(files / total)} files/s; ${phases.join(", ")}`,
    );
  };
  await seedFrom(archive, "a live database");
  if (fromDump) {
    const dump = join(work, "archive.dump");
    t = performance.now();
    await dumpDatabase(archive, dump, "custom");
    console.log(
      `pg_dump -Fc of the archive: ${((performance.now() - t) / 1000).toFixed(1)} s (not counted)`,
    );
    await seedFrom(dump, "a dump");
  }
  await storage.close();
} finally {
  await stackDown(stackDir, { purge: true }).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
