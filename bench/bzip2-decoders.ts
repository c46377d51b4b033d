/**
 * Which bzip2 path ingest should use: pure-JavaScript decoders in-process
 * against native decompressors in a child process (what lib/fits/bzip2.ts
 * does), on the Gemini fixtures, in the same run. Milliseconds per file,
 * output drained and counted.
 *
 * The JS decoders are not dependencies of fitsfleet; install them for this run:
 *   npm install --no-save seek-bzip@2 unbzip2-stream@1
 *   node --import tsx bench/bzip2-decoders.ts
 */
import { createReadStream, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

import { bunzip2 } from "../lib/fits/bzip2.js";
import { packageRoot } from "../lib/paths.js";

const require = createRequire(import.meta.url);
interface SeekBzip {
  decode(input: Buffer): Buffer;
}
type Unbzip2 = () => NodeJS.ReadWriteStream;
let seekBzip: SeekBzip;
let unbzip2: Unbzip2;
try {
  seekBzip = require("seek-bzip") as SeekBzip;
  unbzip2 = require("unbzip2-stream") as Unbzip2;
} catch {
  console.error(
    "install the JS decoders first: npm install --no-save seek-bzip@2 unbzip2-stream@1",
  );
  process.exit(2);
}

const dir = join(packageRoot(), "..", "shared", "fixtures", "fits", "gemini");
const rounds = 5;

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  await fn();
  const start = performance.now();
  for (let i = 0; i < rounds; i++) {
    await fn();
  }
  return (performance.now() - start) / rounds;
}

async function native(
  path: string,
  program: string,
  args: string[],
): Promise<void> {
  for await (const _chunk of bunzip2(createReadStream(path), path, {
    program,
    args,
  })) {
    // drained
  }
}

console.log("ms per file (lower is better)");
console.log(
  [
    "file".padEnd(40),
    "seek-bzip",
    "unbzip2-stream",
    "bzip2 child",
    "lbzip2 child",
  ].join("  "),
);
for (const name of readdirSync(dir)
  .filter((n) => n.endsWith(".bz2"))
  .sort()) {
  const path = join(dir, name);
  const input = readFileSync(path);
  const results = [
    await time(() => seekBzip.decode(input)),
    await time(
      () =>
        new Promise((resolve, reject) => {
          createReadStream(path)
            .pipe(unbzip2())
            .on("data", () => undefined)
            .on("end", resolve)
            .on("error", reject);
        }),
    ),
    await time(() => native(path, "bzip2", ["-d", "-c"])),
    await time(() => native(path, "lbzip2", ["-n", "1", "-d", "-c"])),
  ];
  console.log(
    [
      name.padEnd(40),
      ...results.map((r, i) => r.toFixed(0).padStart([9, 14, 11, 12][i] ?? 9)),
    ].join("  "),
  );
}
