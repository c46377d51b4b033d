/**
 * FITS header reading and checksumming (issue 3), fitsfleet against its
 * baselines in the same run:
 *
 * 1. Headers of an uncompressed corpus (every fixture, decompressed where
 *    needed, replicated to ≥2,000 files): fitsfleet `readHeaders` vs astropy
 *    (`fits.open` and every header) vs cfitsio (every card of every HDU). Each
 *    reader times itself, so interpreter start-up is excluded.
 * 2. `.bz2` checksumming over the Gemini fixtures replicated to 2,000 files:
 *    fitsfleet `readFitsFile` (file md5, bzip2, data md5, structure) vs
 *    `bzip2 -dc FILE | md5sum` per file.
 * 3. Peak memory of `readFitsFile` as one file grows from 16 MiB to 1 GiB.
 *
 * Needs: cc, libcfitsio-dev, python3-astropy (Debian), bzip2.
 * Usage: node --import tsx bench/fits-headers.ts [copies=2016] [--parts=1,2,3]
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { readFitsFile, readHeaders } from "../lib/fits/read.js";
import { headerBytes } from "../lib/fits/write.js";
import { packageRoot } from "../lib/paths.js";

const here = dirname(fileURLToPath(import.meta.url));

if (process.argv[2] === "--peak") {
  // Child mode for part 3: read one file, report peak RSS.
  const file = process.argv[3] ?? "";
  await readFitsFile(file);
  console.log(process.resourceUsage().maxRSS);
  process.exit(0);
}

const copies = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2016);
// Which parts to run: --parts=1,2,3 (default all)
const parts = new Set(
  (
    process.argv.find((a) => a.startsWith("--parts="))?.slice(8) ?? "1,2,3"
  ).split(","),
);
const fixtures = join(packageRoot(), "..", "shared", "fixtures", "fits");
const work = mkdtempSync(join(tmpdir(), "fitsfleet-bench-fits-"));
const astropyScript = join(here, "native", "astropy-headers.py");

interface Measure {
  files: number;
  cards: number;
  seconds: number;
}

function rate(m: Measure): string {
  return `${(m.files / m.seconds).toFixed(0).padStart(8)} files/s ${(m.cards / m.seconds / 1e6).toFixed(2).padStart(7)} M cards/s  (${m.seconds.toFixed(3)} s, ${m.cards} cards)`;
}

function external(command: string, args: string[], paths: string[]): Measure {
  const run = spawnSync(command, args, {
    input: paths.join("\n"),
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (run.status !== 0) {
    throw new Error(`${command} failed: ${run.stderr}`);
  }
  const [files, cards, seconds] = run.stdout.trim().split(/\s+/).map(Number);
  return { files: files ?? 0, cards: cards ?? 0, seconds: seconds ?? NaN };
}

/** The round with the median time. */
function median(rounds: Measure[]): Measure {
  const sorted = [...rounds].sort((x, y) => x.seconds - y.seconds);
  return sorted[Math.floor(sorted.length / 2)] ?? (rounds[0] as Measure);
}

function fitsfleetHeaders(paths: string[]): Measure {
  const start = performance.now();
  let cards = 0;
  for (const path of paths) {
    for (const hdu of readHeaders(path).hdus) {
      cards += hdu.header.length;
    }
  }
  return {
    files: paths.length,
    cards,
    seconds: (performance.now() - start) / 1000,
  };
}

try {
  // --- corpus -------------------------------------------------------------
  const sources: string[] = [];
  mkdirSync(join(work, "src"));
  for (const sub of ["astropy", "gemini"]) {
    for (const name of readdirSync(join(fixtures, sub)).sort()) {
      const path = join(fixtures, sub, name);
      if (name.endsWith(".bz2")) {
        const target = join(work, "src", name.replace(/\.bz2$/, ""));
        writeFileSync(
          target,
          execFileSync("bzip2", ["-dc", path], { maxBuffer: 1 << 28 }),
        );
        sources.push(target);
      } else {
        sources.push(path);
      }
    }
  }
  // Only files every reader accepts: cfitsio refuses some of astropy's edge cases.
  const cfitsio = join(work, "cfitsio-headers");
  execFileSync("cc", [
    "-O2",
    "-o",
    cfitsio,
    join(here, "native", "cfitsio-headers.c"),
    "-lcfitsio",
  ]);
  const refused = sources.filter(
    (s) => spawnSync(cfitsio, [], { input: s }).status !== 0,
  );
  sources.splice(
    0,
    sources.length,
    ...sources.filter((s) => !refused.includes(s)),
  );
  const plain: string[] = [];
  mkdirSync(join(work, "plain"));
  for (let i = 0; i < copies; i++) {
    const source = sources[i % sources.length] ?? "";
    const target = join(work, "plain", `${i}-${basename(source)}`);
    // Large decompressed frames are hard-linked: header reading never touches their data.
    if (statSync(source).size > 1 << 20) {
      linkSync(source, target);
    } else {
      copyFileSync(source, target);
    }
    plain.push(target);
  }
  const bz2Sources = readdirSync(join(fixtures, "gemini"))
    .filter((n) => n.endsWith(".bz2"))
    .map((n) => join(fixtures, "gemini", n));
  const compressed: string[] = [];
  mkdirSync(join(work, "bz2"));
  for (let i = 0; i < 2000; i++) {
    const source = bz2Sources[i % bz2Sources.length] ?? "";
    const target = join(work, "bz2", `${i}-${basename(source)}`);
    copyFileSync(source, target);
    compressed.push(target);
  }

  // --- 1. headers, uncompressed ------------------------------------------------
  if (parts.has("1")) {
    fitsfleetHeaders(plain); // warm the page cache and the JIT
    external(cfitsio, [], plain);
    // A shared 2-core machine is noisy: take each reader's median round.
    const ours = median(
      Array.from({ length: 5 }, () => fitsfleetHeaders(plain)),
    );
    const c = median(
      Array.from({ length: 5 }, () => external(cfitsio, [], plain)),
    );
    const a = median(
      Array.from({ length: 3 }, () =>
        external("/usr/bin/python3", [astropyScript], plain),
      ),
    );
    console.log(
      `1. header reading, ${plain.length} uncompressed files from ${sources.length} fixtures (median round of 5; astropy of 3)`,
    );
    console.log(
      `   (left out, cfitsio refuses them: ${refused.map((r) => basename(r)).join(", ") || "none"})`,
    );
    console.log(`   fitsfleet  ${rate(ours)}`);
    console.log(`   cfitsio    ${rate(c)}`);
    console.log(`   astropy    ${rate(a)}`);
    const perCard = (m: Measure) => m.cards / m.seconds;
    console.log(
      `   fitsfleet / astropy: ${(a.seconds / ours.seconds).toFixed(1)}x   fitsfleet / cfitsio: ${(c.seconds / ours.seconds).toFixed(2)}x files/s, ${(perCard(ours) / perCard(c)).toFixed(2)}x cards/s`,
    );
    if (ours.cards !== c.cards) {
      // cfitsio presents tile-compressed images as images and reads a few edge-case files differently.
      console.log(
        `   (cfitsio read ${c.cards} cards where fitsfleet and astropy read ${ours.cards})`,
      );
    }
  }

  // --- 2. .bz2 checksumming ---------------------------------------------------------
  if (parts.has("2")) {
    let start = performance.now();
    let cards = 0;
    for (const path of compressed) {
      const result = await readFitsFile(path);
      cards += result.structure.hdus.reduce((n, h) => n + h.header.length, 0);
    }
    const oursBz2 = {
      files: compressed.length,
      cards,
      seconds: (performance.now() - start) / 1000,
    };
    start = performance.now();
    const shell = spawnSync(
      "sh",
      ["-c", 'while read -r f; do bzip2 -dc "$f" | md5sum >/dev/null; done'],
      { input: compressed.join("\n") },
    );
    if (shell.status !== 0) {
      throw new Error("bzip2 | md5sum baseline failed");
    }
    const baseline = (performance.now() - start) / 1000;
    start = performance.now();
    const floor = spawnSync(
      "sh",
      [
        "-c",
        'while read -r f; do lbzip2 -n 1 -dc "$f" | md5sum >/dev/null; done',
      ],
      { input: compressed.join("\n") },
    );
    if (floor.status !== 0) {
      throw new Error("lbzip2 | md5sum baseline failed");
    }
    const floorSeconds = (performance.now() - start) / 1000;
    const astropyBz2 = external(
      "/usr/bin/python3",
      [astropyScript],
      compressed,
    );
    console.log(
      `2. .bz2: ${compressed.length} files (file md5 + bzip2 + data md5 + every header)`,
    );
    console.log(`   fitsfleet            ${rate(oursBz2)}`);
    console.log(
      `   bzip2 -dc | md5sum   ${(compressed.length / baseline).toFixed(0).padStart(8)} files/s  (${baseline.toFixed(3)} s; no header parsing)`,
    );
    console.log(
      `   lbzip2 -dc | md5sum  ${(compressed.length / floorSeconds).toFixed(0).padStart(8)} files/s  (${floorSeconds.toFixed(3)} s; the native floor, no header parsing)`,
    );
    console.log(`   astropy (headers)    ${rate(astropyBz2)}`);
    console.log(
      `   fitsfleet / (bzip2 -dc | md5sum): ${(baseline / oursBz2.seconds).toFixed(2)}x`,
    );
  }

  // --- 3. peak memory as files grow ---------------------------------------------------
  if (parts.has("3")) {
    console.log("3. peak RSS of readFitsFile (one pass, md5 of every byte)");
    for (const mib of [16, 256, 1024]) {
      const path = join(work, `big-${mib}.fits`);
      const size = mib * 1024 * 1024;
      const header = headerBytes([
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    1",
        `NAXIS1  = ${String(size).padStart(20)}`,
      ]);
      const fd = openSync(path, "w");
      writeSync(fd, header);
      ftruncateSync(fd, header.length + size + ((2880 - (size % 2880)) % 2880));
      closeSync(fd);
      const child = spawnSync(
        process.execPath,
        ["--import", "tsx", fileURLToPath(import.meta.url), "--peak", path],
        { encoding: "utf8" },
      );
      console.log(
        `   ${String(mib).padStart(5)} MiB file: peak RSS ${(Number(child.stdout.trim()) / 1024).toFixed(0)} MiB`,
      );
      rmSync(path);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
