/** The messages between a PreviewPool and its rendering threads. */
import { FitsFormatError, type FitsProblem } from "../fits/errors.js";
import type { RenderOptions, RenderOutcome } from "./render.js";

export interface RenderRequest {
  id: number;
  /** An uncompressed FITS file. */
  path: string;
  options: RenderOptions;
}

/** An error thrown in a thread, as data: classes do not cross threads. */
export interface ThreadError {
  name: string;
  message: string;
  /** Set for a FitsFormatError. */
  problem?: FitsProblem;
  context?: Record<string, unknown>;
  /** Set for another FitsfleetError. */
  code?: string;
  stack?: string | undefined;
}

export type RenderReply =
  | { id: number; ok: true; outcome: RenderOutcome }
  | { id: number; ok: false; error: ThreadError };

/**
 * A FitsFormatError rebuilt from its parts (after crossing a thread), naming
 * `file` instead of the path that was read: for a `.bz2` file the pixels come
 * from a temporary decompressed copy, but the operator needs the real name.
 */
export function fitsErrorFor(
  parts: {
    problem: FitsProblem;
    message: string;
    context?: Record<string, unknown>;
  },
  file?: string,
): FitsFormatError {
  const context = parts.context ?? {};
  const read = typeof context.file === "string" ? context.file : undefined;
  const hdu = typeof context.hdu === "number" ? context.hdu : undefined;
  const offset =
    typeof context.offset === "number" ? context.offset : undefined;
  // FitsFormatError prefixes its message with the place; take that prefix off
  // so the rebuilt error does not carry it twice.
  const place = [
    read,
    hdu === undefined ? undefined : `HDU ${hdu}`,
    offset === undefined ? undefined : `byte ${offset}`,
  ]
    .filter((p) => p !== undefined)
    .join(", ");
  const message =
    place !== "" && parts.message.startsWith(`${place}: `)
      ? parts.message.slice(place.length + 2)
      : parts.message;
  return new FitsFormatError(parts.problem, message, {
    file: file ?? read,
    ...(hdu === undefined ? {} : { hdu }),
    ...(offset === undefined ? {} : { offset }),
  });
}
