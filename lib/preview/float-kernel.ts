/**
 * The WebAssembly loop of one-pass drawing (float-kernel.wat): big-endian
 * float32 rows read straight into its memory, four pixels compared and summed
 * at a time, with no byte swap beforehand and no JavaScript per pixel.
 *
 * One instance per thread, reused from frame to frame. Its memory holds, for
 * rows of `width` pixels: two areas of what a picture row gathers (two
 * because a frame row may straddle two picture rows), the picture columns'
 * spans, the frame columns' map to picture columns, the sample's key counts
 * (uint32), the picture's per-pixel sums, counts and whites (float32), the
 * pixels kept aside (columns, values, rows: the sort lists them there, so
 * none is copied), then the input rows, over which the finishing work lies
 * once the frame is read.
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
    keptSpan: number,
    f: number,
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

/** More pixels fell inside the windows than the kernel keeps room for (the guess was poor: the general path draws the frame). */
export class TooManyKeptError extends Error {
  constructor(limit: number) {
    super(`more than ${limit} pixels fell inside the percentile windows`);
  }
}

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

/** The pixels kept aside so far, in the order listed. */
export interface KeptPixels {
  xs: Int32Array;
  values: Float32Array;
  /** Frame rows from the top. */
  fs: Int32Array;
}

interface Views {
  kept: KeptPixels;
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
  private spansAt = 0;
  private mapAt = 0;
  private pictureAt = 0;
  private keysAt = 0;
  private lowsAt = 0;
  private storeAt = 0;
  /** Room for this many kept pixels (the limit, and a row's worth). */
  private storeRoom = 0;
  private keptLimit = 0;
  private keptCount = 0;
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
   * each frame column falling on picture columns by `map`), keeping at
   * most `keptLimit` pixels aside; everything summed starts at zero.
   */
  prepare(
    width: number,
    spans: Spans,
    map: RowMap,
    columns: number,
    rows: number,
    keptLimit: number,
  ): void {
    this.width = width;
    this.columns = columns;
    this.pictureRows = rows;
    this.spansAt = align16(2 * this.areaBytes());
    this.mapAt = this.spansAt + SPAN_BYTES * columns;
    this.pictureAt = align16(
      this.mapAt +
        MAP_BYTES * (width + SLACK) +
        4 * (KEY_BINS + LOW_SLOTS * LOW_BINS),
    );
    this.keysAt = this.pictureAt - 4 * (KEY_BINS + LOW_SLOTS * LOW_BINS);
    this.lowsAt = this.keysAt + 4 * KEY_BINS;
    this.storeAt = align16(this.pictureAt + 3 * this.planeBytes());
    this.keptLimit = keptLimit;
    this.storeRoom = keptLimit + width + SLACK;
    this.keptCount = 0;
    this.inputAt = align16(this.storeAt + 12 * this.storeRoom);
    this.inputBytes = 0;
    this.sampleBytes = 0;
    this.split = undefined;
    this.exports.resetTallies();
    this.reserve(this.inputAt);
    const { buffer } = this.exports.memory;
    // Memory never written is zero already (a first frame's 5 MB of planes
    // would otherwise be touched twice); the kept pixels' store is written
    // before it is read.
    new Uint8Array(buffer, 0, Math.min(this.written, this.storeAt)).fill(0);
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
   * Once the frame is read: the frame rows' map to picture rows (`rows`,
   * indexed from the top, as `sort`'s f) laid out over the input area, and
   * the kept pixels' finite values split at `lowTo` into the low window and
   * the high window (see `select`).
   */
  keep(rows: RowMap, lowTo: number): KeptSplit {
    const n = this.keptCount;
    this.split = {
      lows: 0,
      highs: 0,
      nonFinite: 0,
      nans: 0,
      n,
      frameRows: rows.frameHeight,
    };
    const at = this.paintLayout();
    this.reserve(at.blank);
    this.written = Math.max(this.written, at.blank);
    this.writeMap(at.rowMap, rows, rows.frameHeight, 0);
    const values = this.storeAt + 4 * this.storeRoom;
    const lows = this.exports.partition(values, n, lowTo, at.windows);
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
    const at = this.paintLayout();
    const span = 4 * this.storeRoom;
    this.exports.spread(
      this.storeAt + span,
      this.storeAt,
      this.storeAt + 2 * span,
      split.n,
      at.rowMap,
      this.mapAt,
      this.pictureAt + 2 * this.planeBytes(),
      painted.withBlank ? at.blank : 0,
      this.columns,
      low,
      scale,
    );
    this.exports.weighRows(at.rowMap, split.frameRows, at.down);
  }

  private window(window: "low" | "high"): { at: number; length: number } {
    const { split } = this;
    if (split === undefined) {
      throw new Error("no pixels are kept: keep first");
    }
    const { windows } = this.paintLayout();
    return window === "low"
      ? { at: windows, length: split.lows }
      : { at: windows + 4 * (split.n - split.highs), length: split.highs };
  }

  /** The paint area, zeroed but for `out`; `blank` only when asked for. */
  paintArea(withBlank: boolean): PaintArea {
    const { columns: m, pictureRows: rows } = this;
    const size = m * rows;
    const at = this.paintLayout();
    this.reserve(at.end);
    this.written = Math.max(this.written, at.end);
    const { buffer } = this.exports.memory;
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

  /**
   * Over the input area, once the frame is read: the rows' and columns'
   * weights, the grey levels, the kept pixels' windows and the frame rows'
   * map (the input's pages, already touched, hold them all for a frame of
   * a megabyte's rows or more), then `blank`, touched only for NaN.
   */
  private paintLayout(): {
    down: number;
    across: number;
    out: number;
    windows: number;
    rowMap: number;
    blank: number;
    end: number;
  } {
    const size = this.columns * this.pictureRows;
    const down = this.inputAt;
    const across = down + 8 * this.pictureRows;
    const out = across + 8 * this.columns;
    const windows = align16(out + size);
    const rowMap = align16(windows + 4 * (this.split?.n ?? 0));
    const blank = align16(rowMap + MAP_BYTES * (this.split?.frameRows ?? 0));
    return { down, across, out, windows, rowMap, blank, end: blank + 8 * size };
  }

  /** White and black pixels sorted since `prepare`. */
  tallies(): Tallies {
    return {
      whites: this.exports.whiteTally(),
      blacks: this.exports.blackTally(),
    };
  }

  /**
   * Sorts the pixels of the row at input byte `rowAt`, frame row f from the
   * top, by the windows (see float-kernel.wat), adding to area `slot` with
   * `weight`; the number of its pixels listed to keep aside, after those
   * kept so far (see `kept`). They stay kept only if `keep` (a row that
   * straddles two picture rows is sorted twice and kept once).
   */
  sort(
    rowAt: number,
    windows: Windows,
    centre: number,
    weight: number,
    slot: 0 | 1,
    f: number,
    keep: boolean,
  ): number {
    if (rowAt < 0 || rowAt + 4 * this.width > this.inputBytes) {
      throw new RangeError(`row at byte ${rowAt} is outside the input`);
    }
    // Room for a whole row listed, kept or not.
    if (this.keptCount + this.width > this.storeRoom) {
      throw new TooManyKeptError(this.keptLimit);
    }
    const listed = this.exports.sort(
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
      this.storeAt + 4 * this.keptCount,
      4 * this.storeRoom,
      f,
    );
    if (keep) {
      this.keptCount += listed;
    }
    return listed;
  }

  /** The pixels kept aside since `prepare`, and those the last `sort` listed without keeping (`extra` of them). */
  kept(extra = 0): KeptPixels {
    const { xs, values, fs } = this.current().kept;
    const n = Math.min(this.storeRoom, this.keptCount + extra);
    return {
      xs: xs.subarray(0, n),
      values: values.subarray(0, n),
      fs: fs.subarray(0, n),
    };
  }

  /** Kept pixels of the caller's own, added as if sorting had listed them (tests, and pixels found another way). */
  addKept(pixels: KeptPixels): void {
    const n = pixels.values.length;
    if (pixels.xs.length !== n || pixels.fs.length !== n) {
      throw new RangeError(
        "kept pixels need as many columns and rows as values",
      );
    }
    if (this.keptCount + n > this.storeRoom) {
      throw new TooManyKeptError(this.keptLimit);
    }
    const { kept } = this.current();
    kept.xs.set(pixels.xs, this.keptCount);
    kept.values.set(pixels.values, this.keptCount);
    kept.fs.set(pixels.fs, this.keptCount);
    this.keptCount += n;
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
        kept: {
          xs: new Int32Array(buffer, this.storeAt, this.storeRoom),
          values: new Float32Array(
            buffer,
            this.storeAt + 4 * this.storeRoom,
            this.storeRoom,
          ),
          fs: new Int32Array(
            buffer,
            this.storeAt + 8 * this.storeRoom,
            this.storeRoom,
          ),
        },
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
