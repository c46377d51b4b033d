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
 * megabyte; nothing else of the file is kept. For a whole frame that should
 * not be held at all (a preview of a 100 MB mosaic), `readFloatRows` and
 * `readCodeRows` lend blocks of rows to a callback, one at a time.
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

export interface RowBlockOptions {
  /** Which width × height plane of a cube (0-based); default 0. */
  plane?: number;
  /** Only these pixels; default the whole plane. */
  section?: Rect;
}

/**
 * Rows `row` to `row + rows − 1` of the section (counted from its first row):
 * pixel (c, row + r) of the section is `values[start + r × stride + c]`. The
 * array is lent until the callback returns, then reused for the next block.
 */
export type RowBlockVisitor<T> = (
  values: T,
  start: number,
  stride: number,
  row: number,
  rows: number,
) => void;

/** The stored values of BITPIX 8 and 16 images, as indices into a table of 256 or 65,536 entries (codeDecoder). */
export type Codes = Uint8Array | Uint16Array;

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
  /**
   * One read buffer for every read, so streaming a frame amplifier by
   * amplifier leaves no trail of megabyte buffers for the collector.
   */
  private block: { bytes: Buffer; buffer: ArrayBuffer } | undefined;

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
    this.block = undefined;
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
    const section = sectionOf(layout, options.section);
    const offset = options.offset ?? 0;
    const stride = options.stride ?? section.width;
    checkRequest(layout, options.plane ?? 0, section);
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
    const convert = converter(layout, options.multiply ?? 1, options.add ?? 0);
    this.readBlocks(layout, options, true, (buffer, row, rows) => {
      for (let r = 0; r < rows; r++) {
        convert(
          buffer,
          r * layout.width + section.x,
          section.width,
          target,
          offset + (row + r) * stride,
        );
      }
    });
  }

  /**
   * Streams a section as float32 values, `multiply × physical + add`, a block
   * of rows at a time. Unscaled BITPIX -32 data is lent as it was read, byte
   * order swapped in place; anything else is converted into a block of its own.
   */
  readFloatRows(
    layout: ImageLayout,
    options: RowBlockOptions & { multiply?: number; add?: number },
    visit: RowBlockVisitor<Float32Array>,
  ): void {
    const section = sectionOf(layout, options.section);
    const multiply = options.multiply ?? 1;
    const add = options.add ?? 0;
    if (
      layout.bitpix === -32 &&
      layout.bscale * multiply === 1 &&
      layout.bzero * multiply + add === 0
    ) {
      this.readBlocks(layout, options, true, (buffer, row, rows) => {
        const values = new Float32Array(buffer, 0, rows * layout.width);
        visit(values, section.x, layout.width, row, rows);
      });
      return;
    }
    const convert = converter(layout, multiply, add);
    let block = new Float32Array(0);
    this.readBlocks(layout, options, true, (buffer, row, rows) => {
      if (block.length < rows * section.width) {
        block = new Float32Array(rows * section.width);
      }
      for (let r = 0; r < rows; r++) {
        convert(
          buffer,
          r * layout.width + section.x,
          section.width,
          block,
          r * section.width,
        );
      }
      visit(block, 0, section.width, row, rows);
    });
  }

  /**
   * Streams a BITPIX -32 section as it is stored, big-endian: value p is the
   * 16-bit halves `halves[2p]` and `halves[2p + 1]` read little-endian (start
   * and stride count values, not halves). For counting values by their bits
   * without swapping bytes first.
   */
  readBigEndianHalves(
    layout: ImageLayout,
    options: RowBlockOptions,
    visit: RowBlockVisitor<Uint16Array>,
  ): void {
    if (layout.bitpix !== -32) {
      throw new Error(
        `BITPIX ${layout.bitpix} values are not float32; use readFloatRows`,
      );
    }
    const section = sectionOf(layout, options.section);
    this.readBlocks(layout, options, false, (buffer, row, rows) => {
      const halves = new Uint16Array(buffer, 0, 2 * rows * layout.width);
      visit(halves, section.x, layout.width, row, rows);
    });
  }

  /**
   * Streams a BITPIX 8 or 16 section as codes (see `codeDecoder`) without
   * converting anything: 16-bit values are read in the machine's byte order,
   * and the table of what each code means absorbs the swap.
   */
  readCodeRows(
    layout: ImageLayout,
    options: RowBlockOptions,
    visit: RowBlockVisitor<Codes>,
  ): void {
    if (!isCoded(layout)) {
      throw new Error(
        `BITPIX ${layout.bitpix} values are not read as codes; use readFloatRows`,
      );
    }
    const section = sectionOf(layout, options.section);
    const wide = layout.bitpix === 16;
    this.readBlocks(layout, options, false, (buffer, row, rows) => {
      const count = rows * layout.width;
      const codes = wide
        ? new Uint16Array(buffer, 0, count)
        : new Uint8Array(buffer, 0, count);
      visit(codes, section.x, layout.width, row, rows);
    });
  }

  /**
   * Reads whole rows covering the section as stored (big-endian), about a
   * megabyte at a time, into the buffer `into(bytes)` lends (a WebAssembly
   * memory, say): then `visit(row, rows)` has section rows [row, row + rows),
   * all `layout.width` pixels of each, from the buffer's start.
   */
  readStoredRows(
    layout: ImageLayout,
    options: RowBlockOptions,
    into: (bytes: number) => Uint8Array,
    visit: (row: number, rows: number) => void,
  ): void {
    this.readBlocks(
      layout,
      options,
      false,
      (_buffer, row, rows) => {
        visit(row, rows);
      },
      into,
    );
  }

  /**
   * Reads whole rows covering the section, about a megabyte at a time, into
   * the shared buffer (or the one `into` lends): block row r is section row
   * `row + r`, all `layout.width` pixels of it. The visitor must not read
   * from this reader while it holds a block.
   */
  private readBlocks(
    layout: ImageLayout,
    options: RowBlockOptions,
    swapped: boolean,
    visit: (buffer: ArrayBuffer, row: number, rows: number) => void,
    into?: (bytes: number) => Uint8Array,
  ): void {
    const fd = this.fd;
    if (fd === undefined) {
      throw new Error(`${this.path} is closed`);
    }
    const plane = options.plane ?? 0;
    const section = sectionOf(layout, options.section);
    checkRequest(layout, plane, section);
    if (section.width === 0 || section.height === 0) {
      return;
    }
    if (layout.dataOffset + layout.dataSize > this.size) {
      throw this.truncated(layout, this.size);
    }
    const bytes = Math.abs(layout.bitpix) / 8;
    const rowBytes = layout.width * bytes;
    const rowsPerRead = Math.max(1, Math.floor(READ_BYTES / rowBytes));
    const size = Math.min(rowsPerRead, section.height) * rowBytes;
    const lent = into?.(size);
    const { bytes: buffer, buffer: shared } =
      lent === undefined
        ? this.buffer(size)
        : { bytes: lent, buffer: lent.buffer as ArrayBuffer };
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
      if (swapped) {
        swap(Buffer.from(buffer.buffer, buffer.byteOffset, length), bytes);
      }
      visit(shared, row, rows);
    }
  }

  /** The shared read buffer, at least `size` bytes, over an ArrayBuffer of its own (aligned views). */
  private buffer(size: number): { bytes: Buffer; buffer: ArrayBuffer } {
    if (this.block === undefined || this.block.buffer.byteLength < size) {
      const buffer = new ArrayBuffer(Math.max(size, READ_BYTES));
      this.block = { bytes: Buffer.from(buffer), buffer };
    }
    return this.block;
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

/** Whether an image's values can be read as codes (readCodeRows): BITPIX 8 and 16. */
export function isCoded(layout: ImageLayout): boolean {
  return layout.bitpix === 8 || layout.bitpix === 16;
}

/**
 * What a code of a BITPIX 8 or 16 image stands for: `multiply × physical +
 * add` rounded to float32, exactly what readInto stores for that stored
 * value, or NaN for BLANK. A 16-bit code is the big-endian value read
 * little-endian.
 */
export function codeDecoder(
  layout: ImageLayout,
  multiply = 1,
  add = 0,
): (code: number) => number {
  if (!isCoded(layout)) {
    throw new Error(`BITPIX ${layout.bitpix} values are not read as codes`);
  }
  const a = layout.bscale * multiply;
  const b = layout.bzero * multiply + add;
  const blank = layout.blank === undefined ? undefined : Number(layout.blank);
  const wide = layout.bitpix === 16;
  return (code) => {
    // Back to big-endian order, then the sign of an int16.
    const stored = wide
      ? ((((code & 0xff) << 8) | (code >>> 8)) << 16) >> 16
      : code;
    return stored === blank ? NaN : Math.fround(a * stored + b);
  };
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
  // One view of the whole (shared, reused) read buffer: making a typed array
  // per row costs more than converting a short row.
  let viewed: ArrayBuffer | undefined;
  let values = new View(0);
  return (buffer, from, count, out, at) => {
    if (buffer !== viewed) {
      viewed = buffer;
      values = new View(buffer, 0, buffer.byteLength / View.BYTES_PER_ELEMENT);
    }
    if (plain) {
      if (count >= 1024) {
        // Native conversion, several times faster than a long element loop.
        out.set(values.subarray(from, from + count), at);
      } else {
        for (let i = 0; i < count; i++) {
          out[at + i] = values[from + i] as number;
        }
      }
      return;
    }
    if (blank === undefined) {
      for (let i = 0; i < count; i++) {
        out[at + i] = a * (values[from + i] as number) + b;
      }
      return;
    }
    for (let i = 0; i < count; i++) {
      const v = values[from + i] as number;
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
