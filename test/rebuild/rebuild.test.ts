/**
 * A rebuild end to end on real PostgreSQL, Redis and files: enqueue from a
 * storage folder, ingest with the worker, and check every row against what
 * the FITS core derives from the same files; then re-ingest, new versions,
 * replays and failures.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import { describeRebuildStatus } from "../../cli/commands/rebuild/status.js";
import { withClient } from "../../lib/db/connect.js";
import { Db } from "../../lib/db/pool.js";
import { readFitsFile } from "../../lib/fits/read.js";
import { archiveRows, HEADER_COLUMN_NAMES } from "../../lib/gemini/rows.js";
import { createLogger } from "../../lib/logger.js";
import { enqueue, type EnqueueOptions } from "../../lib/rebuild/enqueue.js";
import { ingestBatch, REBUILT_TABLES } from "../../lib/rebuild/ingest.js";
import { listFailures, rebuildStatus } from "../../lib/rebuild/ledger.js";
import { trimName } from "../../lib/rebuild/names.js";
import { openStorage } from "../../lib/storage/index.js";
import { runIngestWorker } from "../../worker/ingest.js";
import { testArchive } from "../helpers/archive.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { testS3 } from "../helpers/s3.js";

const logger = createLogger({ level: "error" });

async function setup(
  t: TestContext,
  options: { dumpsPerInstrument?: number } = {},
) {
  const archive = testArchive(t, options);
  const db = await testDatabase(t);
  const queue = uniqueQueueName("ingest");
  const storage = openStorage(archive.root);
  t.after(() => storage.close());
  const enqueueOptions = (
    extra: Partial<EnqueueOptions> = {},
  ): EnqueueOptions => ({
    databaseUrl: db.url,
    redisUrl: testEnv().redisUrl,
    queue,
    storage,
    storageLocation: archive.root,
    batchSize: 25,
    ...extra,
  });
  const work = (name = "w1", extra: { fastRebuild?: boolean } = {}) =>
    runIngestWorker({
      name,
      databaseUrl: db.url,
      redisUrl: testEnv().redisUrl,
      queue,
      concurrency: 2,
      empty: true,
      fastRebuild: extra.fastRebuild ?? false,
      makePreviews: false,
      logger,
    });
  return { archive, db, queue, storage, enqueueOptions, work };
}

const count = (url: string, sql: string, params: unknown[] = []) =>
  withClient(url, async (c) =>
    Number((await c.query<{ n: string }>(sql, params)).rows[0]!.n),
  );

/**
 * A derived value and the same column read back through to_jsonb: numbers
 * rounded to the column's scale, times and dates as ISO text without
 * trailing zeros in the fraction.
 */
function same(stored: unknown, derived: unknown): boolean {
  if (derived === null || stored === null) {
    return derived === stored;
  }
  if (typeof derived === "number") {
    return (
      Math.abs(Number(stored) - derived) <=
      1e-6 * Math.max(1, Math.abs(derived))
    );
  }
  if (
    typeof derived === "string" &&
    typeof stored === "string" &&
    /^(\d{4}-\d\d-\d\d|\d\d:\d\d)/.test(derived)
  ) {
    const trim = (x: string) =>
      x.replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
    return trim(stored) === trim(derived);
  }
  return stored === derived;
}

describe("rebuild", () => {
  it("enqueues every FITS file in storage, ingests them, and writes exactly the rows the FITS core derives", async (t) => {
    const { archive, db, enqueueOptions, work } = await setup(t);
    const dry = await enqueue(enqueueOptions({ dryRun: true }));
    const total = archive.good.length + archive.corrupt.length;
    assert.equal(dry.matched, total);
    assert.equal(dry.queued, total);
    assert.equal(
      await count(db.url, "SELECT count(*) AS n FROM fitsfleet.ingest_ledger"),
      0,
      "a dry run writes nothing",
    );

    const report = await enqueue(enqueueOptions());
    assert.equal(report.queued, total);
    assert.equal(
      report.listed,
      total + 2,
      "the preview and the temporary file are listed but not taken",
    );
    assert.equal(report.jobs, Math.ceil(total / 25));
    // Newest first: ledger ids follow the sort key.
    const order = await withClient(db.url, async (c) =>
      (
        await c.query<{ sortkey: string }>(
          "SELECT sortkey FROM fitsfleet.ingest_ledger ORDER BY id",
        )
      ).rows.map((r) => r.sortkey),
    );
    assert.deepEqual(order, [...order].sort().reverse());

    const summary = await work();
    assert.equal(summary.files, total);
    assert.equal(summary.outcomes.new, archive.good.length);
    assert.equal(summary.outcomes.failed, archive.corrupt.length);

    const status = await withClient(db.url, (c) => rebuildStatus(c));
    assert.equal(status.counts.done, archive.good.length);
    assert.equal(status.counts.failed, archive.corrupt.length);
    assert.equal(status.counts.queued + status.counts.active, 0);
    assert.equal(status.etaSeconds, 0);

    const failures = await withClient(db.url, (c) => listFailures(c));
    for (const bad of archive.corrupt) {
      const f = failures.failures.find((x) => x.filename === bad.name);
      assert.ok(f, `${bad.name} is listed as failed`);
      assert.match(f.error, bad.why, `${bad.name}: ${f.error}`);
      assert.match(f.error, new RegExp(bad.name.replace(/\./g, "\\.")));
      // The reason is the error without the file's name, which a list shows beside it.
      assert.equal(f.file, `${bad.path}/${bad.name}`);
      assert.match(f.reason, bad.why);
      assert.ok(!f.reason.includes(bad.name), f.reason);
    }

    await withClient(db.url, async (c) => {
      for (const file of archive.good) {
        const local = join(archive.root, file.path, file.name);
        const read = await readFitsFile(local);
        const rows = archiveRows(read.structure, trimName(file.name));
        const { rows: found } = await c.query(
          `SELECT f.name, d.*, h.id AS header_id, to_jsonb(h) AS header
             FROM diskfile d JOIN file f ON f.id = d.file_id JOIN header h ON h.diskfile_id = d.id
            WHERE d.path = $1 AND d.filename = $2`,
          [file.path, file.name],
        );
        assert.equal(
          found.length,
          1,
          `${file.name}: one diskfile with one header`,
        );
        const d = found[0] as Record<string, unknown> & {
          header: Record<string, unknown>;
        };
        assert.equal(d.name, trimName(file.name));
        assert.equal(d.present, true);
        assert.equal(d.canonical, true);
        assert.equal(d.file_md5, read.fileMd5);
        assert.equal(Number(d.file_size), read.fileSize);
        assert.equal(d.data_md5, read.dataMd5);
        assert.equal(Number(d.data_size), read.dataSize);
        assert.equal(d.compressed, file.name.endsWith(".bz2"));
        for (const column of HEADER_COLUMN_NAMES) {
          const derived = rows.header[column] ?? null;
          const stored = d.header[column] ?? null;
          assert.ok(
            same(stored, derived),
            `${file.name} header.${column}: stored ${JSON.stringify(stored)}, derived ${JSON.stringify(derived)}`,
          );
        }
        for (const inst of rows.instrument) {
          const { rows: stored } = await c.query(
            `SELECT to_jsonb(i) AS row FROM "${inst.table}" i WHERE header_id = $1`,
            [d.header_id],
          );
          assert.equal(stored.length, 1, `${file.name}: one ${inst.table} row`);
          for (const [column, value] of Object.entries(inst.values)) {
            assert.ok(
              same(
                (stored[0] as { row: Record<string, unknown> }).row[column] ??
                  null,
                value,
              ),
              `${file.name} ${inst.table}.${column}`,
            );
          }
        }
      }
      // A calibration-cache work item per ingested file (previews: test/preview).
      assert.equal(
        await count(db.url, "SELECT count(*) AS n FROM calcachequeue"),
        archive.good.length,
      );
    });
  });

  it("the rate: over the run's last minutes of work once nothing remains, however long ago; over the last minutes while work remains; and over the whole run", async (t) => {
    const { db, enqueueOptions, work } = await setup(t, {
      dumpsPerInstrument: 1,
    });
    const status = (windowMinutes = 5) =>
      withClient(db.url, (c) => rebuildStatus(c, windowMinutes));
    const empty = await status();
    assert.equal(empty.windowEnd, "now");
    assert.equal(empty.filesPerSecond, 0);
    assert.equal(empty.runFilesPerSecond, 0);
    await enqueue(enqueueOptions());
    await work("w1");
    // A timeline set by hand: the k-th file (by id) finished k × 40 s before
    // `ago` seconds ago, after a minute's work. In a 5-minute window ending
    // at the last finish: k = 0…7, their work spanning more than the window;
    // no finish is within 20 s of the window's start.
    const timeline = (ago: number) =>
      withClient(db.url, (c) =>
        c.query(
          `UPDATE fitsfleet.ingest_ledger AS l
              SET finished_at = now() - make_interval(secs => $1 + 40 * o.k),
                  started_at = now() - make_interval(secs => $1 + 40 * o.k + 60)
             FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k
                     FROM fitsfleet.ingest_ledger) AS o
            WHERE l.id = o.id`,
          [ago],
        ),
      );
    const n = await count(
      db.url,
      "SELECT count(*) AS n FROM fitsfleet.ingest_ledger",
    );
    assert.ok(n >= 11, `${n} files`);
    const close = (actual: number, expected: number, what: string) =>
      assert.ok(
        Math.abs(actual - expected) < 1e-9,
        `${what}: ${actual}, expected ${expected}`,
      );

    // Finished three days ago: the rate the run had, not one decayed to 0.
    await timeline(3 * 86_400);
    const finished = await status();
    assert.equal(finished.windowEnd, "lastFinish");
    close(finished.filesPerSecond, 8 / 300, "window");
    close(finished.runFilesPerSecond, n / (40 * (n - 1) + 60), "run");
    assert.equal(finished.etaSeconds, 0);
    assert.deepEqual(
      finished.workers.map((w) => [w.worker, w.active, w.recent]),
      [["w1", 0, 8]],
    );
    const text = describeRebuildStatus(finished);
    assert.match(
      text,
      /rate: 0\.027 files\/s over the run's last 5 min of work, 0\.0\d\d files\/s over the whole run;/,
    );
    close((await status(1)).filesPerSecond, 2 / 60, "a 1-minute window");

    // In progress: the window ends now. The newest file is queued again; the
    // finish of its earlier run is not one of this run's.
    await timeline(0);
    await withClient(db.url, (c) =>
      c.query(
        `UPDATE fitsfleet.ingest_ledger SET state = 'queued'
          WHERE id = (SELECT min(id) FROM fitsfleet.ingest_ledger)`,
      ),
    );
    const running = await status();
    assert.equal(running.windowEnd, "now");
    close(running.filesPerSecond, 7 / 300, "window");
    close(running.runFilesPerSecond, (n - 1) / (40 * (n - 2) + 60), "run");
    close(running.etaSeconds ?? 0, 1 / (7 / 300), "ETA");
    assert.equal(running.workers[0]?.recent, 7);
    assert.match(
      describeRebuildStatus(running),
      /rate: 0\.023 files\/s over the last 5 min, 0\.0\d\d files\/s over the whole run;/,
    );
  });

  it("enqueues from S3 and ingests from there; the stored md5 metadata makes a re-ingest a no-op without reading", async (t) => {
    const archive = testArchive(t, { dumpsPerInstrument: 2 });
    const s3 = await testS3(t);
    const location = `s3://${s3.bucket}/raw`;
    const storage = openStorage(location, { s3Endpoint: s3.endpoint });
    t.after(() => storage.close());
    for (const file of [...archive.good, ...archive.corrupt]) {
      const bytes = readFileSync(join(archive.root, file.path, file.name));
      const md5 = createHash("md5").update(bytes).digest("hex");
      await storage.write(file.path, file.name, bytes, { md5 });
    }
    const db = await testDatabase(t);
    const queue = uniqueQueueName("s3");
    const options = {
      databaseUrl: db.url,
      redisUrl: testEnv().redisUrl,
      queue,
      storage,
      storageLocation: location,
    };
    const first = await enqueue(options);
    assert.equal(first.queued, archive.good.length + archive.corrupt.length);
    const worker = (name: string) =>
      runIngestWorker({
        name,
        databaseUrl: db.url,
        redisUrl: testEnv().redisUrl,
        queue,
        concurrency: 2,
        empty: true,
        fastRebuild: false,
        makePreviews: false,
        s3Endpoint: s3.endpoint,
        logger,
      });
    const done = await worker("s3-1");
    assert.equal(done.outcomes.new, archive.good.length);
    assert.equal(done.outcomes.failed, archive.corrupt.length);
    const md5s = await withClient(
      db.url,
      async (c) =>
        (
          await c.query<{ path: string; filename: string; file_md5: string }>(
            "SELECT path, filename, file_md5 FROM diskfile",
          )
        ).rows,
    );
    for (const file of archive.good) {
      const local = createHash("md5")
        .update(readFileSync(join(archive.root, file.path, file.name)))
        .digest("hex");
      assert.equal(
        md5s.find((m) => m.path === file.path && m.filename === file.name)
          ?.file_md5,
        local,
      );
    }
    // Re-uploaded with a new time but the same stored md5: the reference trusts the
    // object's md5 metadata, so the file is unchanged without being read, even
    // though these bytes (deliberately) differ.
    const target = archive.good.find((g) => g.name.endsWith(".fits"))!;
    const original = readFileSync(join(archive.root, target.path, target.name));
    const md5 = createHash("md5").update(original).digest("hex");
    const altered = Buffer.from(original);
    altered.write("X", altered.length - 1, "latin1");
    await storage.write(target.path, target.name, altered, { md5 });
    const again = await enqueue(options);
    assert.equal(again.requeued, 1 + archive.corrupt.length);
    const second = await worker("s3-2");
    assert.equal(second.outcomes.unchanged, 1);
    assert.equal(second.outcomes["new version"], 0);
    // Forced: the bytes are read, and the difference makes a new version.
    await enqueue({
      ...options,
      force: true,
      filename: `${target.path}/${target.name}`,
    });
    const third = await worker("s3-3");
    assert.equal(third.outcomes.new + third.outcomes["new version"], 1);
    assert.equal(
      await count(db.url, "SELECT count(*) AS n FROM diskfile WHERE present"),
      archive.good.length,
    );
  });

  it("re-ingesting an unchanged file changes nothing; a changed file becomes a new version", async (t) => {
    const { archive, db, enqueueOptions, work } = await setup(t, {
      dumpsPerInstrument: 2,
    });
    await enqueue(enqueueOptions());
    await work();
    const snapshot = () =>
      withClient(db.url, async (c) =>
        JSON.stringify(
          (
            await c.query(
              `SELECT d.id, d.present, d.canonical, d.file_md5, h.id AS hid
                 FROM diskfile d LEFT JOIN header h ON h.diskfile_id = d.id ORDER BY d.id`,
            )
          ).rows,
        ),
      );
    const before = await snapshot();

    // The same listing again: nothing new; only the failed files are tried again.
    const again = await enqueue(enqueueOptions());
    assert.equal(again.queued, 0);
    assert.equal(again.requeued, archive.corrupt.length);
    assert.equal(again.unchanged, again.matched - archive.corrupt.length);

    // Forced to compare checksums: every good file is read again and found unchanged.
    const forced = await enqueue(enqueueOptions({ forceMd5: true }));
    assert.equal(forced.requeued, archive.good.length);
    const second = await work("w2");
    assert.equal(second.outcomes.unchanged, archive.good.length);
    assert.equal(second.outcomes.failed, archive.corrupt.length);
    assert.equal(second.outcomes.new + second.outcomes["new version"], 0);
    assert.equal(await snapshot(), before, "no row was added or changed");

    // A changed file (new bytes, new time): a new diskfile; the old one stays, neither present nor canonical.
    const target = archive.good.find(
      (g) => g.name.endsWith(".fits") && g.path.startsWith("dumps"),
    )!;
    const local = join(archive.root, target.path, target.name);
    const bytes = readFileSync(local);
    const card = bytes.indexOf("OBJECT  = ");
    assert.ok(card > 0);
    bytes.write("OBJECT  = 'changed'".padEnd(80), card, "latin1");
    writeFileSync(local, bytes);
    utimesSync(local, new Date(), new Date(Date.now() + 60_000));
    const changed = await enqueue(enqueueOptions());
    assert.equal(changed.requeued, 1 + archive.corrupt.length);
    const third = await work("w3");
    assert.equal(third.outcomes["new version"], 1);
    const versions = await withClient(
      db.url,
      async (c) =>
        (
          await c.query<{
            present: boolean;
            canonical: boolean;
            object: string;
          }>(
            `SELECT d.present, d.canonical, h.object FROM diskfile d JOIN header h ON h.diskfile_id = d.id
            WHERE d.filename = $1 ORDER BY d.id`,
            [target.name],
          )
        ).rows,
    );
    assert.equal(versions.length, 2);
    assert.deepEqual(
      versions.map((v) => [v.present, v.canonical]),
      [
        [false, false],
        [true, true],
      ],
    );
    assert.equal(versions[1]!.object, "changed");
    assert.equal(
      await count(db.url, "SELECT count(*) AS n FROM file WHERE name = $1", [
        trimName(target.name),
      ]),
      1,
    );
  });

  it("a batch delivered twice leaves the same rows (at-least-once delivery, exactly-once effects)", async (t) => {
    for (const fastRebuild of [false, true]) {
      const { db, enqueueOptions, storage } = await setup(t, {
        dumpsPerInstrument: 2,
      });
      await enqueue(enqueueOptions({ redisUrl: testEnv().redisUrl }));
      const ids = await withClient(db.url, async (c) =>
        (
          await c.query<{ id: string }>(
            "SELECT id::text FROM fitsfleet.ingest_ledger ORDER BY id",
          )
        ).rows.map((r) => Number(r.id)),
      );
      const ctx = {
        storage: () => storage,
        worker: "replay",
        fastRebuild,
        makePreviews: false,
        logger,
      };
      const tables = [...REBUILT_TABLES, "calcachequeue"];
      const counts = async () =>
        Object.fromEntries(
          await Promise.all(
            tables.map(async (x) => [
              x,
              await count(db.url, `SELECT count(*) AS n FROM ${x}`),
            ]),
          ),
        );
      const pool = new Db(db.url, { applicationName: "test", max: 2 });
      t.after(() => pool.end());
      await ingestBatch(pool, ctx, ids);
      const first = await counts();
      assert.ok(first.diskfile > 0);
      // The acknowledgement was lost: the same job arrives again.
      const again = await ingestBatch(pool, ctx, ids);
      assert.equal(again.claimed, 0, "done rows are not claimed again");
      // The commit went through but the worker died before the ledger said so: the ledger is replayed.
      await withClient(db.url, (c) =>
        c.query(
          "UPDATE fitsfleet.ingest_ledger SET state = 'active' WHERE state = 'done'",
        ),
      );
      const replay = await ingestBatch(
        pool,
        { ...ctx, fastRebuild: false },
        ids,
      );
      assert.equal(
        replay.outcomes.new + replay.outcomes["new version"],
        0,
        `fastRebuild ${fastRebuild}`,
      );
      assert.deepEqual(
        await counts(),
        first,
        `fastRebuild ${fastRebuild}: the same rows`,
      );
    }
  });

  it("a file that went away after it was queued fails with that reason, with or without --fast-rebuild", async (t) => {
    for (const fastRebuild of [true, false]) {
      const { archive, db, enqueueOptions, work } = await setup(t, {
        dumpsPerInstrument: 1,
      });
      await enqueue(enqueueOptions());
      const gone = [
        archive.good.find((f) => f.name.endsWith(".fits"))!,
        archive.good.find((f) => f.name.endsWith(".bz2"))!,
      ];
      for (const f of gone) {
        rmSync(join(archive.root, f.path, f.name));
      }
      const summary = await work(`gone-${fastRebuild}`, { fastRebuild });
      assert.equal(summary.outcomes.failed, archive.corrupt.length + 2);
      const { failures } = await withClient(db.url, (c) => listFailures(c));
      for (const f of gone) {
        const failure = failures.find((x) => x.filename === f.name);
        assert.ok(failure, `${f.name} failed`);
        assert.match(
          failure.error,
          /cannot access .* no such file/,
          `fastRebuild ${fastRebuild}`,
        );
        assert.match(
          failure.reason,
          /^cannot access the file in .*: no such file$/,
        );
      }
    }
  });
});
