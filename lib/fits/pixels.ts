/**
 * Reading the pixels of image data units from an uncompressed FITS file on
 * disk, by offset (the scanner gives every HDU's data offset and size).
 *
 * Values become physical values, BZERO + BSCALE × stored (FITS 4.0 §4.4.2.5),
 * with BLANK (integer BITPIX only) turned into NaN, in a Float32Array by
 * default: half the memory of float64, and its 24-bit mantissa leaves 16 bits
 * of headroom over a preview's 8, so 16-bit counts, float data and most
 * 32-bit counts are exact or nearly so. Ask for `float64: true` when more is
 * needed: integers above 2^24 that must stay exact, or float64 data outside
 * float32's range (about 1e-38 to 3e38), which would become 0 or ±Inf.
 *
 * Only the requested plane or section is held, plus one read buffer of about a
 * megabyte; nothing else of the file is kept.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

import { FitsFormatError } from "./errors.js";
import type { Hdu } from "./scanner.js";

/** One 2-D plane of an image HDU, with the axes of length 1 dropped as numpy.squeeze does. */
export interface ImageLayout {
  hdu: number;
  bitpix: number;
  /** Pixels along the first axis longer than 1 (a row). */
  width: number;
  /** Rows: pixels along the second axis longer than 1. */
  height: number;
  /** Planes of width × height: the product of the further axes (1 for a 2-D image). */
  planes: number;
  bzero: number;
  bscale: number;
  /** The stored integer that means "no value" (integer BITPIX only). */
  blank: number | bigint | undefined;
  dataOffset: number;
  dataSize: number;
}

export type ImageLayoutResult =
  { ok: true; layout: ImageLayout } | { ok: false; reason: string };

/** A rectangle of a plane: 0-based first column and row, and its size. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ReadImageOptions {
  /** Which width × height plane of a cube (0-based); default 0. */
  plane?: number;
  /** Only these pixels; default the whole plane. */
  section?: Rect;
  /** Float64Array instead of Float32Array (see the module comment for when). */
  float64?: boolean;
}

export interface ReadIntoOptions extends Omit<ReadImageOptions, "float64"> {
  /** Where the section's first pixel goes in the target; default 0. */
  offset?: number;
  /** Target elements from one section row to the next; default the section width. */
  stride?: number;
  /** Applied to the physical value: multiply × value + add; default 1 and 0. */
  multiply?: number;
  add?: number;
}

export interface ImagePixels<T extends Float32Array | Float64Array> {
  width: number;
  height: number;
  /** Row-major, first FITS row (the bottom of the image) first. */
  data: T;
}

/**
 * Whether an HDU holds an image with at least two axes longer than one pixel,
 * and its layout; otherwise the reason, worded for an operator.
 */
export function imageLayout(hdu: Hdu): ImageLayoutResult {
  const name = hdu.index === 0 ? "the primary HDU" : `HDU ${hdu.index}`;
  if (hdu.type !== "primary" && hdu.type !== "IMAGE") {
    // A tile-compressed image is a BINTABLE with ZIMAGE = T: its pixels need
    // decompressing, which the archive's previews never did either.
    const what =
      hdu.header.get("ZIMAGE") === true
        ? "a tile-compressed image (a BINTABLE), which is not read"
        : `a ${hdu.type || "non-image"} extension`;
    return { ok: false, reason: `${name} is ${what}` };
  }
  if (hdu.randomGroups) {
    return { ok: false, reason: `${name} holds random groups, not an image` };
  }
  // An axis of length 0 makes the data size 0 too.
  if (hdu.axes.length === 0 || hdu.dataSize === 0) {
    return { ok: false, reason: `${name} has no data` };
  }
  const long = hdu.axes.filter((n) => n !== 1);
  const [width, height] = long;
  if (width === undefined || height === undefined) {
    return {
      ok: false,
      reason:
        long.length === 0
          ? `${name} holds a single pixel`
          : `${name} is one-dimensional (${width} values, a spectrum or a vector)`,
    };
  }
  const integer = hdu.bitpix > 0;
  const blank = integer ? hdu.header.get("BLANK") : undefined;
  return {
    ok: true,
    layout: {
      hdu: hdu.index,
      bitpix: hdu.bitpix,
      width,
      height,
      planes: long.slice(2).reduce((product, n) => product * n, 1),
      bzero: hdu.header.number("BZERO") ?? 0,
      bscale: hdu.header.number("BSCALE") ?? 1,
      blank:
        typeof blank === "bigint" ||
        (typeof blank === "number" && Number.isInteger(blank))
          ? blank
          : undefined,
      dataOffset: hdu.dataOffset,
      dataSize: hdu.dataSize,
    },
  };
}

/** About a megabyte of whole rows per read: few system calls, little memory. */
const READ_BYTES = 1 << 20;

/**
 * An open FITS file from which image pixels are read by offset. Close it when
 * done; reads are synchronous, for use in a worker thread or a CLI.
 */
export class FitsPixelReader {
  readonly path: string;
  private fd: number | undefined;
  private readonly size: number;

  constructor(path: string) {
    this.path = path;
    this.fd = openSync(path, "r");
    try {
      this.size = fstatSync(this.fd).size;
    } catch (error) {
      this.close();
      throw error;
    }
  }

  close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }

  read(
    layout: ImageLayout,
    options: ReadImageOptions & { float64: true },
  ): ImagePixels<Float64Array>;
  read(
    layout: ImageLayout,
    options?: ReadImageOptions & { float64?: false },
  ): ImagePixels<Float32Array>;
  read(
    layout: ImageLayout,
    options: ReadImageOptions = {},
  ): ImagePixels<Float32Array | Float64Array> {
    const section = sectionOf(layout, options.section);
    const count = section.width * section.height;
    const data = options.float64
      ? new Float64Array(count)
      : new Float32Array(count);
    this.readInto(layout, data, { ...options, section });
    return { width: section.width, height: section.height, data };
  }

  /**
   * Reads straight into a larger array (a mosaic), row by row: section row r
   * goes to `offset + r × stride`. Each value is `multiply × physical + add`,
   * so a bias and a gain cost no second pass.
   */
  readInto(
    layout: ImageLayout,
    target: Float32Array | Float64Array,
    options: ReadIntoOptions = {},
  ): void {
    const fd = this.fd;
    if (fd === undefined) {
      throw new Error(`${this.path} is closed`);
    }
    const plane = options.plane ?? 0;
    const section = sectionOf(layout, options.section);
    const offset = options.offset ?? 0;
    const stride = options.stride ?? section.width;
    checkRequest(layout, plane, section);
    if (section.width === 0 || section.height === 0) {
      return;
    }
    if (
      stride < section.width ||
      offset < 0 ||
      offset + (section.height - 1) * stride + section.width > target.length
    ) {
      throw new RangeError(
        `a ${section.width} x ${section.height} section does not fit the target at offset ${offset}, stride ${stride}`,
      );
    }
    if (layout.dataOffset + layout.dataSize > this.size) {
      throw this.truncated(layout, this.size);
    }
    const bytes = Math.abs(layout.bitpix) / 8;
    const rowBytes = layout.width * bytes;
    const rowsPerRead = Math.max(1, Math.floor(READ_BYTES / rowBytes));
    // Its own ArrayBuffer, so typed views over it start aligned.
    const buffer = Buffer.from(
      new ArrayBuffer(Math.min(rowsPerRead, section.height) * rowBytes),
    );
    const convert = converter(layout, options.multiply ?? 1, options.add ?? 0);
    const planeStart =
      layout.dataOffset + plane * layout.width * layout.height * bytes;
    for (let row = 0; row < section.height; row += rowsPerRead) {
      const rows = Math.min(rowsPerRead, section.height - row);
      const length = rows * rowBytes;
      const position = planeStart + (section.y + row) * rowBytes;
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buffer, got, length - got, position + got);
        if (n === 0) {
          throw this.truncated(layout, position + got);
        }
        got += n;
      }
      swap(buffer.subarray(0, length), bytes);
      for (let r = 0; r < rows; r++) {
        convert(
          buffer.buffer,
          r * layout.width + section.x,
          section.width,
          target,
          offset + (row + r) * stride,
        );
      }
    }
  }

  private truncated(layout: ImageLayout, offset: number): FitsFormatError {
    return new FitsFormatError(
      "truncated-data",
      `the file ends at byte ${this.size}, inside the data unit of HDU ${layout.hdu} (${layout.dataSize} bytes from byte ${layout.dataOffset})`,
      { file: this.path, hdu: layout.hdu, offset },
    );
  }
}

/** Reads one plane (or a section of it) of an image HDU in one call. */
export function readImage(
  path: string,
  layout: ImageLayout,
  options: ReadImageOptions & { float64?: false } = {},
): ImagePixels<Float32Array> {
  const reader = new FitsPixelReader(path);
  try {
    return reader.read(layout, options);
  } finally {
    reader.close();
  }
}

function sectionOf(layout: ImageLayout, section: Rect | undefined): Rect {
  return section ?? { x: 0, y: 0, width: layout.width, height: layout.height };
}

function checkRequest(layout: ImageLayout, plane: number, rect: Rect): void {
  const whole = (n: number) => Number.isInteger(n) && n >= 0;
  if (!whole(plane) || plane >= layout.planes) {
    throw new RangeError(
      `HDU ${layout.hdu} has ${layout.planes} plane(s); plane ${plane} was asked for`,
    );
  }
  if (
    ![rect.x, rect.y, rect.width, rect.height].every(whole) ||
    rect.x + rect.width > layout.width ||
    rect.y + rect.height > layout.height
  ) {
    throw new RangeError(
      `section ${JSON.stringify(rect)} is outside HDU ${layout.hdu}'s ${layout.width} x ${layout.height} pixels`,
    );
  }
}

/** FITS is big-endian; every platform Node runs on here is little-endian. */
function swap(bytes: Buffer, size: number): void {
  if (size === 2) {
    bytes.swap16();
  } else if (size === 4) {
    bytes.swap32();
  } else if (size === 8) {
    bytes.swap64();
  }
}

type Target = Float32Array | Float64Array;
/** Converts `count` stored values from element `from` of the swapped buffer into `out` at `at`. */
type Convert = (
  buffer: ArrayBuffer,
  from: number,
  count: number,
  out: Target,
  at: number,
) => void;

function converter(
  layout: ImageLayout,
  multiply: number,
  add: number,
): Convert {
  const { bitpix } = layout;
  // One multiply-add per value: multiply × (bzero + bscale × v) + add.
  const a = layout.bscale * multiply;
  const b = layout.bzero * multiply + add;
  if (bitpix === 64) {
    return convertInt64(layout, a, b);
  }
  const View = {
    8: Uint8Array,
    16: Int16Array,
    32: Int32Array,
    [-32]: Float32Array,
    [-64]: Float64Array,
  }[bitpix];
  if (View === undefined) {
    throw new Error(`BITPIX ${bitpix} is not an image type`);
  }
  const blank =
    bitpix > 0 && layout.blank !== undefined ? Number(layout.blank) : undefined;
  const plain = a === 1 && b === 0 && blank === undefined;
  return (buffer, from, count, out, at) => {
    const values = new View(buffer, from * View.BYTES_PER_ELEMENT, count);
    if (plain) {
      // Native conversion, several times faster than an element loop.
      out.set(values, at);
      return;
    }
    if (blank === undefined) {
      for (let i = 0; i < count; i++) {
        out[at + i] = a * (values[i] as number) + b;
      }
      return;
    }
    for (let i = 0; i < count; i++) {
      const v = values[i] as number;
      out[at + i] = v === blank ? NaN : a * v + b;
    }
  };
}

/** BigInt per value is slow, but 64-bit integer images are rare. */
function convertInt64(layout: ImageLayout, a: number, b: number): Convert {
  const blank = layout.blank === undefined ? undefined : BigInt(layout.blank);
  return (buffer, from, count, out, at) => {
    const values = new BigInt64Array(buffer, from * 8, count);
    for (let i = 0; i < count; i++) {
      const v = values[i] as bigint;
      out[at + i] = v === blank ? NaN : a * Number(v) + b;
    }
  };
}
