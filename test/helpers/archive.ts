/**
 * Storage folders of real FITS files for rebuild tests: the Gemini fixture
 * files as they are, the header dumps turned into FITS files, and a few
 * deliberately broken ones, under nested paths like an archive's.
 */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";

import { loadHeaderDumps, writeDumpAsFits } from "./header-dumps.js";
import { sharedPath } from "./shared.js";
import { tempDir } from "./tmp.js";

export interface TestArchive {
  root: string;
  /** path → file names, the good ones. */
  good: { path: string; name: string }[];
  corrupt: { path: string; name: string; why: RegExp }[];
}

export function testArchive(
  t: TestContext,
  options: { dumpsPerInstrument?: number } = {},
): TestArchive {
  const root = tempDir(t, "ff-archive-");
  const good: TestArchive["good"] = [];
  const fixtures = sharedPath("fixtures", "fits", "gemini");
  mkdirSync(join(root, "gemini"), { recursive: true });
  for (const name of readdirSync(fixtures).sort()) {
    copyFileSync(join(fixtures, name), join(root, "gemini", name));
    good.push({ path: "gemini", name });
  }
  const perInstrument = new Map<string, number>();
  for (const dump of loadHeaderDumps()) {
    const n = perInstrument.get(dump.instrument) ?? 0;
    if (
      options.dumpsPerInstrument !== undefined &&
      n >= options.dumpsPerInstrument
    ) {
      continue;
    }
    perInstrument.set(dump.instrument, n + 1);
    const path = `dumps/${dump.instrument.toLowerCase()}`;
    mkdirSync(join(root, path), { recursive: true });
    writeDumpAsFits(dump, join(root, path, dump.fitsName));
    good.push({ path, name: dump.fitsName });
  }
  mkdirSync(join(root, "broken"), { recursive: true });
  const corrupt: TestArchive["corrupt"] = [
    { path: "broken", name: "N20990101S0001.fits", why: /not a FITS file/ },
    {
      path: "broken",
      name: "N20990101S0002.fits.bz2",
      why: /bzip2|compressed/i,
    },
    {
      path: "broken",
      name: "N20990101S0003.fits",
      why: /no END card|ends inside a header|missing/i,
    },
  ];
  writeFileSync(
    join(root, "broken", corrupt[0]!.name),
    "an observing log, not FITS\n",
  );
  writeFileSync(
    join(root, "broken", corrupt[1]!.name),
    Buffer.from("BZh91AY&SYnot really bzip2"),
  );
  writeFileSync(
    join(root, "broken", corrupt[2]!.name),
    "SIMPLE  =                    T".padEnd(80) +
      "BITPIX  =                   16".padEnd(80),
  );
  // Not FITS by name: the enqueue leaves them out.
  writeFileSync(join(root, "gemini", "N20990101S0001_preview.jpg"), "jpg");
  writeFileSync(join(root, "gemini", "tmp_N20990101S0009.fits"), "partial");
  return { root, good, corrupt };
}
