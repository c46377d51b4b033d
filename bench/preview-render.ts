/**
 * Preview rendering (issue 6): milliseconds per preview and peak memory,
 * fitsfleet's makePreview against the reference's way
 * (bench/native/reference-preview.py: Debian's astropy, numpy and matplotlib,
 * the same percentile clip, saved as JPEG), in the same run, on two frames:
 *
 * - gmos: a full-size unbinned 12-amplifier GMOS-N frame (Hamamatsu, 12
 *   int16 extensions of 544 x 4224, 55 MB) from fixtures/synthetic;
 * - float: a 4096 x 4096 BITPIX -32 frame (67 MB): sky, noise and stars.
 *
 * Every measurement is a fresh process rendering one preview (its peak RSS,
 * VmHWM, is that preview's, start-up included; not ru_maxrss, which after
 * fork() and exec() still counts this process's memory), timed from inside
 * so start-up and imports are excluded; rounds alternate between the two
 * contenders, and the figures are medians. A "warm" process per contender
 * then renders 6 times and reports the median of the last 5, as a
 * long-running worker would see it.
 * fitsfleet runs as plain JavaScript (the preview modules compiled with
 * TypeScript into node_modules/.cache, as dist/ runs in production), without
 * tsx's loader thread. The "floor" is each contender's process with its
 * modules loaded and nothing rendered.
 *
 * The last lines compare the pictures: fitsfleet with the reference's gap
 * rule against the reference's JPEG, grey level by grey level (matplotlib's
 * resampling filter differs from an area average, so a few levels apart).
 *
 * Needs: Debian's python3-astropy and python3-matplotlib (/usr/bin/python3).
 * Usage: node --import tsx bench/preview-render.ts
 *   [--rounds 5] [--cases gmos,float] [--dir DIR] (frames, kept; default under /tmp)
 *   [--seed 3] (the synthetic archive whose first file is the GMOS frame)
 */
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import sharp from "sharp";
import ts from "typescript";

import { writeSyntheticArchive } from "../fixtures/synthetic/archive.js";
import { WORKER_ENVIRONMENT } from "../infra/local.js";
import { readHeaders } from "../lib/fits/read.js";
import { formatCard, headerBytes } from "../lib/fits/write.js";
import { packageRoot } from "../lib/paths.js";

type CaseName = "gmos" | "float";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    cases: { type: "string", default: "gmos,float" },
    dir: { type: "string", default: join(tmpdir(), "fitsfleet-bench-preview") },
    seed: { type: "string", default: "3" },
  },
});
const rounds = Number(values.rounds);
const cases = values.cases.split(",") as CaseName[];
const PYTHON = "/usr/bin/python3";
const WARM_RENDERS = 6;
const here = dirname(fileURLToPath(import.meta.url));
const root = packageRoot();
const referenceScript = join(here, "native", "reference-preview.py");

interface Measure {
  /** One per render, in order. */
  ms: number[];
  /** Peak RSS of the whole process, bytes. */
  peak: number;
}

// --- the frames --------------------------------------------------------------

/** The first file of a one-file synthetic archive: an unbinned 12-amplifier GMOS frame for seed 3. */
async function gmosFrame(dir: string): Promise<string> {
  const target = join(dir, "gmos-12amp-1x1.fits");
  if (existsSync(target)) {
    return target;
  }
  const work = join(dir, "synthetic");
  rmSync(work, { recursive: true, force: true });
  const [file] = await writeSyntheticArchive(work, {
    files: 1,
    seed: Number(values.seed),
    dataScale: "full",
    compressedFraction: 0,
    corrupt: 0,
  });
  const structure = readHeaders(file?.path ?? "");
  const images = structure.hdus.filter((h) => h.type === "IMAGE");
  const instrument = structure.hdus[0]?.header.string("INSTRUME") ?? "";
  if (
    !instrument.startsWith("GMOS") ||
    images.length !== 12 ||
    images[0]?.header.string("CCDSUM")?.trim() !== "1 1"
  ) {
    throw new Error(
      `seed ${values.seed} gives ${file?.name} (${instrument}, ${images.length} image extensions, CCDSUM ${images[0]?.header.string("CCDSUM")}), not an unbinned 12-amplifier GMOS frame; try another --seed`,
    );
  }
  renameSync(file?.path ?? "", target);
  rmSync(work, { recursive: true, force: true });
  return target;
}

/**
 * 4096 x 4096 float32: a sloping sky, noise and a few hundred stars. No NaN:
 * the reference's numpy.percentile would give NaN and a blank picture.
 */
function floatFrame(dir: string): string {
  const target = join(dir, "float-4096.fits");
  if (existsSync(target)) {
    return target;
  }
  const size = 4096;
  const header = headerBytes([
    formatCard("SIMPLE", true),
    formatCard("BITPIX", -32),
    formatCard("NAXIS", 2),
    formatCard("NAXIS1", size),
    formatCard("NAXIS2", size),
    formatCard("INSTRUME", "BENCH"),
  ]);
  let state = 12345;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const stars = Array.from({ length: 300 }, () => ({
    x: random() * size,
    y: random() * size,
    flux: 200 + 50_000 * random() ** 4,
  }));
  const partial = `${target}.part`;
  const fd = openSync(partial, "w");
  try {
    writeSync(fd, header);
    const rows = 256;
    const block = new Float32Array(rows * size);
    const bytes = Buffer.from(block.buffer);
    for (let y0 = 0; y0 < size; y0 += rows) {
      for (let r = 0; r < rows; r++) {
        const y = y0 + r;
        const near = stars.filter((s) => Math.abs(s.y - y) < 8);
        for (let x = 0; x < size; x++) {
          let v = 1000 + 0.02 * x + 0.01 * y + 40 * (random() - 0.5);
          for (const s of near) {
            const d2 = (x - s.x) ** 2 + (y - s.y) ** 2;
            if (d2 < 64) {
              v += s.flux * Math.exp(-d2 / 4);
            }
          }
          block[r * size + x] = v;
        }
      }
      bytes.swap32();
      writeSync(fd, bytes);
    }
    const written = header.length + size * size * 4;
    writeSync(fd, Buffer.alloc((2880 - (written % 2880)) % 2880));
  } finally {
    closeSync(fd);
  }
  renameSync(partial, target);
  return target;
}

// --- fitsfleet as plain JavaScript ---------------------------------------------

/** Compiles lib/preview/preview.ts and what it imports; returns the compiled module's URL. */
function compilePreview(): string {
  const outDir = join(
    root,
    "node_modules",
    ".cache",
    "fitsfleet-bench-preview",
  );
  rmSync(outDir, { recursive: true, force: true });
  const config = ts.getParsedCommandLineOfConfigFile(
    join(root, "tsconfig.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  );
  if (config === undefined) {
    throw new Error("tsconfig.json could not be read");
  }
  const program = ts.createProgram([join(root, "lib/preview/preview.ts")], {
    ...config.options,
    noEmit: false,
    outDir,
    rootDir: root,
    sourceMap: false,
    declaration: false,
  });
  const emitted = program.emit();
  if (emitted.emitSkipped) {
    throw new Error("compiling the preview modules failed");
  }
  // Inside the package, so the compiled modules resolve sharp from node_modules.
  return pathToFileURL(join(outDir, "lib/preview/preview.js")).href;
}

/**
 * Both contenders run in the environment fitsfleet's workers get
 * (WORKER_ENVIRONMENT: two malloc arenas), the reference too, so neither
 * is measured under settings the other lacks.
 */
const contenderEnvironment = { ...process.env, ...WORKER_ENVIRONMENT };

/** A fresh node process: `renders` previews of `file` (0: only load the modules). */
function fitsfleet(
  module: string,
  file: string,
  renders: number,
  options: Record<string, unknown> = {},
  jpeg?: string,
): Measure {
  const script = `
    import { readFileSync, writeFileSync } from "node:fs";
    const { makePreview } = await import(${JSON.stringify(module)});
    const ms = [];
    for (let i = 0; i < ${renders}; i++) {
      const started = performance.now();
      const outcome = await makePreview(${JSON.stringify(file)}, ${JSON.stringify(options)});
      ms.push(performance.now() - started);
      if (outcome.kind !== "preview") {
        throw new Error(outcome.reason);
      }
      ${jpeg === undefined ? "" : `writeFileSync(${JSON.stringify(jpeg)}, outcome.jpeg);`}
    }
    const status = readFileSync("/proc/self/status", "utf8");
    const peak = Number(/VmHWM:\\s+(\\d+)/.exec(status)[1]) * 1024;
    console.log(JSON.stringify({ ms, peak }));
  `;
  const run = spawnSync(
    process.execPath,
    ["--input-type=module", "-e", script],
    { encoding: "utf8", env: contenderEnvironment },
  );
  if (run.status !== 0) {
    throw new Error(`fitsfleet's preview failed: ${run.stderr}`);
  }
  return JSON.parse(run.stdout) as Measure;
}

/** A fresh Python process: `renders` previews the reference's way (0: only the imports). */
function reference(file: string, renders: number, jpeg: string): Measure {
  const run = spawnSync(
    PYTHON,
    [referenceScript, file, jpeg, String(renders)],
    { encoding: "utf8", env: contenderEnvironment },
  );
  if (run.status !== 0) {
    throw new Error(`the reference's preview failed: ${run.stderr}`);
  }
  const lines = run.stdout.trim().split("\n");
  const ms = lines.map((l) => Number(l.split(" ")[0]));
  const peak = Number(lines[lines.length - 1]?.split(" ")[1]) * 1024;
  return { ms: renders === 0 ? [] : ms, peak };
}

// --- figures -------------------------------------------------------------------

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(0).padStart(5);
const ms = (x: number) => x.toFixed(0).padStart(6);

/** Grey levels of a JPEG (the reference's is RGB with R = G = B). */
async function greyPixels(path: string): Promise<Buffer> {
  return sharp(path).toColourspace("b-w").raw().toBuffer();
}

async function compareImages(a: string, b: string): Promise<string> {
  const [x, y] = await Promise.all([greyPixels(a), greyPixels(b)]);
  if (x.length !== y.length) {
    return `different sizes (${x.length} and ${y.length} pixels)`;
  }
  const differences = Array.from(x, (v, i) => Math.abs(v - (y[i] as number)));
  const sorted = differences.sort((p, q) => p - q);
  const mean = sorted.reduce((s, d) => s + d, 0) / sorted.length;
  const p99 = sorted[Math.floor(0.99 * (sorted.length - 1))] as number;
  return `mean |difference| ${mean.toFixed(1)} grey levels, 99th percentile ${p99}`;
}

async function main(): Promise<void> {
  mkdirSync(values.dir, { recursive: true });
  const frames: Record<CaseName, () => Promise<string> | string> = {
    gmos: () => gmosFrame(values.dir),
    float: () => floatFrame(values.dir),
  };
  const module = compilePreview();
  const jpegs = join(values.dir, "jpeg");
  mkdirSync(jpegs, { recursive: true });
  const machine = spawnSync("nproc", { encoding: "utf8" }).stdout.trim();
  console.log(
    `preview rendering: ${rounds} rounds of fresh processes per contender, medians; ${machine} cores`,
  );
  const floors = {
    fitsfleet: fitsfleet(module, "", 0).peak,
    reference: reference("", 0, "").peak,
  };
  console.log(
    `floor (modules loaded, nothing rendered): fitsfleet ${mb(floors.fitsfleet)} MB, reference ${mb(floors.reference)} MB`,
  );
  console.log(
    "case    frame MB | fitsfleet first ms  warm ms  peak MB  x frame | reference first ms  warm ms  peak MB  x frame | faster: first   warm",
  );
  const comparisons: string[] = [];
  for (const name of cases) {
    const file = await frames[name]();
    const size = statSync(file).size;
    // Warm the page cache: both contenders read a cached file.
    fitsfleet(module, file, 1);
    const ours: Measure[] = [];
    const theirs: Measure[] = [];
    for (let round = 0; round < rounds; round++) {
      ours.push(fitsfleet(module, file, 1));
      theirs.push(reference(file, 1, join(jpegs, `${name}-reference.jpg`)));
    }
    const oursWarm = median(fitsfleet(module, file, WARM_RENDERS).ms.slice(1));
    const theirsWarm = median(
      reference(
        file,
        WARM_RENDERS,
        join(jpegs, `${name}-reference.jpg`),
      ).ms.slice(1),
    );
    const oursMs = median(ours.map((m) => m.ms[0] as number));
    const theirsMs = median(theirs.map((m) => m.ms[0] as number));
    const oursPeak = median(ours.map((m) => m.peak));
    const theirsPeak = median(theirs.map((m) => m.peak));
    console.log(
      `${name.padEnd(7)} ${mb(size)}    |       ${ms(oursMs)}      ${ms(oursWarm)}   ${mb(oursPeak)}    ${(oursPeak / size).toFixed(2)}  |       ${ms(theirsMs)}      ${ms(theirsWarm)}   ${mb(theirsPeak)}    ${(theirsPeak / size).toFixed(2)}  |         ${(theirsMs / oursMs).toFixed(1).padStart(5)}x ${(theirsWarm / oursWarm).toFixed(1).padStart(5)}x`,
    );
    console.log(
      `        rounds: fitsfleet ${ours.map((m) => (m.ms[0] as number).toFixed(0)).join(" ")} ms; reference ${theirs.map((m) => (m.ms[0] as number).toFixed(0)).join(" ")} ms`,
    );
    const same = join(jpegs, `${name}-fitsfleet-reference-rule.jpg`);
    fitsfleet(module, file, 1, { gapRule: "reference" }, same);
    comparisons.push(
      `${name}: ${await compareImages(same, join(jpegs, `${name}-reference.jpg`))}`,
    );
  }
  console.log(
    "targets: at least 10x faster than the reference's way, peak memory at most 3x the frame",
  );
  console.log(
    "pictures, fitsfleet (reference gap rule) against the reference:",
  );
  for (const line of comparisons) {
    console.log(`  ${line}`);
  }
  console.log(`JPEGs in ${jpegs}`);
}

await main();
