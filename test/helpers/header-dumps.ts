/**
 * Turns the text header dumps in shared/fixtures/gemini-headers into real FITS
 * files (see that folder's README): cards padded to 80 characters, END added,
 * headers padded to 2880-byte blocks, each followed by a zero-filled data unit
 * of the size its header declares, written sparse so it costs no disk.
 */
import {
  closeSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

import { FitsScanner } from "../../lib/fits/scanner.js";
import { headerBytes } from "../../lib/fits/write.js";
import { sharedPath } from "./shared.js";

export interface HeaderDump {
  instrument: string;
  /** The dump's file name, e.g. N20030104S0161.fits.header */
  name: string;
  /** The FITS file name it stood for (without .header). */
  fitsName: string;
  /** Card images per HDU, primary first. */
  hdus: string[][];
}

/** Both layouts: "sectioned" (--- PHU --- / --- HDU n --- markers) and "raw" (cards, END per HDU). */
export function parseHeaderDump(text: string): string[][] {
  const lines = text.split(/\r?\n/);
  const hdus: string[][] = [];
  if (lines.some((l) => /^--- (PHU|HDU \d+) ---$/.test(l))) {
    let current: string[] | undefined;
    for (const line of lines) {
      if (/^--- (PHU|HDU \d+) ---$/.test(line)) {
        current = [];
        hdus.push(current);
      } else if (current !== undefined) {
        current.push(line);
      }
    }
    // Empty lines separate sections; blank cards (a line of spaces) belong to the header.
    for (const cards of hdus) {
      while (cards.length > 0 && cards[cards.length - 1] === "") {
        cards.pop();
      }
    }
    return hdus;
  }
  let current: string[] = [];
  for (const line of lines) {
    if (line.trimEnd() === "END") {
      hdus.push(current);
      current = [];
    } else if (line.trim() !== "" || current.length > 0) {
      current.push(line);
    }
  }
  return hdus;
}

export function loadHeaderDumps(): HeaderDump[] {
  const root = sharedPath("fixtures", "gemini-headers");
  return readdirSync(root)
    .sort()
    .flatMap((instrument) =>
      readdirSync(join(root, instrument))
        .filter((name) => name.endsWith(".header"))
        .sort()
        .map((name) => ({
          instrument,
          name,
          fitsName: name.replace(/\.header$/, ""),
          hdus: parseHeaderDump(
            readFileSync(join(root, instrument, name), "latin1"),
          ),
        })),
    );
}

/** Writes the dump as a FITS file at `path`; returns its size in bytes. */
export function writeDumpAsFits(dump: HeaderDump, path: string): number {
  const fd = openSync(path, "w");
  let position = 0;
  try {
    for (const cards of dump.hdus) {
      const header = headerBytes(cards.map((c) => c.trimEnd()));
      writeSync(fd, header, 0, header.length, position);
      position += header.length;
      // The scanner computes the (padded) data size this header declares.
      const scanner = new FitsScanner({ file: dump.name });
      if (position === header.length) {
        scanner.push(header);
      } else {
        scanner.push(
          headerBytes([
            "SIMPLE  =                    T",
            "BITPIX  =                    8",
            "NAXIS   =                    0",
            "EXTEND  =                    T",
          ]),
        );
        scanner.push(header);
      }
      position += scanner.skippable();
    }
    ftruncateSync(fd, position); // the zero-filled data units, sparse
  } finally {
    closeSync(fd);
  }
  return position;
}
