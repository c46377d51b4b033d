/**
 * Writing FITS headers: cards padded to 80 characters, END, blocks padded with
 * spaces to 2880 bytes. Used to build synthetic archives and test files.
 */
import type { FitsValue } from "./card.js";
import { BLOCK } from "./scanner.js";

const CARD = 80;

/** Pads one card image to 80 characters; longer text is an error, not silently cut. */
export function cardImage(text: string): string {
  if (text.length > CARD) {
    throw new Error(
      `a FITS card holds 80 characters; this one has ${text.length}: ${text}`,
    );
  }
  return text.padEnd(CARD, " ");
}

/** A fixed-format card: keyword in columns 1–8, "= ", value right-justified to column 30 (strings left). */
export function formatCard(
  keyword: string,
  value: FitsValue,
  comment?: string,
): string {
  let field: string;
  if (typeof value === "string") {
    field = `'${value.replaceAll("'", "''").padEnd(8, " ")}'`.padEnd(20, " ");
  } else if (typeof value === "boolean") {
    field = (value ? "T" : "F").padStart(20, " ");
  } else if (typeof value === "number") {
    // String() gives "0.0015" or "1e-7"; FITS wants the exponent letter upper-case.
    field = String(value).toUpperCase().padStart(20, " ");
  } else if (typeof value === "bigint") {
    field = String(value).padStart(20, " ");
  } else if (value === null) {
    field = "".padStart(20, " ");
  } else {
    field = `(${value.re}, ${value.im})`.padStart(20, " ");
  }
  const base = `${keyword.toUpperCase().padEnd(8, " ")}= ${field}`;
  return cardImage(
    comment === undefined ? base : `${base} / ${comment}`.slice(0, CARD),
  );
}

/** Header bytes from card images: END appended, padded to whole blocks with spaces. */
export function headerBytes(images: readonly string[]): Buffer {
  const text = [...images.map(cardImage), cardImage("END")].join("");
  const size = Math.ceil(text.length / BLOCK) * BLOCK;
  return Buffer.from(text.padEnd(size, " "), "latin1");
}

/** Zero bytes that pad a data unit of `size` bytes to whole blocks. */
export function dataPadding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}
