/**
 * Ingest throughput: 2 local fitsfleet workers (`worker ingest --fast-rebuild`)
 * against the reference's way (bench/native/reference-ingest.py: Python,
 * Debian's astropy and psycopg2, one file at a time, one commit per file) and
 * against the machine's floor (md5sum, and `lbzip2 -dc | md5sum` for .bz2,
 * two at a time on both cores), in the same run, on the same files, on one
 * throwaway stack with PostgreSQL's default durability (fsync on).
 *
 * Three corpora of synthetic Gemini files (fixtures/synthetic):
 * - small: full headers, data units of tens of KB, uncompressed: header work
 *   and database round trips dominate;
 * - mixed: the same with 30% .fits.bz2, where bzip2 decoding weighs in;
 * - fits: full-size detector data, uncompressed;
 * - bz2: full-size detector data, .fits.bz2.
 * Full-size files are tens of MB each, so those corpora hold --distinct
 * generated files, each hard-linked under --files/--distinct archive names
 * (another date): every name is ingested from its own bytes, but the disk
 * holds only the distinct ones and the page cache keeps them all. Every
 * contender reads from a warm page cache.
 * And one corpus of real files:
 * - gemini: the eight Gemini .fits.bz2 fixtures (shared/fixtures/fits/gemini,
 *   real GMOS-N, GMOS-S and F2 headers over bad-pixel masks), 3 to 14 MB of
 *   FITS each from 11 to 27 KB stored: about 500:1, so decompression output,
 *   not input, and the per-file costs dominate. Hard-linked under
 *   --gemini-names archive names of the file's site, on successive nights
 *   (names drive the sort keys and so the order of ingest).
 *
 * --rounds N runs the three contenders N times on each corpus, taking turns
 * (floor, fitsfleet, baseline, then again), and reports each one's median:
 * on a shared machine the load changes over minutes, and turns spread it.
 *
 * Database round trips per file are counted with pg_stat_statements (every
 * statement, BEGIN and COMMIT included, over the files ingested).
 *
 * Usage: node --import tsx bench/rebuild-ingest.ts
 *   [--files 5000] [--distinct 100] [--corpus small,mixed,fits,bz2,gemini]
 *   [--gemini-names 720] [--rounds 1]
 *   [--baseline-files N] (the baseline on the first N names; default all)
 *   [--corpus-dir DIR] (kept and reused between runs; default under /tmp)
 *   [--plain] (also run the workers without --fast-rebuild)
 *   [--statements] (print the most frequent statements of each run)
 *   [--skip-build] (the workers run dist/ as it is)
 * Needs: lbzip2, bzip2, Debian's python3-astropy and python3-psycopg2.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { writeSyntheticArchive } from "../fixtures/synthetic/archive.js";
import { runLocalWorkers } from "../infra/local.js";
import { clientProgramConnection } from "../lib/db/client-programs.js";
import { withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { packageRoot } from "../lib/paths.js";
import { enqueue } from "../lib/rebuild/enqueue.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import { openStorage } from "../lib/storage/index.js";

type CorpusName = "small" | "mixed" | "fits" | "bz2" | "gemini";

const { values } = parseArgs({
  options: {
    files: { type: "string", default: "5000" },
    distinct: { type: "string", default: "100" },
    corpus: { type: "string", default: "small,mixed,fits,bz2" },
    "baseline-files": { type: "string" },
    "gemini-names": { type: "string", default: "720" },
    rounds: { type: "string", default: "1" },
    "corpus-dir": {
      type: "string",
      default: join(tmpdir(), "fitsfleet-bench-ingest-corpora"),
    },
    plain: { type: "boolean", default: false },
    statements: { type: "boolean", default: false },
    "skip-build": { type: "boolean", default: false },
  },
});
const files = Number(values.files);
const geminiNames = Number(values["gemini-names"]);
const rounds = Number(values.rounds);
const distinct = Number(values.distinct);
const corpora = values.corpus.split(",") as CorpusName[];
const baselineFiles =
  values["baseline-files"] === undefined
    ? undefined
    : Number(values["baseline-files"]);
const PYTHON = "/usr/bin/python3";
const WORKERS = 2;

interface Corpus {
  name: CorpusName;
  dir: string;
  /** Paths relative to dir, newest first as the archive sorts them. */
  names: string[];
  storedBytes: number;
}

/** Full-size and real corpora are hard links to a few distinct files. */
function linkedCorpus(name: CorpusName): boolean {
  return name === "fits" || name === "bz2" || name === "gemini";
}

const GEMINI_FIXTURES = join(
  packageRoot(),
  "..",
  "shared",
  "fixtures",
  "fits",
  "gemini",
);

/** The site letter of a fixture's archive names: GMOS-N is at Gemini North, the rest at Gemini South. */
function geminiSite(fixture: string): "N" | "S" {
  return fixture.startsWith("gmos-n") ? "N" : "S";
}

/**
 * `count` archive names for the fixtures, in turns (each fixture once a
 * night), as a night at each site numbers its frames: N20240601S0101, …
 */
function geminiCorpusNames(
  fixtures: string[],
  count: number,
): [fixture: string, name: string][] {
  const names: [string, string][] = [];
  const first = Date.UTC(2024, 5, 1);
  for (let night = 0; names.length < count; night++) {
    const date = new Date(first - night * 86_400_000)
      .toISOString()
      .slice(0, 10)
      .replaceAll("-", "");
    const frames = { N: 100, S: 100 };
    for (const fixture of fixtures) {
      if (names.length === count) {
        break;
      }
      const site = geminiSite(fixture);
      const frame = ++frames[site];
      names.push([
        fixture,
        `${site}${date}S${String(frame).padStart(4, "0")}.fits.bz2`,
      ]);
    }
  }
  return names;
}

/** The same file name on a night `k` days earlier. */
function renamed(name: string, k: number): string {
  const m = /^([NS])(\d{8})(S\d{4}\.fits(?:\.bz2)?)$/.exec(name);
  if (m === null) {
    throw new Error(`unexpected synthetic name ${name}`);
  }
  const [, site, date, rest] = m;
  const day = Date.UTC(
    Number(date!.slice(0, 4)),
    Number(date!.slice(4, 6)) - 1,
    Number(date!.slice(6, 8)),
  );
  const shifted = new Date(day - k * 86_400_000)
    .toISOString()
    .slice(0, 10)
    .replaceAll("-", "");
  return `${site}${shifted}${rest}`;
}

async function makeCorpus(name: CorpusName): Promise<Corpus> {
  const linked = linkedCorpus(name);
  const dir = join(
    values["corpus-dir"],
    name === "gemini"
      ? `${name}-${geminiNames}`
      : linked
        ? `${name}-${files}-${distinct}`
        : `${name}-${files}`,
  );
  const done = join(dir, ".complete");
  if (!existsSync(done)) {
    rmSync(dir, { recursive: true, force: true });
    const t = performance.now();
    if (name === "gemini") {
      // Copies first: links to the shared folder would cross file systems.
      const originals = `${dir}.originals`;
      rmSync(originals, { recursive: true, force: true });
      mkdirSync(originals, { recursive: true });
      const fixtures = readdirSync(GEMINI_FIXTURES)
        .filter((f) => f.endsWith(".fits.bz2"))
        .sort();
      for (const f of fixtures) {
        copyFileSync(join(GEMINI_FIXTURES, f), join(originals, f));
      }
      mkdirSync(dir, { recursive: true });
      for (const [fixture, archiveName] of geminiCorpusNames(
        fixtures,
        geminiNames,
      )) {
        linkSync(join(originals, fixture), join(dir, archiveName));
      }
    } else if (!linked) {
      await writeSyntheticArchive(dir, {
        files,
        dataScale: "small",
        compressedFraction: name === "small" ? 0 : 0.3,
        corrupt: 0,
      });
    } else {
      const originals = `${dir}.originals`;
      rmSync(originals, { recursive: true, force: true });
      const written = await writeSyntheticArchive(originals, {
        files: distinct,
        dataScale: "full",
        compressedFraction: name === "bz2" ? 1 : 0,
        corrupt: 0,
        nights: 1,
      });
      mkdirSync(dir, { recursive: true });
      const copies = Math.ceil(files / distinct);
      let n = 0;
      for (let k = 0; k < copies && n < files; k++) {
        for (const file of written) {
          if (n++ === files) {
            break;
          }
          linkSync(file.path, join(dir, renamed(file.name, k)));
        }
      }
    }
    writeFileSync(done, "");
    console.log(
      `corpus ${name}: made in ${((performance.now() - t) / 1000).toFixed(0)} s`,
    );
  }
  const names = readdirSync(dir)
    .filter((f) => !f.startsWith("."))
    .sort()
    .reverse();
  let storedBytes = 0;
  for (const f of names) {
    storedBytes += statSync(join(dir, f)).size;
  }
  return { name, dir, names, storedBytes };
}

/** Reads every distinct file once, so every contender starts from a warm page cache. */
function warm(corpus: Corpus): void {
  const seen = new Set<number>();
  for (const f of corpus.names) {
    const { ino } = statSync(join(corpus.dir, f));
    if (!seen.has(ino)) {
      seen.add(ino);
      readFileSync(join(corpus.dir, f));
    }
  }
}

function run(
  program: string,
  args: string[],
  options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${program} exited ${code}: ${err.slice(-2000)}`)),
    );
    child.stdin.end(options.input ?? "");
  });
}

/** md5sum of every file, and for .bz2 `lbzip2 -dc | md5sum` too, two files at a time. */
async function floor(corpus: Corpus): Promise<number> {
  const script =
    'for f; do md5sum "$f"; case "$f" in *.bz2) lbzip2 -n 1 -dc "$f" | md5sum;; esac; done > /dev/null';
  const t = performance.now();
  // Full-size files one at a time, so that neither core is left idle at the end.
  const perCall = linkedCorpus(corpus.name) ? "1" : "16";
  await run(
    "xargs",
    ["-0", "-P", "2", "-n", perCall, "sh", "-c", script, "sh"],
    {
      cwd: corpus.dir,
      input: corpus.names.join("\0"),
    },
  );
  return (performance.now() - t) / 1000;
}

async function freshDatabase(admin: string, db: string): Promise<string> {
  await withClient(admin, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${db}`);
    await c.query(`CREATE DATABASE ${db}`);
  });
  const url = new URL(admin);
  url.pathname = `/${db}`;
  await withClient(url.toString(), (c) => runMigrations(c));
  return url.toString();
}

async function resetStatements(admin: string): Promise<void> {
  await withClient(admin, (c) => c.query("SELECT pg_stat_statements_reset()"));
}

async function statements(admin: string, db: string): Promise<number> {
  return withClient(admin, async (c) => {
    const { rows } = await c.query<{ calls: string; query: string }>(
      `SELECT s.calls::text AS calls, s.query
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = $1
        ORDER BY s.calls DESC`,
      [db],
    );
    if (values.statements) {
      for (const r of rows.slice(0, 12)) {
        console.log(
          `   ${r.calls.padStart(7)}  ${r.query.replace(/\s+/g, " ").slice(0, 110)}`,
        );
      }
    }
    return rows.reduce((sum, r) => sum + Number(r.calls), 0);
  });
}

interface Measured {
  seconds: number;
  files: number;
  roundTrips: number;
  dataBytes?: number;
}

async function fitsfleet(
  corpus: Corpus,
  urls: { adminUrl: string; redisUrl: string },
  fastRebuild: boolean,
  round = 0,
): Promise<Measured> {
  const db = `ingest_${corpus.name}_${fastRebuild ? "fast" : "plain"}`;
  const databaseUrl = await freshDatabase(urls.adminUrl, db);
  // A queue of its own each round: the last round's jobs have the same ids.
  const queue = `bench-${db}-${round}`;
  const storage = openStorage(corpus.dir);
  await enqueue({
    databaseUrl,
    redisUrl: urls.redisUrl,
    queue,
    storage,
    storageLocation: corpus.dir,
    // Full-size files take seconds each: smaller batches keep both workers busy to the end.
    batchSize: linkedCorpus(corpus.name) ? 20 : 200,
  }).finally(() => storage.close());
  warm(corpus);
  await resetStatements(urls.adminUrl);
  const result = await runLocalWorkers({
    databaseUrl,
    redisUrl: urls.redisUrl,
    queue,
    workers: WORKERS,
    name: "bench",
    fastRebuild,
  });
  const roundTrips = await statements(urls.adminUrl, db);
  const { counts } = result.status;
  if (counts.done !== corpus.names.length || counts.failed > 0) {
    throw new Error(
      `fitsfleet ingested ${counts.done} of ${corpus.names.length} files (${counts.failed} failed)`,
    );
  }
  const dataBytes = await withClient(databaseUrl, async (c) => {
    const { rows } = await c.query<{ bytes: string }>(
      "SELECT sum(data_size)::text AS bytes FROM diskfile",
    );
    return Number(rows[0]!.bytes);
  });
  return {
    seconds: result.seconds,
    files: counts.done,
    roundTrips,
    dataBytes,
  };
}

async function baseline(
  corpus: Corpus,
  adminUrl: string,
  staging: string,
): Promise<Measured> {
  const db = `baseline_${corpus.name}`;
  const databaseUrl = await freshDatabase(adminUrl, db);
  const names = corpus.names.slice(0, baselineFiles ?? corpus.names.length);
  const { dbname, env } = clientProgramConnection(databaseUrl);
  warm(corpus);
  await resetStatements(adminUrl);
  const out = await run(
    PYTHON,
    [
      join(packageRoot(), "bench", "native", "reference-ingest.py"),
      dbname,
      corpus.dir,
      staging,
    ],
    { input: names.join("\n"), env },
  );
  const [count, seconds] = out.trim().split(/\s+/).map(Number);
  return {
    seconds: seconds!,
    files: count!,
    roundTrips: await statements(adminUrl, db),
  };
}

const mib = (bytes: number) => bytes / 1024 / 1024;
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
/** The 1-minute load average. */
const load = () => loadavg()[0]!.toFixed(1);
const rate = (m: Measured) => m.files / m.seconds;
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });

const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-stack-"));
const staging = mkdtempSync(join(tmpdir(), "fitsfleet-bench-staging-"));
try {
  mkdirSync(values["corpus-dir"], { recursive: true });
  // A missing tool found after half an hour of floor and workers wastes the run.
  for (const [program, args, install] of [
    [
      PYTHON,
      ["-c", "import astropy, psycopg2"],
      "python3-astropy python3-psycopg2",
    ],
    ["lbzip2", ["--version"], "lbzip2"],
    ["bzip2", ["--help"], "bzip2"],
  ] as const) {
    try {
      execFileSync(program, args, { stdio: "ignore" });
    } catch {
      throw new Error(
        `${program} ${args.join(" ")} failed: install it first (apt-get install ${install})`,
      );
    }
  }
  if (!values["skip-build"]) {
    // The workers run the built CLI.
    execFileSync("npm", ["run", "--silent", "build"], {
      cwd: packageRoot(),
      stdio: "inherit",
    });
  }
  const { state } = await stackUp(stackDir, { statementStats: true });
  const urls = stackUrls(state);
  await withClient(urls.adminUrl, (c) =>
    c.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"),
  );
  console.log(
    `${WORKERS} fitsfleet workers (--fast-rebuild) vs one Python process (astropy + psycopg2, a commit per file) vs the native floor on 2 cores; PostgreSQL fsync on`,
  );
  for (const name of corpora) {
    const corpus = await makeCorpus(name);
    const distinctNote =
      name === "gemini"
        ? " (the 8 Gemini fixtures, hard-linked)"
        : linkedCorpus(name)
          ? ` (${distinct} distinct, hard-linked)`
          : "";
    console.log(
      `\n== ${name}: ${fmt(corpus.names.length)} files${distinctNote}, ${fmt(mib(corpus.storedBytes))} MiB stored`,
    );
    warm(corpus);
    const floors: number[] = [];
    const ourRuns: Measured[] = [];
    const baseRuns: Measured[] = [];
    for (let round = 0; round < rounds; round++) {
      if (rounds > 1) {
        console.log(`   -- round ${round + 1} of ${rounds}`);
      }
      // Each figure is printed as soon as it is known: a full-size corpus
      // takes most of an hour. The load average before each says how busy
      // the machine was.
      const floorLoad = load();
      const floorSeconds = await floor(corpus);
      floors.push(floorSeconds);
      console.log(
        `   floor ${floorSeconds.toFixed(1)} s = ${fmt(corpus.names.length / floorSeconds)} files/s (load ${floorLoad})`,
      );
      const ourLoad = load();
      const ours = await fitsfleet(corpus, urls, true, round);
      ourRuns.push(ours);
      if (round === 0) {
        console.log(`   data ${fmt(mib(ours.dataBytes!))} MiB decompressed`);
      }
      console.log(
        `   fitsfleet: ${ours.seconds.toFixed(1)} s, ${fmt(rate(ours))} files/s, ${fmt(mib(ours.dataBytes!) / ours.seconds)} MiB/s of data, ${(ours.roundTrips / ours.files).toFixed(2)} round trips/file (load ${ourLoad})`,
      );
      const plain =
        values.plain && round === 0
          ? await fitsfleet(corpus, urls, false)
          : undefined;
      if (plain !== undefined) {
        console.log(
          `   fitsfleet without --fast-rebuild: ${plain.seconds.toFixed(1)} s, ${fmt(rate(plain))} files/s, ${(plain.roundTrips / plain.files).toFixed(2)} round trips/file`,
        );
      }
      const baseLoad = load();
      const base = await baseline(corpus, urls.adminUrl, staging);
      baseRuns.push(base);
      console.log(
        `   baseline (${fmt(base.files)} files): ${base.seconds.toFixed(1)} s, ${fmt(rate(base), 1)} files/s, ${(base.roundTrips / base.files).toFixed(2)} round trips/file (load ${baseLoad})`,
      );
      if (rounds > 1) {
        console.log(
          `   this round: ${(rate(ours) / rate(base)).toFixed(2)}x the baseline, ${(ours.seconds / floorSeconds).toFixed(2)}x the floor's time`,
        );
      }
    }
    const floorSeconds = median(floors);
    const floorRate = corpus.names.length / floorSeconds;
    const oursRate = median(ourRuns.map(rate));
    const baseRate = median(baseRuns.map(rate));
    const oursSeconds = median(ourRuns.map((m) => m.seconds));
    const medianNote = rounds > 1 ? ` (medians of ${rounds} rounds)` : "";
    console.log(
      `   ratio${medianNote}: ${(oursRate / baseRate).toFixed(2)}x the baseline; ${(oursSeconds / floorSeconds).toFixed(2)}x the floor's time`,
    );
    // The most any two-core ingest can reach against the one-process
    // baseline on this machine: the floor's own rate against it.
    console.log(
      `   ceiling: the floor is ${(floorRate / baseRate).toFixed(2)}x the baseline`,
    );
  }
} finally {
  await stackDown(stackDir, { purge: true }).catch(() => undefined);
  rmSync(staging, { recursive: true, force: true });
}
