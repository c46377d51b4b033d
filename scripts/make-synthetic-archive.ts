/**
 * Writes a synthetic Gemini archive (fixtures/synthetic/archive.ts) for the demo,
 * tests and the ingest benchmarks, and prints what it wrote.
 *
 * Usage:
 *   node --import tsx scripts/make-synthetic-archive.ts --dir D
 *     [--files N] [--scale tiny|small|full] [--seed S] [--layout flat|by-night]
 *     [--nights N] [--compressed FRACTION] [--corrupt N]
 *
 * Defaults: 300 files, tiny data units, seed 1, flat layout, 30% .fits.bz2,
 * files/50 (at least one) deliberately damaged files.
 */
import { parseArgs } from "node:util";

import {
  type SyntheticFile,
  type SyntheticOptions,
  writeSyntheticArchive,
} from "../fixtures/synthetic/archive.js";

const USAGE =
  "usage: make-synthetic-archive.ts --dir D [--files N] [--scale tiny|small|full] [--seed S] [--layout flat|by-night] [--nights N] [--compressed FRACTION] [--corrupt N]";

const { values } = parseArgs({
  options: {
    dir: { type: "string" },
    files: { type: "string", default: "300" },
    scale: { type: "string", default: "tiny" },
    seed: { type: "string" },
    layout: { type: "string", default: "flat" },
    nights: { type: "string" },
    compressed: { type: "string" },
    corrupt: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  console.error(message);
  console.error(USAGE);
  process.exit(2);
}

function number(name: string, text: string | undefined): number | undefined {
  if (text === undefined) {
    return undefined;
  }
  const value = Number(text);
  if (!Number.isFinite(value)) {
    fail(`--${name} must be a number, not ${JSON.stringify(text)}`);
  }
  return value;
}

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const dir = values.dir;
if (dir === undefined) {
  fail("--dir is required");
}
const scale = values.scale;
if (scale !== "tiny" && scale !== "small" && scale !== "full") {
  fail("--scale must be tiny, small or full");
}
const layout = values.layout;
if (layout !== "flat" && layout !== "by-night") {
  fail("--layout must be flat or by-night");
}

const options: SyntheticOptions = {
  files: number("files", values.files) ?? 300,
  dataScale: scale,
  layout,
};
const seed = number("seed", values.seed);
const nights = number("nights", values.nights);
const compressed = number("compressed", values.compressed);
const corrupt = number("corrupt", values.corrupt);
if (seed !== undefined) {
  options.seed = seed;
}
if (nights !== undefined) {
  options.nights = nights;
}
if (compressed !== undefined) {
  options.compressedFraction = compressed;
}
if (corrupt !== undefined) {
  options.corrupt = corrupt;
}

const started = process.hrtime.bigint();
let files: SyntheticFile[];
try {
  files = await writeSyntheticArchive(dir, options);
} catch (error) {
  console.error(`failed: ${(error as Error).message}`);
  process.exit(1);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;

const byInstrument = new Map<string, Map<string, number>>();
for (const f of files) {
  const kinds = byInstrument.get(f.instrument) ?? new Map<string, number>();
  kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
  byInstrument.set(f.instrument, kinds);
}
const bytes = files.reduce((sum, f) => sum + f.bytes, 0);
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

console.log(
  `${files.length} files in ${dir} (${scale}, seed ${options.seed ?? 1}, ${layout})`,
);
for (const [instrument, kinds] of [...byInstrument].sort()) {
  const total = [...kinds.values()].reduce((a, b) => a + b, 0);
  const detail = [...kinds]
    .sort()
    .map(([kind, n]) => `${kind} ${n}`)
    .join(", ");
  console.log(
    `  ${instrument.padEnd(7)} ${String(total).padStart(6)}  ${detail}`,
  );
}
const bz2 = files.filter((f) => f.name.endsWith(".bz2"));
console.log(
  `compressed: ${bz2.length} (.fits.bz2, ${mib(bz2.reduce((s, f) => s + f.bytes, 0))})`,
);
const broken = files.filter((f) => f.corrupt !== undefined);
console.log(
  `corrupt:    ${broken.length}${broken.length > 0 ? ` (${broken.map((f) => `${f.name}: ${f.corrupt}`).join(", ")})` : ""}`,
);
console.log(`bytes:      ${bytes} (${mib(bytes)})`);
console.log(
  `seconds:    ${seconds.toFixed(2)} (${(files.length / seconds).toFixed(0)} files/s, ${mib(bytes / seconds)}/s)`,
);
