/**
 * The WebAssembly loop of one-pass drawing (float-kernel.wat): big-endian
 * float32 rows read straight into its memory, four pixels compared and summed
 * at a time, with no byte swap beforehand and no JavaScript per pixel.
 *
 * One instance per thread, reused from frame to frame. Its memory holds, for
 * rows of `width` pixels: two areas of what a picture row gathers (two
 * because a frame row may straddle two picture rows), the list of kept
 * columns (int32), the picture columns' spans, the frame columns' map to
 * picture columns, the sample's key counts (uint32), the picture's per-pixel
 * sums, counts and whites (float32), then the input rows.
 *
 * Memory touched for the first time costs a page fault (about 3 ms a
 * megabyte on the virtual machines measured), so a process's first frame
 * pays for every byte laid out here; later frames reuse it.
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
  resetTallies(): void;
  whiteTally(): number;
  blackTally(): number;
  keys(src: number, n: number, counts: number): void;
  cumulate(counts: number, n: number): void;
  lows(
    src: number,
    n: number,
    b0: number,
    b1: number,
    b2: number,
    b3: number,
    counts: number,
  ): void;
  paint(
    sums: number,
    counts: number,
    tops: number,
    blank: number,
    down: number,
    across: number,
    m: number,
    rows: number,
    scale: number,
    shift: number,
    out: number,
  ): void;
  partition(values: number, n: number, lowTo: number, out: number): number;
  weighRows(rowMap: number, n: number, down: number): void;
  nonFinite(): number;
  nans(): number;
  select(values: number, n: number, k: number): number;
  minimum(values: number, n: number): number;
  spread(
    values: number,
    xs: number,
    fs: number,
    n: number,
    rowMap: number,
    columnMap: number,
    tops: number,
    blank: number,
    m: number,
    low: number,
    scale: number,
  ): void;
}

/** What painting reads and writes besides the picture's sums, over the input area (free once the frame is read). */
export interface PaintArea {
  /** Per picture row, the frame rows' weight on it. */
  down: Float64Array;
  /** Per picture column, the frame columns' weight on it. */
  across: Float64Array;
  /** Per picture pixel, weight to take away (NaN pixels); undefined when none is. */
  blank: Float64Array | undefined;
  /** The grey levels, row by row; a pixel of no weight keeps what it holds. */
  out: Uint8Array;
}

const PAGE = 65_536;
/** Past the row, the kernel reads up to 3 pixels and writes or lists up to 3 more columns. */
const SLACK = 4;
/** A picture column's record for `columns`: from, to, left, right (int32), leftWeight, rightWeight (float64). */
const SPAN_BYTES = 32;
/** A frame column's record for `sort`: its picture columns j1, j2 (int32) and shares (float64), padded. */
const MAP_BYTES = 32;
/** Sample counts by the top 16 bits of the key (uint32). */
export const KEY_BINS = 1 << 16;
/** At most this many key bins have their next 8 bits counted (`lows`). */
export const LOW_SLOTS = 4;
const LOW_BINS = 256;

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
  sums: Float32Array;
  /** Between-window pixels. */
  counts: Float32Array;
  /** White pixels. */
  whites: Float32Array;
}

/** Frame pixels sorted so far, whole (a straddling row counted once). */
export interface Tallies {
  whites: number;
  blacks: number;
}

interface Views {
  kept: Int32Array;
  keptValues: Float32Array;
  picture: PictureSums;
  keyCounts: Uint32Array;
  lowCounts: Uint32Array;
}

/** How `keep` split the kept pixels. */
export interface KeptSplit {
  /** Finite values in the low window (at or below its top) and in the high window. */
  lows: number;
  highs: number;
  /** NaN and infinite values, and the NaNs among them. */
  nonFinite: number;
  nans: number;
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
  private keysAt = 0;
  private lowsAt = 0;
  private inputAt = 0;
  private inputBytes = 0;
  /** Bytes of sample from the picture's start (see `sample`). */
  private sampleBytes = 0;
  /** Set by `keep` for the frame just read. */
  private split: (KeptSplit & { n: number; frameRows: number }) | undefined;
  /** Set by paintArea for the next paint. */
  private painted: { withBlank: boolean } | undefined;
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
    // The kept columns (int32), then their values (float32).
    this.spansAt = align16(this.keptAt + 8 * (width + SLACK));
    this.mapAt = this.spansAt + SPAN_BYTES * columns;
    this.pictureAt = align16(
      this.mapAt +
        MAP_BYTES * (width + SLACK) +
        4 * (KEY_BINS + LOW_SLOTS * LOW_BINS),
    );
    this.keysAt = this.pictureAt - 4 * (KEY_BINS + LOW_SLOTS * LOW_BINS);
    this.lowsAt = this.keysAt + 4 * KEY_BINS;
    this.inputAt = align16(this.pictureAt + 3 * this.planeBytes());
    this.inputBytes = 0;
    this.sampleBytes = 0;
    this.split = undefined;
    this.exports.resetTallies();
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
    this.writeMap(this.mapAt, map, width + SLACK, columns);
  }

  /**
   * For each of `count` frame columns (or rows) from the start of `map`, a
   * record at `at`: the (at most two) picture columns it falls on, int32,
   * and its shares of them, float64; one picture column is given twice
   * with share 0, and indexes past the map fall on `sink` with none.
   */
  private writeMap(at: number, map: RowMap, count: number, sink: number): void {
    const { target, weight } = map.ys;
    const length = map.frameHeight;
    const entries = new DataView(
      this.exports.memory.buffer,
      at,
      MAP_BYTES * count,
    );
    for (let x = 0; x < count; x++) {
      const record = MAP_BYTES * x;
      const first = x < length ? (map.rowStart[x] as number) : -1;
      const listed = x < length ? (map.rowStart[x + 1] as number) - first : 0;
      const j1 = listed > 0 ? (target[first] as number) : sink;
      entries.setInt32(record, j1, true);
      entries.setInt32(
        record + 4,
        listed > 1 ? (target[first + 1] as number) : j1,
        true,
      );
      entries.setFloat64(
        record + 8,
        listed > 0 ? (weight[first] as number) : 0,
        true,
      );
      entries.setFloat64(
        record + 16,
        listed > 1 ? (weight[first + 1] as number) : 0,
        true,
      );
    }
  }

  /** `bytes` of the input area from byte `offset` (for readStoredRows), which then ends there. */
  input(bytes: number, offset = 0): Uint8Array {
    const end = offset + bytes;
    this.inputBytes = end;
    this.reserve(this.inputAt + end + 4 * SLACK);
    this.written = Math.max(this.written, this.inputAt + end + 4 * SLACK);
    return new Uint8Array(
      this.exports.memory.buffer,
      this.inputAt + offset,
      bytes,
    );
  }

  /**
   * `bytes` of the sample area from byte `offset`, for rows read as stored
   * before the frame is: the picture's planes, not yet needed (and the input
   * past them), so a sample costs no memory of its own. `endSample` before
   * the frame's rows are sorted.
   */
  sample(bytes: number, offset: number): Uint8Array {
    const end = offset + bytes;
    this.sampleBytes = Math.max(this.sampleBytes, end);
    this.reserve(this.pictureAt + end + 4 * SLACK);
    this.written = Math.max(this.written, this.pictureAt + end + 4 * SLACK);
    return new Uint8Array(
      this.exports.memory.buffer,
      this.pictureAt + offset,
      bytes,
    );
  }

  /** The planes the sample lay in are zero again. */
  endSample(): void {
    new Uint8Array(
      this.exports.memory.buffer,
      this.pictureAt,
      Math.min(this.sampleBytes, 3 * this.planeBytes()),
    ).fill(0);
    this.sampleBytes = 0;
  }

  /** How many of the first `n` sample values (big-endian float32) have each top 16 bits of sort key. */
  keyCounts(n: number): Uint32Array {
    this.checkSample(n);
    const counts = this.current().keyCounts;
    counts.fill(0);
    this.exports.keys(this.pictureAt, n, this.keysAt);
    return counts;
  }

  /**
   * The same counts as running totals: entry b is how many of the values
   * have a key's top 16 bits at or below b (so no loop over 65,536 bins runs
   * in JavaScript, interpreted in a process's first frame).
   */
  keyTotals(n: number): Uint32Array {
    this.keyCounts(n);
    this.exports.cumulate(this.keysAt, KEY_BINS);
    return this.current().keyCounts;
  }

  /**
   * The same values whose top 16 key bits are `bins[s]` (at most LOW_SLOTS,
   * distinct), counted by their next 8 bits: slot s from index 256 s.
   */
  lowCounts(n: number, bins: readonly number[]): Uint32Array {
    this.checkSample(n);
    if (bins.length > LOW_SLOTS || new Set(bins).size !== bins.length) {
      throw new RangeError(
        `at most ${LOW_SLOTS} distinct key bins; got ${bins.join(", ")}`,
      );
    }
    const counts = this.current().lowCounts;
    counts.fill(0);
    const [b0 = -1, b1 = -1, b2 = -1, b3 = -1] = bins;
    this.exports.lows(this.pictureAt, n, b0, b1, b2, b3, this.lowsAt);
    return counts;
  }

  /**
   * The `n` pixels kept aside while sorting (values; frame columns; frame
   * rows from the top, as `rows` indexes them), copied in over the input
   * area past the paint area once the frame is read, with the frame rows'
   * map to picture rows; their finite values are split at `lowTo` into the
   * low window and the high window (see `select`).
   */
  keep(
    values: Float32Array,
    xs: Int32Array,
    fs: Int32Array,
    n: number,
    rows: RowMap,
    lowTo: number,
  ): KeptSplit {
    const at = this.keptLayout(n, rows.frameHeight);
    this.reserve(at.end);
    this.written = Math.max(this.written, at.end);
    const { buffer } = this.exports.memory;
    new Float32Array(buffer, at.values, n).set(values.subarray(0, n));
    new Int32Array(buffer, at.xs, n).set(xs.subarray(0, n));
    new Int32Array(buffer, at.fs, n).set(fs.subarray(0, n));
    this.writeMap(at.rowMap, rows, rows.frameHeight, 0);
    const lows = this.exports.partition(at.values, n, lowTo, at.windows);
    const nonFinite = this.exports.nonFinite();
    const split: KeptSplit = {
      lows,
      highs: n - nonFinite - lows,
      nonFinite,
      nans: this.exports.nans(),
    };
    this.split = { ...split, n, frameRows: rows.frameHeight };
    return split;
  }

  /**
   * The k-th smallest value of a window of the kept pixels (from 0); the
   * window is reordered so that none after position k is smaller.
   */
  select(window: "low" | "high", k: number): number {
    const { at, length } = this.window(window);
    if (!(Number.isInteger(k) && k >= 0 && k < length)) {
      throw new RangeError(`rank ${k} is outside a window of ${length}`);
    }
    return this.exports.select(at, length, k);
  }

  /** The least value after position k of a window (after `select` of k, the (k + 1)-th smallest); Infinity if none. */
  minimumAfter(window: "low" | "high", k: number): number {
    const { at, length } = this.window(window);
    const from = Math.min(length, Math.max(0, k + 1));
    return this.exports.minimum(at + 4 * from, length - from);
  }

  /**
   * Each kept pixel's shade, (v − low) × scale within 0 to 1, added to the
   * picture's whites where it falls, by area; a NaN's weight goes to the
   * paint area's `blank` (see float-kernel.wat); and each picture row's
   * weight, the frame rows' shares of it, into the paint area's `down`.
   * Needs `keep` and `paintArea`.
   */
  spread(low: number, scale: number): void {
    const { split, painted } = this;
    if (split === undefined || painted === undefined) {
      throw new Error("spread needs keep and paintArea first");
    }
    if (split.nans > 0 && !painted.withBlank) {
      throw new Error("NaN pixels were kept: paintArea(true) first");
    }
    const at = this.keptLayout(split.n, split.frameRows);
    this.exports.spread(
      at.values,
      at.xs,
      at.fs,
      split.n,
      at.rowMap,
      this.mapAt,
      this.pictureAt + 2 * this.planeBytes(),
      painted.withBlank ? this.paintLayout().blank : 0,
      this.columns,
      low,
      scale,
    );
    this.exports.weighRows(at.rowMap, split.frameRows, this.paintLayout().down);
  }

  private window(window: "low" | "high"): { at: number; length: number } {
    const { split } = this;
    if (split === undefined) {
      throw new Error("no pixels are kept: keep first");
    }
    const { windows } = this.keptLayout(split.n, split.frameRows);
    return window === "low"
      ? { at: windows, length: split.lows }
      : { at: windows + 4 * (split.n - split.highs), length: split.highs };
  }

  /** Past the paint area: the kept values, columns, rows, their windows, then the row map. */
  private keptLayout(
    n: number,
    frameRows: number,
  ): {
    values: number;
    xs: number;
    fs: number;
    windows: number;
    rowMap: number;
    end: number;
  } {
    const values = align16(
      this.paintLayout().out + this.columns * this.pictureRows,
    );
    const xs = values + 4 * n;
    const fs = xs + 4 * n;
    const windows = fs + 4 * n;
    const rowMap = align16(windows + 4 * n);
    return {
      values,
      xs,
      fs,
      windows,
      rowMap,
      end: rowMap + MAP_BYTES * frameRows,
    };
  }

  /** The paint area, zeroed but for `out`; `blank` only when asked for. */
  paintArea(withBlank: boolean): PaintArea {
    const { columns: m, pictureRows: rows } = this;
    const size = m * rows;
    const bytes = 8 * (rows + m) + 8 * size + size;
    this.reserve(this.inputAt + bytes);
    this.written = Math.max(this.written, this.inputAt + bytes);
    const { buffer } = this.exports.memory;
    const at = this.paintLayout();
    const area: PaintArea = {
      down: new Float64Array(buffer, at.down, rows).fill(0),
      across: new Float64Array(buffer, at.across, m).fill(0),
      blank: withBlank
        ? new Float64Array(buffer, at.blank, size).fill(0)
        : undefined,
      out: new Uint8Array(buffer, at.out, size),
    };
    this.painted = { withBlank };
    return area;
  }

  /** Grey levels into the paint area's `out` (see float-kernel.wat): shade = scale (sum + count shift) + white. */
  paint(scale: number, shift: number): void {
    if (this.painted === undefined) {
      throw new Error("paint needs paintArea first");
    }
    const at = this.paintLayout();
    const plane = this.planeBytes();
    this.exports.paint(
      this.pictureAt,
      this.pictureAt + plane,
      this.pictureAt + 2 * plane,
      this.painted.withBlank ? at.blank : 0,
      at.down,
      at.across,
      this.columns,
      this.pictureRows,
      scale,
      shift,
      at.out,
    );
    this.painted = undefined;
  }

  private paintLayout(): {
    down: number;
    across: number;
    blank: number;
    out: number;
  } {
    const down = this.inputAt;
    const across = down + 8 * this.pictureRows;
    const blank = across + 8 * this.columns;
    return {
      down,
      across,
      blank,
      out: blank + 8 * this.columns * this.pictureRows,
    };
  }

  /** White and black pixels sorted since `prepare`. */
  tallies(): Tallies {
    return {
      whites: this.exports.whiteTally(),
      blacks: this.exports.blackTally(),
    };
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

  /** Their values, in the same order. */
  keptValues(): Float32Array {
    return this.current().keptValues;
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
      this.pictureAt + 4 * this.columns * t,
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
    return 4 * this.columns * this.pictureRows;
  }

  private checkSample(n: number): void {
    if (!(n >= 0 && 4 * n <= this.sampleBytes)) {
      throw new RangeError(`${n} values are more than the sample holds`);
    }
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
        keptValues: new Float32Array(
          buffer,
          this.keptAt + 4 * (this.width + SLACK),
          this.width + SLACK,
        ),
        picture: {
          sums: new Float32Array(buffer, this.pictureAt, size),
          counts: new Float32Array(buffer, this.pictureAt + plane, size),
          whites: new Float32Array(buffer, this.pictureAt + 2 * plane, size),
        },
        keyCounts: new Uint32Array(buffer, this.keysAt, KEY_BINS),
        lowCounts: new Uint32Array(buffer, this.lowsAt, LOW_SLOTS * LOW_BINS),
      };
    }
    return this.views;
  }
}

function align16(n: number): number {
  return Math.ceil(n / 16) * 16;
}
