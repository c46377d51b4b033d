/**
 * The file as descriptors see it (docs/MAPPING-NOTES.md §1) and the error a
 * descriptor throws. Kept apart from `model.ts`, which builds a GeminiFile by
 * computing the tags: the tags need `ut_datetime` (the GMOS STANDARD tag),
 * which needs these types, so they must not live beside the tag computation.
 */
import type { Header } from "../fits/header.js";

export type InstrumentClass = "GMOS" | "NIRI" | "F2" | "GNIRS" | "GEMINI";

/** Scalars, or one value per science extension. */
export type DescriptorValue =
  string | number | boolean | null | (string | number | null)[];

export interface GeminiFile {
  phu: Header;
  /** Headers of the SCI extensions in file order (§1.2); empty when there are none. */
  sci: Header[];
  fileName: string;
  instrumentClass: InstrumentClass | undefined;
  tags: Set<string>;
  /** Why the tags could not be computed (the reference would fail the file); the tags are then empty. */
  tagError: string | undefined;
}

export type Descriptor = (f: GeminiFile) => DescriptorValue;

/** A descriptor that cannot produce a value throws this; `describe` turns it into null plus a reason. */
export class DescriptorError extends Error {}
