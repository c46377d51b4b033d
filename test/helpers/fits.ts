import type { Header } from "../../lib/fits/header.js";
import { FitsScanner, type FitsStructure } from "../../lib/fits/scanner.js";
import { headerBytes } from "../../lib/fits/write.js";

const MINIMAL = [
  "SIMPLE  =                    T",
  "BITPIX  =                    8",
  "NAXIS   =                    0",
];

/** The structure of a data-less FITS file whose primary header holds `cards` (after SIMPLE, BITPIX, NAXIS). */
export function structureWith(
  cards: readonly string[],
  options: { minimal?: boolean } = {},
): FitsStructure {
  const scanner = new FitsScanner();
  scanner.push(
    headerBytes([
      ...(options.minimal === false ? [] : MINIMAL),
      ...cards.map((c) => c.trimEnd()),
    ]),
  );
  return scanner.end();
}

/** The primary header of such a file. */
export function headerWith(
  cards: readonly string[],
  options: { minimal?: boolean } = {},
): Header {
  const hdu = structureWith(cards, options).hdus[0];
  if (hdu === undefined) {
    throw new Error("no primary HDU");
  }
  return hdu.header;
}
