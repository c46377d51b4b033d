/**
 * The WebAssembly loop of one-pass drawing (float-kernel.wat): big-endian
 * float32 rows read straight into its memory, four pixels compared and summed
 * at a time, with no byte swap beforehand and no JavaScript per pixel.
 *
 * One instance per thread, reused from frame to frame. Its memory holds, for
 * rows of `width` pixels: two areas of what a picture row gathers (two
 * because a frame row may straddle two picture rows), the list of kept
 * columns (int32), the picture columns' spans, the frame columns' map to
 * picture columns, the picture's per-pixel sums, counts and whites (float64),
 * then the input rows.
 */
import { WASM_BASE64 } from "./float-kernel-wasm.js";
import type { RowMap, Spans } from "./raster.js";

/** The part of the WebAssembly global used here (this project's type libraries leave it out). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const { WebAssembly: wasm } = globalThis as unknown as { WebAssembly: Wasm };

interface KernelExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  sort(
    src: number,
    n: number,
    lowFrom: number,
    lowTo: number,
    highFrom: number,
    highTo: number,
    centre: number,
    weight: number,
    sums: number,
    others: number,
    whites: number,
    columnMap: number,
    kept: number,
  ): number;
  columns(
    sums: number,
    others: number,
    whites: number,
    n: number,
    spans: number,
    m: number,
    row: number,
    plane: number,
    rows: number,
  ): void;
}

const PAGE = 65_536;
/** Past the row, the kernel reads up to 3 pixels and writes or lists up to 3 more columns. */
const SLACK = 4;
/** A picture column's record for `columns`: from, to, left, right (int32), leftWeight, rightWeight (float64). */
const SPAN_BYTES = 32;
/** A frame column's record for `sort`: its picture columns j1, j2 (int32) and shares (float64), padded. */
const MAP_BYTES = 32;

/** The kernel's memory cannot grow to what a frame and picture need (the general path can still draw it). */
export class KernelMemoryError extends Error {
  constructor(bytes: number, cause: unknown) {
    super(`the float kernel cannot grow its memory to ${bytes} bytes`, {
      cause,
    });
  }
}

let compiled: object | null | undefined;
let shared: FloatKernel | undefined;

/**
 * This thread's kernel, or undefined where WebAssembly SIMD is missing (the
 * caller then draws the general way).
 */
export function floatKernel(): FloatKernel | undefined {
  if (compiled === undefined) {
    try {
      compiled = new wasm.Module(Buffer.from(WASM_BASE64, "base64"));
    } catch {
      compiled = null;
    }
  }
  if (compiled === null) {
    return undefined;
  }
  shared ??= new FloatKernel(
    new wasm.Instance(compiled).exports as unknown as KernelExports,
  );
  return shared;
}

/** Per picture pixel, row by row: area-weighted. */
export interface PictureSums {
  /** Between-window values less the centre. */
  sums: Float64Array;
  /** Between-window pixels. */
  counts: Float64Array;
  /** White pixels. */
  whites: Float64Array;
}

interface Views {
  kept: Int32Array;
  picture: PictureSums;
  data: DataView;
}

/** A window of values around each percentile (see one-pass.ts). */
export interface Windows {
  lowFrom: number;
  lowTo: number;
  highFrom: number;
  highTo: number;
}

export class FloatKernel {
  private readonly exports: KernelExports;
  private width = 0;
  private columns = 0;
  private pictureRows = 0;
  private keptAt = 0;
  private spansAt = 0;
  private mapAt = 0;
  private pictureAt = 0;
  private inputAt = 0;
  private inputBytes = 0;
  /** Bytes from the start that may hold something other than zero. */
  private written = 0;
  /** Made again whenever the memory grows (its buffer is then a new one). */
  private views: Views | undefined;

  constructor(exports: KernelExports) {
    this.exports = exports;
  }

  /**
   * Lays the memory out for rows of `width` pixels drawn into a picture of
   * `columns` x `rows`, its columns taking frame columns by `spans` (and
   * each frame column falling on picture columns by `map`); everything
   * summed starts at zero.
   */
  prepare(
    width: number,
    spans: Spans,
    map: RowMap,
    columns: number,
    rows: number,
  ): void {
    this.width = width;
    this.columns = columns;
    this.pictureRows = rows;
    this.keptAt = 2 * this.areaBytes();
    this.spansAt = align16(this.keptAt + 4 * (width + SLACK));
    this.mapAt = this.spansAt + SPAN_BYTES * columns;
    this.pictureAt = this.mapAt + MAP_BYTES * (width + SLACK);
    this.inputAt = align16(this.pictureAt + 3 * this.planeBytes());
    this.inputBytes = 0;
    this.reserve(this.inputAt);
    const { buffer } = this.exports.memory;
    // Memory never written is zero already (a first frame's 5 MB of planes
    // would otherwise be touched twice).
    new Uint8Array(buffer, 0, Math.min(this.written, this.inputAt)).fill(0);
    this.written = Math.max(this.written, this.inputAt);
    const records = new DataView(buffer, this.spansAt, SPAN_BYTES * columns);
    for (let j = 0; j < columns; j++) {
      const at = SPAN_BYTES * j;
      records.setInt32(at, spans.from[j] as number, true);
      records.setInt32(at + 4, spans.to[j] as number, true);
      records.setInt32(at + 8, spans.left[j] as number, true);
      records.setInt32(at + 12, spans.right[j] as number, true);
      records.setFloat64(at + 16, spans.leftWeight[j] as number, true);
      records.setFloat64(at + 24, spans.rightWeight[j] as number, true);
    }
    // Columns past the row fall on the sink column `columns`, with no share.
    const entries = new DataView(
      buffer,
      this.mapAt,
      MAP_BYTES * (width + SLACK),
    );
    const { target, weight } = map.ys;
    for (let x = 0; x < width + SLACK; x++) {
      const at = MAP_BYTES * x;
      const first = x < width ? (map.rowStart[x] as number) : -1;
      const count = x < width ? (map.rowStart[x + 1] as number) - first : 0;
      const j1 = count > 0 ? (target[first] as number) : columns;
      entries.setInt32(at, j1, true);
      entries.setInt32(
        at + 4,
        count > 1 ? (target[first + 1] as number) : j1,
        true,
      );
      entries.setFloat64(
        at + 8,
        count > 0 ? (weight[first] as number) : 0,
        true,
      );
      entries.setFloat64(
        at + 16,
        count > 1 ? (weight[first + 1] as number) : 0,
        true,
      );
    }
  }

  /** The input area, at least `bytes` long (for readStoredRows). */
  input(bytes: number): Uint8Array {
    this.inputBytes = bytes;
    this.reserve(this.inputAt + bytes + 4 * SLACK);
    this.written = Math.max(this.written, this.inputAt + bytes + 4 * SLACK);
    return new Uint8Array(this.exports.memory.buffer, this.inputAt, bytes);
  }

  /**
   * Sorts the pixels of the row at input byte `rowAt` by the windows (see
   * float-kernel.wat), adding to area `slot` with `weight`; the number of
   * columns listed to keep (see `kept`; some may be past the row).
   */
  sort(
    rowAt: number,
    windows: Windows,
    centre: number,
    weight: number,
    slot: 0 | 1,
  ): number {
    if (rowAt < 0 || rowAt + 4 * this.width > this.inputBytes) {
      throw new RangeError(`row at byte ${rowAt} is outside the input`);
    }
    return this.exports.sort(
      this.inputAt + rowAt,
      this.width,
      windows.lowFrom,
      windows.lowTo,
      windows.highFrom,
      windows.highTo,
      centre,
      weight,
      this.sumsAt(slot),
      this.othersAt(slot),
      this.whitesAt(slot),
      this.mapAt,
      this.keptAt,
    );
  }

  /** The columns the last `sort` listed to keep, in order. */
  kept(): Int32Array {
    return this.current().kept;
  }

  /** The value of column x of the row at input byte `rowAt`. */
  value(rowAt: number, x: number): number {
    return this.current().data.getFloat32(this.inputAt + rowAt + 4 * x, false);
  }

  /** Area `slot`, `rows` frame rows by weight, summed per picture column into picture row t, and emptied. */
  close(slot: 0 | 1, t: number, rows: number): void {
    if (!(t >= 0 && t < this.pictureRows)) {
      throw new RangeError(`picture row ${t} is outside the picture`);
    }
    this.exports.columns(
      this.sumsAt(slot),
      this.othersAt(slot),
      this.whitesAt(slot),
      this.width,
      this.spansAt,
      this.columns,
      this.pictureAt + 8 * this.columns * t,
      this.planeBytes(),
      rows,
    );
  }

  /** What `close` has summed so far. */
  picture(): PictureSums {
    return this.current().picture;
  }

  /** An area: sums per frame column, then others and whites per picture column and a sink. */
  private areaBytes(): number {
    return 8 * (this.width + SLACK) + 16 * (this.columns + 1);
  }

  private sumsAt(slot: 0 | 1): number {
    return slot * this.areaBytes();
  }

  private othersAt(slot: 0 | 1): number {
    return this.sumsAt(slot) + 8 * (this.width + SLACK);
  }

  private whitesAt(slot: 0 | 1): number {
    return this.othersAt(slot) + 8 * (this.columns + 1);
  }

  private planeBytes(): number {
    return 8 * this.columns * this.pictureRows;
  }

  private reserve(bytes: number): void {
    const { memory } = this.exports;
    const missing = bytes - memory.buffer.byteLength;
    if (missing > 0) {
      try {
        memory.grow(Math.ceil(missing / PAGE));
      } catch (error) {
        throw new KernelMemoryError(bytes, error);
      }
    }
    this.views = undefined;
  }

  private current(): Views {
    if (this.views === undefined) {
      const { buffer } = this.exports.memory;
      const size = this.columns * this.pictureRows;
      const plane = this.planeBytes();
      this.views = {
        kept: new Int32Array(buffer, this.keptAt, this.width + SLACK),
        picture: {
          sums: new Float64Array(buffer, this.pictureAt, size),
          counts: new Float64Array(buffer, this.pictureAt + plane, size),
          whites: new Float64Array(buffer, this.pictureAt + 2 * plane, size),
        },
        data: new DataView(buffer),
      };
    }
    return this.views;
  }
}

function align16(n: number): number {
  return Math.ceil(n / 16) * 16;
}
