/**
 * `summit seed-historic` end to end with the real CLI: an archive backup of
 * `.bz2` files (pg_dump of a database the real rebuild made, with v2 preview
 * names and a calibration cache) seeded into a fresh summit database, then a
 * real `worker ingest --empty` over the summit volume (a folder, and s3rver):
 * unchanged files keep the archive's diskfile, changed ones get a new
 * version, files not on the volume are not present.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { PutObjectCommand } from "@aws-sdk/client-s3";

import { withClient } from "../../lib/db/connect.js";
import type { SeedReport } from "../../lib/summit/seed.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { testS3 } from "../helpers/s3.js";
import { type SummitWorld, summitWorld } from "../helpers/summit.js";
import { tempDir } from "../helpers/tmp.js";

const count = (url: string, sql: string, params: unknown[] = []) =>
  withClient(url, async (c) =>
    Number((await c.query<{ n: string }>(sql, params)).rows[0]!.n),
  );

interface DiskfileRow {
  id: number;
  filename: string;
  path: string;
  present: boolean;
  canonical: boolean;
  file_md5: string;
  data_md5: string;
  file_size: string;
  data_size: string;
  compressed: boolean;
}

async function diskfiles(url: string, name: string, path: string) {
  return withClient(url, async (c) => {
    const { rows } = await c.query<DiskfileRow>(
      `SELECT d.id, d.filename, d.path, d.present, d.canonical, d.file_md5,
              d.data_md5, d.file_size::text, d.data_size::text, d.compressed
         FROM diskfile d JOIN file f ON f.id = d.file_id
        WHERE f.name = $1 AND d.path = $2 ORDER BY d.id`,
      [name, path],
    );
    return rows;
  });
}

/** Every assertion about the seeded-and-ingested summit database. */
async function checkSummit(
  url: string,
  world: SummitWorld,
  previewRows = 0,
): Promise<void> {
  for (const f of world.files) {
    const rows = await diskfiles(url, f.name, f.path);
    const present = rows.filter((r) => r.present);
    const where = `${f.path}/${f.name}`;
    if (!f.onVolume) {
      assert.equal(present.length, 0, `${where} is not on the volume`);
      assert.equal(rows.length, 1, `${where}: only the archive's row`);
      continue;
    }
    assert.equal(present.length, 1, `${where}: one present diskfile`);
    const p = present[0]!;
    assert.equal(p.canonical, true, `${where} canonical`);
    assert.equal(p.filename, f.name, `${where}: name without .bz2`);
    assert.equal(p.compressed, false);
    assert.equal(p.file_md5, f.volumeMd5, `${where}: file_md5`);
    assert.equal(p.data_md5, f.volumeMd5, `${where}: data_md5`);
    assert.equal(Number(p.file_size), f.volumeSize);
    assert.equal(Number(p.data_size), f.volumeSize);
    if (f.changed) {
      assert.notEqual(p.id, f.archiveId, `${where} changed: a new version`);
      assert.equal(rows.length, 2);
      const old = rows.find((r) => r.id === f.archiveId)!;
      assert.equal(old.present, false);
      assert.equal(old.canonical, false);
    } else {
      assert.equal(p.id, f.archiveId, `${where} unchanged: not re-versioned`);
      assert.equal(rows.length, 1);
    }
  }
  assert.equal(await count(url, "SELECT count(*) AS n FROM calcache"), 0);
  assert.equal(
    await count(url, "SELECT count(*) AS n FROM preview"),
    previewRows,
    "the archive's previews are gone, and only the preview worker makes new ones",
  );
}

const seedArgs = (
  world: SummitWorld,
  url: string,
  queue: string,
  storage: string,
  extra: string[] = [],
  from = world.dump,
) => [
  "--database-url",
  url,
  "--redis-url",
  testEnv().redisUrl,
  "--storage",
  storage,
  "--json",
  "summit",
  "seed-historic",
  "--from",
  from,
  "--site",
  "N",
  "--queue",
  queue,
  ...extra,
];

const ingest = (url: string, queue: string, env: Record<string, string> = {}) =>
  runCli(
    [
      "--database-url",
      url,
      "--redis-url",
      testEnv().redisUrl,
      "worker",
      "ingest",
      "--empty",
      "--queue",
      queue,
      "--name",
      "summit",
    ],
    env,
    { timeoutMs: 120_000 },
  );

describe("summit seed-historic", () => {
  it("seeds from a dump (dry run: from the live database) onto a disk volume: dry run writes nothing, then the real run and the workers leave exactly the volume present", async (t) => {
    const world = await summitWorld(t);
    const target = await testDatabase(t);
    const queue = uniqueQueueName("summit");
    const onVolume = world.files.filter((f) => f.onVolume);
    assert.ok(onVolume.length >= 3 && onVolume.some((f) => f.changed));
    assert.ok(world.files.some((f) => f.site === "S"));

    const dry = await runCli(
      // From the live archive database; the real run reads its dump.
      seedArgs(
        world,
        target.url,
        queue,
        world.volume,
        ["--dry-run", "--queue-previews"],
        world.archive.url,
      ),
      {},
      { timeoutMs: 120_000 },
    );
    assert.equal(dry.code, 0, dry.stderr);
    const dryReport = JSON.parse(dry.stdout) as SeedReport;
    assert.equal(dryReport.dryRun, true);
    for (const table of ["file", "diskfile", "header"]) {
      assert.equal(
        await count(target.url, `SELECT count(*) AS n FROM ${table}`),
        0,
        `dry run: ${table} stays empty`,
      );
    }
    assert.equal(
      await count(
        target.url,
        "SELECT count(*) AS n FROM fitsfleet.ingest_ledger",
      ),
      0,
    );

    const run = await runCli(
      seedArgs(world, target.url, queue, world.volume, ["--queue-previews"]),
      {},
      { timeoutMs: 120_000 },
    );
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as SeedReport;
    const steps = new Map(report.steps.map((s) => [s.step, s]));
    const total = world.files.length;
    assert.equal(steps.get("restore")!.details.diskfile, total);
    assert.equal(steps.get("truncate")!.details.preview, world.previews);
    assert.equal(steps.get("truncate")!.details.calcache, world.calcache);
    assert.equal(steps.get("rename")!.details.filename, total);
    assert.equal(steps.get("rename")!.details.compressed, total);
    assert.equal(steps.get("rename")!.details.fileMd5, total);
    assert.equal(steps.get("mark")!.count, total - onVolume.length);
    assert.equal(steps.get("mark")!.details.leftPresent, onVolume.length);
    assert.equal(steps.get("enqueue")!.details.queued, onVolume.length);
    // The dry run said the same, step by step.
    // (but for the jobs, which only a real enqueue cuts).
    const comparable = (r: SeedReport) =>
      r.steps.map((s) => {
        const { jobs: _jobs, ...details } = s.details;
        return [s.step, s.count, details];
      });
    assert.deepEqual(comparable(dryReport), comparable(report));
    assert.match(run.stderr, /"step":"rename"/, "steps are printed as they go");

    assert.equal(steps.get("previews")!.count, onVolume.length);
    const worker = await ingest(target.url, queue);
    assert.equal(worker.code, 0, worker.stderr);
    await checkSummit(target.url, world);

    // The queued previews, made by the preview worker for what is present.
    const previews = tempDir(t, "ff-summit-previews-");
    const rendered = await runCli(
      [
        "--database-url",
        target.url,
        "--storage",
        world.volume,
        "--previews",
        previews,
        "worker",
        "preview",
        "--empty",
        "--name",
        "summit",
      ],
      {},
      { timeoutMs: 120_000 },
    );
    assert.equal(rendered.code, 0, rendered.stderr);
    const unchanged = onVolume.filter((f) => !f.changed);
    for (const f of unchanged) {
      assert.equal(
        await count(
          target.url,
          "SELECT count(*) AS n FROM preview WHERE diskfile_id = $1",
          [f.archiveId],
        ),
        1,
        `${f.path}/${f.name}: a preview again`,
      );
    }

    // Seeding again into the now non-empty database is refused, untouched.
    const again = await runCli(
      seedArgs(world, target.url, uniqueQueueName("summit"), world.volume),
      {},
      { timeoutMs: 120_000 },
    );
    assert.equal(again.code, 3, again.stderr);
    assert.match(again.stderr, /not empty|not a fresh database/);
    await checkSummit(target.url, world, onVolume.length);
  });

  it("seeds from an s3:// copy of the dump onto an S3 volume, and with --force replaces what the target held", async (t) => {
    const world = await summitWorld(t, { perInstrument: 3 });
    const s3 = await testS3(t, "summit");
    // Some objects carry the md5 metadata the reference's upload sets, some do not.
    let i = 0;
    for (const f of world.files.filter((f) => f.onVolume)) {
      const body = readFileSync(join(world.volume, f.path, f.name));
      await s3.client.send(
        new PutObjectCommand({
          Bucket: "summit",
          Key: `vol/${f.path}/${f.name}`,
          Body: body,
          ...(i++ % 2 === 0 ? { Metadata: { md5: f.volumeMd5! } } : {}),
        }),
      );
    }
    const target = await testDatabase(t);
    // Leftovers a --force seeding must replace.
    await withClient(target.url, (c) =>
      c.query("INSERT INTO file (name) VALUES ('N19990101S0001.fits')"),
    );
    const queue = uniqueQueueName("summit-s3");
    const refused = await runCli(
      seedArgs(world, target.url, queue, "s3://summit/vol"),
      s3.env,
      { timeoutMs: 120_000 },
    );
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /not empty/);
    // The backup as an s3:// copy of the dump.
    await s3.client.send(
      new PutObjectCommand({
        Bucket: "summit",
        Key: "backups/archive.dump",
        Body: readFileSync(world.dump),
      }),
    );
    const run = await runCli(
      seedArgs(
        world,
        target.url,
        queue,
        "s3://summit/vol",
        ["--force"],
        "s3://summit/backups/archive.dump",
      ),
      s3.env,
      { timeoutMs: 120_000 },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      await count(
        target.url,
        "SELECT count(*) AS n FROM file WHERE name = 'N19990101S0001.fits'",
      ),
      0,
    );
    const worker = await ingest(target.url, queue, s3.env);
    assert.equal(worker.code, 0, worker.stderr);
    await checkSummit(target.url, world);
  });

  it("refuses bad flags and unreadable backups with clear errors, writing nothing", async (t) => {
    const target = await testDatabase(t);
    const base = [
      "--database-url",
      target.url,
      "--json",
      "summit",
      "seed-historic",
    ];
    const dir = tempDir(t, "ff-summit-bad-");
    const garbled = join(dir, "garbled.dump");
    writeFileSync(garbled, "PGDMP this is not really a dump\n".repeat(20));

    const site = await runCli([...base, "--from", garbled, "--site", "X"]);
    assert.equal(site.code, 2);
    assert.match(site.stderr, /--site/);

    const years = await runCli([
      ...base,
      "--from",
      garbled,
      "--site",
      "N",
      "--years",
      "20x9",
    ]);
    assert.equal(years.code, 2);
    assert.match(years.stderr, /--years/);

    const noWay = await runCli([...base, "--from", garbled]);
    assert.equal(noWay.code, 2, noWay.stderr);
    assert.match(noWay.stderr, /--site|--storage|--mark/);

    const missing = await runCli([
      ...base,
      "--from",
      join(dir, "nope.dump"),
      "--site",
      "N",
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.dump: no such file/);

    const bad = await runCli([...base, "--from", garbled, "--site", "N"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /garbled\.dump/);

    const unreachable = await runCli([
      ...base,
      "--from",
      "postgres://nobody@127.0.0.1:1/archive",
      "--site",
      "N",
    ]);
    assert.equal(unreachable.code, 4, unreachable.stderr);
    assert.match(unreachable.stderr, /127\.0\.0\.1:1/);

    assert.equal(await count(target.url, "SELECT count(*) AS n FROM file"), 0);
  });
});
