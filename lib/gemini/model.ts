/**
 * Building the file as descriptors see it (docs/MAPPING-NOTES.md §1): the
 * primary header, the science extensions, the file name and the tags; and the
 * keyword readers descriptors share.
 */
import type { FitsStructure } from "../fits/scanner.js";
import {
  type Descriptor,
  DescriptorError,
  type GeminiFile,
} from "./gemini-file.js";
import { computeTags } from "./tags.js";

export function geminiFile(
  structure: FitsStructure,
  fileName: string,
): GeminiFile {
  const [primary, ...extensions] = structure.hdus;
  if (primary === undefined) {
    throw new Error("a FITS file has at least one HDU");
  }
  let sci = extensions
    .filter((h) => {
      const name = h.header.string("EXTNAME");
      // An image extension without EXTNAME counts as SCI.
      return name === "SCI" || (name === undefined && h.type === "IMAGE");
    })
    .map((h) => h.header);
  // A single-HDU image: the primary header stands in as the only SCI extension.
  if (extensions.length === 0 && primary.dataSize > 0) {
    sci = [primary.header];
  }
  const { instrumentClass, tags, error } = computeTags(primary.header, {
    sci,
    fileName,
  });
  return {
    phu: primary.header,
    sci,
    fileName,
    instrumentClass,
    tags,
    tagError: error,
  };
}

/** A PHU keyword's value as a descriptor value: strings and numbers pass, anything else is null. */
export function phuScalar(
  f: GeminiFile,
  keyword: string,
): string | number | null {
  const value = f.phu.get(keyword);
  return typeof value === "string" || typeof value === "number"
    ? value
    : typeof value === "bigint"
      ? Number(value)
      : null;
}

/**
 * A PHU keyword read as a float, as Python's float() would: numbers and numeric
 * strings; anything else is a DescriptorError. Absent gives `fallback`.
 */
export function phuFloat(
  f: GeminiFile,
  keyword: string,
  fallback?: number,
): number | undefined {
  const raw = f.phu.get(keyword);
  if (raw === undefined) {
    return fallback;
  }
  const value =
    typeof raw === "string"
      ? Number.parseFloat(raw)
      : typeof raw === "number"
        ? raw
        : NaN;
  if (Number.isNaN(value)) {
    throw new DescriptorError(
      `${keyword} is not a number: ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/**
 * A read mode named by the number of reads (LNRS) and digital averages
 * (NDAVGS), as NIRI and GNIRS define it; "Unknown" for other combinations.
 */
export function readModeByReads(names: Record<string, string>): Descriptor {
  return (f) =>
    names[`${String(f.phu.get("LNRS"))},${String(f.phu.get("NDAVGS"))}`] ??
    "Unknown";
}
