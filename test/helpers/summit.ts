/**
 * A summit seeding's world for tests: an archive of `.bz2` FITS files (made
 * from the Gemini header dumps, both sites, several instruments, nested
 * paths), ingested into an archive database by the real rebuild, given v2
 * preview names and a calibration cache, and dumped with pg_dump; and a
 * summit volume holding an uncompressed subset of one site's files, a few of
 * them changed since (a header value rewritten, same size).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";

import { dumpDatabase } from "../../fixtures/previous-version.js";
import { withClient } from "../../lib/db/connect.js";
import { createLogger } from "../../lib/logger.js";
import { enqueue } from "../../lib/rebuild/enqueue.js";
import { openStorage } from "../../lib/storage/index.js";
import { runIngestWorker } from "../../worker/ingest.js";
import { type TestDatabase, testDatabase, testEnv } from "./db.js";
import { loadHeaderDumps, writeDumpAsFits } from "./header-dumps.js";
import { uniqueQueueName } from "./queue.js";
import { tempDir } from "./tmp.js";

export interface SummitFile {
  path: string;
  /** The uncompressed name (file.name). */
  name: string;
  site: "N" | "S";
  /** On the summit volume. */
  onVolume: boolean;
  /** On the volume with bytes that differ from the archive's. */
  changed: boolean;
  /** The archive's diskfile id. */
  archiveId: number;
  /** md5 and size of the bytes on the volume (on-volume files only). */
  volumeMd5?: string;
  volumeSize?: number;
}

export interface SummitWorld {
  archive: TestDatabase;
  dump: string;
  volume: string;
  files: SummitFile[];
  /** The archive's preview and calcache row counts. */
  previews: number;
  calcache: number;
}

const md5 = (bytes: Buffer) => createHash("md5").update(bytes).digest("hex");

/** Rewrites the first character of the OBJECT value: same size, still FITS, other bytes. */
function changeBytes(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const at = copy.indexOf("OBJECT  = '", 0, "latin1");
  if (at < 0) {
    throw new Error("no OBJECT card to change");
  }
  const i = at + 11;
  copy[i] = copy[i] === 0x5a ? 0x59 : 0x5a; // Z, or Y if it was Z
  return copy;
}

export async function summitWorld(
  t: TestContext,
  options: { perInstrument?: number } = {},
): Promise<SummitWorld> {
  const perInstrument = options.perInstrument ?? 4;
  const archiveRoot = tempDir(t, "ff-summit-archive-");
  const volume = tempDir(t, "ff-summit-volume-");
  const counts = new Map<string, number>();
  const chosen: {
    path: string;
    name: string;
    site: "N" | "S";
    bytes: Buffer;
  }[] = [];
  const scratch = tempDir(t, "ff-summit-scratch-");
  for (const dump of loadHeaderDumps()) {
    const site = dump.fitsName[0];
    if (
      (site !== "N" && site !== "S") ||
      !/^[NS]20\d{6}S\d{4}\.fits$/.test(dump.fitsName)
    ) {
      continue;
    }
    const n = counts.get(dump.instrument) ?? 0;
    if (n >= perInstrument) {
      continue;
    }
    const file = join(scratch, dump.fitsName);
    writeDumpAsFits(dump, file);
    const bytes = readFileSync(file);
    if (bytes.indexOf("OBJECT  = '", 0, "latin1") < 0) {
      continue;
    }
    counts.set(dump.instrument, n + 1);
    chosen.push({
      path: `raw/${dump.instrument.toLowerCase()}`,
      name: dump.fitsName,
      site,
      bytes,
    });
  }
  for (const f of chosen) {
    const dir = join(archiveRoot, f.path);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, f.name), f.bytes);
    execFileSync("bzip2", ["-9", join(dir, f.name)]);
  }
  // The archive database, by the real rebuild of the .bz2 archive.
  const archive = await testDatabase(t);
  const storage = openStorage(archiveRoot);
  const queue = uniqueQueueName("summit-archive");
  try {
    await enqueue({
      databaseUrl: archive.url,
      redisUrl: testEnv().redisUrl,
      queue,
      storage,
      storageLocation: archiveRoot,
      batchSize: 10,
    });
  } finally {
    await storage.close();
  }
  await runIngestWorker({
    name: "archive",
    databaseUrl: archive.url,
    redisUrl: testEnv().redisUrl,
    queue,
    concurrency: 2,
    empty: true,
    fastRebuild: false,
    makePreviews: false,
    logger: createLogger({ level: "error" }),
  });
  const ids = await withClient(archive.url, async (c) => {
    // v2 preview names, and a calibration cache over the headers.
    await c.query(
      `INSERT INTO preview (diskfile_id, filename)
       SELECT id, filename || '_preview.jpg' FROM diskfile`,
    );
    await c.query(
      `INSERT INTO calcache (obs_hid, cal_hid, rank, caltype)
       SELECT a.id, b.id, 0, 'bias' FROM header a JOIN header b ON b.id <> a.id
        WHERE a.id % 3 = 0 LIMIT 40`,
    );
    const { rows } = await c.query<{
      id: number;
      path: string;
      filename: string;
      compressed: boolean;
    }>("SELECT id, path, filename, compressed FROM diskfile");
    return rows;
  });
  if (ids.length !== chosen.length || ids.some((r) => !r.compressed)) {
    throw new Error(
      `the archive rebuild ingested ${ids.length} of ${chosen.length} files`,
    );
  }
  const [previews, calcache] = await withClient(archive.url, async (c) => [
    Number((await c.query("SELECT count(*) AS n FROM preview")).rows[0].n),
    Number((await c.query("SELECT count(*) AS n FROM calcache")).rows[0].n),
  ]);
  const dumpPath = join(tempDir(t, "ff-summit-dump-"), "archive.dump");
  await dumpDatabase(archive.url, dumpPath, "custom");
  // The volume: site N's files but every third, every fourth one changed.
  const files: SummitFile[] = [];
  let northSeen = 0;
  for (const f of chosen) {
    const id = ids.find(
      (r) => r.path === f.path && r.filename === `${f.name}.bz2`,
    )!.id;
    let onVolume = false;
    let changed = false;
    if (f.site === "N") {
      northSeen++;
      onVolume = northSeen % 3 !== 0;
      changed = onVolume && northSeen % 4 === 1;
    }
    const file: SummitFile = {
      path: f.path,
      name: f.name,
      site: f.site,
      onVolume,
      changed,
      archiveId: id,
    };
    if (onVolume) {
      const bytes = changed ? changeBytes(f.bytes) : f.bytes;
      mkdirSync(join(volume, f.path), { recursive: true });
      writeFileSync(join(volume, f.path, f.name), bytes);
      file.volumeMd5 = md5(bytes);
      file.volumeSize = bytes.length;
    }
    files.push(file);
  }
  // Not FITS: listed, never ingested, and not a diskfile.
  writeFileSync(join(volume, "notes.txt"), "a summit log\n");
  return { archive, dump: dumpPath, volume, files, previews, calcache };
}
