/**
 * Previews in a rebuild, on real PostgreSQL, Redis, files and s3rver:
 * `worker ingest --make-previews` renders from the copy in hand, the preview
 * worker works through `previewqueue` with the reference's force and scavenge
 * rules, and every JPEG is checked by decoding it.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import sharp from "sharp";

import { withClient } from "../../lib/db/connect.js";
import { createLogger } from "../../lib/logger.js";
import { previewName } from "../../lib/preview/store.js";
import { enqueue } from "../../lib/rebuild/enqueue.js";
import { openStorage, type Storage } from "../../lib/storage/index.js";
import { runIngestWorker } from "../../worker/ingest.js";
import { runPreviewWorker } from "../../worker/preview.js";
import { testArchive } from "../helpers/archive.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { testS3 } from "../helpers/s3.js";
import { tempDir } from "../helpers/tmp.js";

const logger = createLogger({ level: "error" });
/** Small pictures keep the tests quick; the size flag is tested on its own. */
const render = { width: 160, height: 120, threads: 2 };

/** The Gemini fixtures with pixels (GMOS mosaics, F2); the IGRINS-2 ones have no image data. */
const hasPicture = (name: string) => !name.startsWith("igrins2");

async function ingest(
  t: TestContext,
  options: {
    makePreviews: boolean;
    fastRebuild?: boolean;
    storage?: { location: string; storage: Storage; s3Endpoint?: string };
    previews?: string;
  },
) {
  const archive = testArchive(t, { dumpsPerInstrument: 0 });
  const db = await testDatabase(t);
  const queue = uniqueQueueName("preview");
  const location = options.storage?.location ?? archive.root;
  const storage = options.storage?.storage ?? openStorage(archive.root);
  t.after(() => storage.close());
  const run = async (name: string, fastRebuild: boolean) => {
    await enqueue({
      databaseUrl: db.url,
      redisUrl: testEnv().redisUrl,
      queue,
      storage,
      storageLocation: location,
      batchSize: 5,
    });
    return runIngestWorker({
      name,
      databaseUrl: db.url,
      redisUrl: testEnv().redisUrl,
      queue,
      concurrency: 2,
      empty: true,
      fastRebuild,
      makePreviews: options.makePreviews,
      previews: options.previews,
      render,
      s3Endpoint: options.storage?.s3Endpoint,
      logger,
    });
  };
  return { archive, db, storage, location, run };
}

async function rows<T>(url: string, sql: string, params: unknown[] = []) {
  return withClient(url, async (c) => (await c.query(sql, params)).rows as T[]);
}

async function jpegSize(bytes: Buffer): Promise<string> {
  const meta = await sharp(bytes).metadata();
  assert.equal(meta.format, "jpeg");
  return `${meta.width}x${meta.height}`;
}

interface PreviewRow {
  diskfile_id: number;
  filename: string;
  path: string;
  diskfile: string;
}

const previewRows = (url: string) =>
  rows<PreviewRow>(
    url,
    `SELECT p.diskfile_id, p.filename, d.path, d.filename AS diskfile
       FROM preview p JOIN diskfile d ON d.id = p.diskfile_id
      ORDER BY p.filename`,
  );

describe("previews", () => {
  it("ingest --make-previews renders every file's preview from the copy in hand; files without a picture get no row", async (t) => {
    const { archive, db, run } = await ingest(t, { makePreviews: true });
    const summary = await run("p1", true);
    assert.equal(summary.outcomes.new, archive.good.length);
    const found = await previewRows(db.url);
    const expected = archive.good.filter((f) => hasPicture(f.name));
    assert.ok(expected.length >= 8, "GMOS and F2 fixtures");
    assert.deepEqual(
      found.map((r) => r.filename),
      expected.map((f) => previewName(f.path, f.name)).sort(),
    );
    for (const row of found) {
      assert.equal(row.filename, previewName(row.path, row.diskfile));
      const jpeg = readFileSync(join(archive.root, "previews", row.filename));
      assert.equal(await jpegSize(jpeg), "160x120", row.filename);
    }
    for (const f of archive.good.filter((g) => !hasPicture(g.name))) {
      assert.ok(
        !existsSync(
          join(archive.root, "previews", previewName(f.path, f.name)),
        ),
      );
    }
    // Nothing was left for the preview worker.
    const [queued] = await rows<{ n: string }>(
      db.url,
      "SELECT count(*) AS n FROM previewqueue",
    );
    assert.equal(queued!.n, "0");
  });

  it("a preview that cannot be stored goes to the preview queue with its reason; the file is still ingested", async (t) => {
    // The previews location is a plain file: every write under it fails.
    const blocked = join(tempDir(t, "ff-blocked-"), "previews");
    writeFileSync(blocked, "not a folder");
    const { archive, db, run } = await ingest(t, {
      makePreviews: true,
      previews: blocked,
    });
    const summary = await run("p1", true);
    assert.equal(summary.outcomes.new, archive.good.length);
    const queued = await rows<{ filename: string; error: string | null }>(
      db.url,
      "SELECT filename, error FROM previewqueue ORDER BY filename",
    );
    const pictures = archive.good.filter((f) => hasPicture(f.name));
    assert.equal(queued.length, pictures.length);
    for (const row of queued) {
      assert.match(row.error ?? "", /previews/, row.filename);
    }
  });

  it("keeps an existing preview in a rebuild, and renders again for a new version of the file", async (t) => {
    const { archive, db, run } = await ingest(t, { makePreviews: true });
    const file = archive.good.find((f) => f.name.includes("HAM_44_12amp"))!;
    const name = previewName(file.path, file.name);
    const target = join(archive.root, "previews", name);
    const stale = Buffer.from("a preview from before the rebuild");
    await openStorage(join(archive.root, "previews")).write(
      file.path,
      name.split("/").pop()!,
      stale,
    );
    await run("p1", true);
    assert.ok(readFileSync(target).equals(stale), "kept, not rendered again");
    assert.ok((await previewRows(db.url)).some((r) => r.filename === name));

    // A changed file is a new version: its old preview no longer shows it.
    const other = archive.good.find((f) => f.name.includes("EEV_22_3amp"))!;
    const path = join(archive.root, file.path, file.name);
    copyFileSync(join(archive.root, other.path, other.name), path);
    const later = new Date(statSync(path).mtimeMs + 60_000);
    utimesSync(path, later, later);
    const again = await run("p2", false);
    assert.equal(again.outcomes["new version"], 1);
    const fresh = readFileSync(target);
    assert.ok(!fresh.equals(stale));
    assert.equal(await jpegSize(fresh), "160x120");
    const mine = (await previewRows(db.url)).filter((r) => r.filename === name);
    // The old version keeps its row, as its header does; the new one has its own.
    const [present] = await rows<{ id: number }>(
      db.url,
      "SELECT id FROM diskfile WHERE filename = $1 AND present",
      [file.name],
    );
    assert.ok(mine.some((r) => r.diskfile_id === present!.id));
  });

  it("from S3: previews are written to S3 with their md5, from a staged copy that is removed", async (t) => {
    const s3 = await testS3(t);
    const location = `s3://${s3.bucket}/raw`;
    const storage = openStorage(location, { s3Endpoint: s3.endpoint });
    const local = testArchive(t, { dumpsPerInstrument: 0 });
    for (const file of local.good) {
      const bytes = readFileSync(join(local.root, file.path, file.name));
      await storage.write(file.path, file.name, bytes, {
        md5: createHash("md5").update(bytes).digest("hex"),
      });
    }
    const { db, run } = await ingest(t, {
      makePreviews: true,
      storage: { location, storage, s3Endpoint: s3.endpoint },
    });
    await run("s3", true);
    const previews = openStorage(`${location}/previews`, {
      s3Endpoint: s3.endpoint,
    });
    t.after(() => previews.close());
    const found = await previewRows(db.url);
    assert.equal(
      found.length,
      local.good.filter((f) => hasPicture(f.name)).length,
    );
    for (const row of found) {
      const dir = row.filename.slice(0, row.filename.lastIndexOf("/"));
      const base = row.filename.slice(row.filename.lastIndexOf("/") + 1);
      const entry = await previews.stat(dir, base);
      assert.ok(entry !== undefined, row.filename);
      const chunks: Buffer[] = [];
      for await (const c of await previews.read(dir, base)) {
        chunks.push(c as Buffer);
      }
      const jpeg = Buffer.concat(chunks);
      assert.equal(entry.md5, createHash("md5").update(jpeg).digest("hex"));
      assert.equal(await jpegSize(jpeg), "160x120");
    }
  });

  it("the preview worker: renders the queue, keeps unless forced, scavenges only what exists, fails a damaged file alone, and a rerun changes nothing", async (t) => {
    const { archive, db, run } = await ingest(t, { makePreviews: false });
    await run("i1", true);
    const queue = async (
      where: string,
      flags: { force?: boolean; scavengeonly?: boolean } = {},
      params: unknown[] = [],
    ) =>
      withClient(db.url, (c) =>
        c.query(
          `INSERT INTO previewqueue (diskfile_id, filename, inprogress, fail_dt, force, scavengeonly, sortkey)
           SELECT id, filename, false, '9999-12-31 23:59:59.999999', $1, $2, filename
             FROM diskfile WHERE ${where}`,
          [flags.force ?? false, flags.scavengeonly ?? false, ...params],
        ),
      );
    const work = (name: string) =>
      runPreviewWorker({
        name,
        databaseUrl: db.url,
        concurrency: 2,
        batchSize: 3,
        empty: true,
        render,
        logger,
      });

    // Everything, by two workers at once.
    await queue("present");
    const [a, b] = await Promise.all([work("w1"), work("w2")]);
    const pictures = archive.good.filter((f) => hasPicture(f.name));
    assert.equal(a.outcomes.made + b.outcomes.made, pictures.length);
    assert.equal(
      a.outcomes.none + b.outcomes.none,
      archive.good.length - pictures.length,
    );
    const first = await previewRows(db.url);
    assert.equal(first.length, pictures.length);
    assert.equal(new Set(first.map((r) => r.diskfile_id)).size, first.length);

    // A rerun of the same work: kept, the same rows.
    await queue("present");
    const rerun = await work("w3");
    assert.equal(rerun.outcomes.made, 0);
    assert.equal(rerun.outcomes.kept, pictures.length);
    assert.deepEqual(await previewRows(db.url), first);

    // Force renders again; scavenging records only what exists.
    const [forced, gone, kept] = pictures;
    const dir = join(archive.root, "previews");
    const path = (f: { path: string; name: string }) =>
      join(dir, previewName(f.path, f.name));
    writeFileSync(path(forced!), "stale");
    writeFileSync(path(kept!), "stale too");
    rmSync(path(gone!));
    await queue("filename = $3", { force: true }, [forced!.name]);
    await queue("filename = ANY($3)", { scavengeonly: true }, [
      [gone!.name, kept!.name],
    ]);
    const third = await work("w4");
    assert.deepEqual(
      { made: third.outcomes.made, kept: third.outcomes.kept },
      { made: 1, kept: 1 },
    );
    assert.equal(third.outcomes.missing, 1);
    assert.equal(await jpegSize(readFileSync(path(forced!))), "160x120");
    assert.equal(readFileSync(path(kept!), "utf8"), "stale too");
    const names = (await previewRows(db.url)).map((r) => r.filename);
    assert.ok(!names.includes(previewName(gone!.path, gone!.name)));
    assert.ok(names.includes(previewName(kept!.path, kept!.name)));

    // A damaged file fails alone, with its reason; the others in its batch are done.
    const damaged = pictures[3]!;
    const bytes = readFileSync(join(archive.root, damaged.path, damaged.name));
    writeFileSync(
      join(archive.root, damaged.path, damaged.name),
      bytes.subarray(0, Math.floor(bytes.length / 2)),
    );
    await queue("filename = ANY($3)", { force: true }, [
      [damaged.name, pictures[4]!.name, pictures[5]!.name],
    ]);
    const fourth = await work("w5");
    assert.equal(fourth.outcomes.failed, 1);
    assert.equal(fourth.outcomes.made, 2);
    const left = await rows<{ filename: string; error: string }>(
      db.url,
      "SELECT filename, error FROM previewqueue",
    );
    assert.equal(left.length, 1);
    assert.equal(left[0]!.filename, damaged.name);
    assert.match(left[0]!.error, new RegExp(damaged.name.replace(".", "\\.")));
    assert.match(left[0]!.error, /truncated|decompress/);
  });

  it("the CLI: worker preview --empty prints its summary; a bad rendering flag is a usage error naming it", async (t) => {
    const db = await testDatabase(t);
    const ok = await runCli(
      ["worker", "preview", "--empty", "--storage", "/nonexistent"],
      { FITSFLEET_DATABASE_URL: db.url },
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /worker 1: 0 preview\(s\) in 0 batch\(es\)/);
    const bad = await runCli(
      [
        "worker",
        "preview",
        "--empty",
        "--preview-size",
        "10",
        "--preview-quality",
        "0",
      ],
      { FITSFLEET_DATABASE_URL: db.url },
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--preview-size 10: WIDTHxHEIGHT/);
    assert.match(bad.stderr, /--preview-quality 0/);
  });
});
