/**
 * A large float32 frame drawn from one read of its pixels.
 *
 * The general path (render.ts) reads such a frame twice: once to find the
 * clip's percentiles, once to draw with them. Here a sample of the rows
 * (every SAMPLE_STEP-th) brackets each percentile in a narrow window of
 * values, and the one read sorts every pixel by where it falls:
 * - below the low window: it will be black whatever the exact low value is,
 *   so it adds nothing;
 * - between the windows: its shade is (v − low) / (high − low), linear in v,
 *   so the sum of v and the count per picture pixel are enough;
 * - above the high window: white, so a count;
 * - inside a window, or NaN or infinite: kept aside with its position (a
 *   fraction of a percent of the pixels).
 * The exact percentiles are then the ranks among the kept pixels, and those
 * pixels are drawn one by one. The picture is the one the general path draws
 * (up to rounding of the sums).
 *
 * The per-pixel work is WebAssembly (float-kernel.wat): rows are read as
 * stored into its memory, and it swaps, compares and sums four pixels at a
 * time, tallies the rare black and white ones itself, and lists the pixels to
 * keep aside for this module. The sample is counted there too, by the top 24
 * bits of each value's sort key: a window's edges are the edges of the key
 * bins its ranks fall in, float32 values the kernel compares with exactly.
 * Nothing here is sized by the frame but the sample's rows, so a process's
 * first preview touches little fresh memory (each new page is a fault).
 *
 * When the guess fails (a percentile outside its window, too many pixels in
 * the windows, windows that meet), or this machine's WebAssembly has no SIMD,
 * the result is undefined and the caller takes the general path: never a
 * wrong picture, only a slower one.
 */
import type { FitsPixelReader, ImageLayout } from "../fits/pixels.js";
import {
  type FloatKernel,
  floatKernel,
  KernelMemoryError,
  TooManyKeptError,
  type Windows,
} from "./float-kernel.js";
import {
  lerp,
  NON_FINITE_BELOW,
  NON_FINITE_FROM,
  valueOfKey,
  wanted,
} from "./percentile.js";
import {
  type Box,
  type ColumnRange,
  cutColumns,
  RowMap,
  spans,
} from "./raster.js";

/** Below this many pixels the general path is as quick. */
const MIN_PIXELS = 1 << 20;
/** Every SAMPLE_STEP-th row is the sample (128 rows of a 4096-row frame). */
const SAMPLE_STEP = 32;
/** At most this share of the pixels may be kept aside. */
const MAX_KEPT_SHARE = 1 / 32;

export interface OnePassClip {
  low: number;
  high: number;
  /** Finite pixels. */
  count: number;
}

/** Whether a frame of this layout, drawn into `box`, is worth one pass. */
export function onePassFits(layout: ImageLayout, box: Box): boolean {
  return (
    layout.bitpix === -32 &&
    layout.bscale === 1 &&
    layout.bzero === 0 &&
    layout.width >= box.width &&
    layout.height >= box.height &&
    layout.width * layout.height >= MIN_PIXELS
  );
}

/**
 * Draws the first plane of `layout` into `box` of the canvas, clipped at the
 * [p, 100 − p] percentiles; undefined (and the canvas untouched) when the
 * general path must do it.
 */
export function drawInOnePass(
  reader: FitsPixelReader,
  layout: ImageLayout,
  box: Box,
  canvas: Uint8Array,
  canvasWidth: number,
  p: number,
): OnePassClip | undefined {
  if (!onePassFits(layout, box)) {
    return undefined;
  }
  const kernel = floatKernel();
  if (kernel === undefined) {
    return undefined;
  }
  let bands: Bands;
  try {
    const columns = new PictureColumns(layout, box, kernel);
    const windows = guessWindows(reader, layout, p, kernel);
    if (windows === undefined) {
      return undefined;
    }
    bands = new Bands(layout.height, box, windows, kernel, columns);
    reader.readStoredRows(
      layout,
      { plane: 0 },
      (bytes) => kernel.input(bytes),
      (row, rows) => {
        bands.add(row, rows);
      },
    );
  } catch (error) {
    if (
      error instanceof TooManyKeptError ||
      error instanceof KernelMemoryError
    ) {
      return undefined;
    }
    throw error;
  }
  return bands.finish(p, canvas, canvasWidth);
}

/**
 * Windows around the percentiles from a sample of rows, wide enough for its
 * sampling error many times over. The sample is read as stored into the
 * kernel's memory and counted there by sort key (top 16 bits, then the next 8
 * of the bins the edges' ranks fall in); each edge is the far side of its
 * key bin, so a window only ever widens by the counting's coarseness.
 */
function guessWindows(
  reader: FitsPixelReader,
  layout: ImageLayout,
  p: number,
  kernel: FloatKernel,
): Windows | undefined {
  const { width, height } = layout;
  const rows = Math.ceil(height / SAMPLE_STEP);
  for (let k = 0; k < rows; k++) {
    reader.readStoredRows(
      layout,
      { plane: 0, section: { x: 0, y: k * SAMPLE_STEP, width, height: 1 } },
      (bytes) => kernel.sample(bytes, 4 * width * k),
      () => undefined,
    );
  }
  const n = rows * width;
  const totals = kernel.keyTotals(n);
  const upTo = (bin: number): number =>
    bin < NON_FINITE_BELOW ? 0 : (totals[bin] as number);
  const nonFiniteBelow = upTo(NON_FINITE_BELOW - 1);
  const finite = upTo(NON_FINITE_FROM - 1) - nonFiniteBelow;
  if (finite < n / 2) {
    return undefined;
  }
  const q = p / 100;
  const spread = Math.max(0.05, 800 * Math.sqrt((q * (1 - q)) / finite));
  const position = (percentile: number) =>
    (Math.min(100, Math.max(0, percentile)) / 100) * (finite - 1);
  // A window's lower edge from the rank at or below, its upper from the rank at or above.
  const ranks = [
    Math.floor(position(p - spread)),
    Math.ceil(position(p + spread)),
    Math.floor(position(100 - p - spread)),
    Math.ceil(position(100 - p + spread)),
  ] as const;
  if (!(ranks[1] < ranks[2])) {
    return undefined;
  }
  // Each rank's bin: the first whose finite total passes it (a binary search).
  const bins = ranks.map((rank) => {
    let lo = NON_FINITE_BELOW;
    let hi = NON_FINITE_FROM - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (upTo(mid) - nonFiniteBelow > rank) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo;
  });
  const before = bins.map((bin) => upTo(bin - 1) - nonFiniteBelow);
  const slots = [...new Set(bins)];
  const lows = kernel.lowCounts(n, slots);
  kernel.endSample();
  const edge = (r: number, upper: boolean): number => {
    const bin = bins[r] as number;
    const base = 256 * slots.indexOf(bin);
    let remaining = (ranks[r] as number) - (before[r] as number);
    let low = 0;
    for (; low < 255; low++) {
      remaining -= lows[base + low] as number;
      if (remaining < 0) {
        break;
      }
    }
    return valueOfKey((((bin << 8) | low) * 256 + (upper ? 0xff : 0)) >>> 0);
  };
  const windows = {
    lowFrom: edge(0, false),
    lowTo: edge(1, true),
    highFrom: edge(2, false),
    highTo: edge(3, true),
  };
  return windows.lowTo < windows.highFrom ? windows : undefined;
}

/** A picture row being summed: the frame rows that fall on it, in one of the kernel's two areas. */
interface Band {
  /** Picture row (from the top of the box); -1 when the slot is free. */
  t: number;
  slot: 0 | 1;
  /** Frame rows summed, by their weight on this picture row. */
  rows: number;
}

/** How frame columns fall on the picture's columns; made, the kernel's memory is laid out for them. */
class PictureColumns {
  readonly frameWidth: number;
  readonly range: ColumnRange;
  /** Which picture columns each frame column falls on, by how much. */
  readonly map: RowMap;

  constructor(layout: ImageLayout, box: Box, kernel: FloatKernel) {
    const frameWidth = layout.width;
    this.frameWidth = frameWidth;
    this.range = cutColumns(
      spans(frameWidth, box.width),
      box.width,
      0,
      frameWidth,
    );
    this.map = new RowMap(frameWidth, box.width);
    kernel.prepare(
      frameWidth,
      this.range.spans,
      this.map,
      box.width,
      box.height,
      Math.ceil(frameWidth * layout.height * MAX_KEPT_SHARE),
    );
  }
}

/** Per picture pixel: the between-window sum (less `centre`) and count, and the white count; area-weighted. */
class Bands {
  private readonly frameWidth: number;
  private readonly frameHeight: number;
  private readonly box: Box;
  private readonly w: Windows;
  /** Subtracted from every summed value, so the sums stay small beside the clip range. */
  private readonly centre: number;
  private readonly rows: RowMap;
  private readonly range: ColumnRange;
  private readonly kernel: FloatKernel;
  /** Which picture columns each frame column falls on, by how much. */
  private readonly columns: RowMap;
  /**
   * At most two picture rows are open at once: a frame row straddling two
   * picture rows adds to both, by weight. Frame rows come bottom up, so
   * picture rows close from the bottom of the picture up.
   */
  private readonly bands: [Band, Band];

  /** `columns` laid the kernel out for this frame and box. */
  constructor(
    frameHeight: number,
    box: Box,
    w: Windows,
    kernel: FloatKernel,
    columns: PictureColumns,
  ) {
    const { frameWidth } = columns;
    this.frameWidth = frameWidth;
    this.frameHeight = frameHeight;
    this.box = box;
    this.w = w;
    this.centre = (w.lowTo + w.highFrom) / 2;
    this.rows = new RowMap(frameHeight, box.height);
    this.range = columns.range;
    this.kernel = kernel;
    this.columns = columns.map;
    this.bands = [
      { t: -1, slot: 0, rows: 0 },
      { t: -1, slot: 1, rows: 0 },
    ];
  }

  /** Frame rows [y, y + rows), as stored, from the start of the kernel's input. */
  add(y: number, rows: number): void {
    const { w, kernel, frameWidth } = this;
    const { rowStart, ys } = this.rows;
    for (let k = 0; k < rows; k++) {
      const f = this.rows.flip(y + k);
      const first = rowStart[f] as number;
      const stop = rowStart[f + 1] as number;
      // Entries ascend by picture row: the last is the lowest in the picture.
      this.closeBelow(ys.target[stop - 1] as number);
      const rowAt = 4 * frameWidth * k;
      for (let a = first; a < stop; a++) {
        const band = this.open(ys.target[a] as number);
        const weight = ys.weight[a] as number;
        band.rows += weight;
        // A straddling row lists the same pixels twice: keep them once.
        kernel.sort(rowAt, w, this.centre, weight, band.slot, f, a === first);
      }
    }
  }

  /** The open band of picture row t, opened if need be. */
  private open(t: number): Band {
    // Indexed, not destructured: no iterator per frame row while V8 still interprets this.
    const a = this.bands[0];
    const b = this.bands[1];
    if (a.t === t) {
      return a;
    }
    if (b.t === t) {
      return b;
    }
    const free = a.t < 0 ? a : b;
    if (free.t >= 0) {
      throw new Error(`picture rows ${a.t} and ${b.t} are both still open`);
    }
    free.t = t;
    return free;
  }

  /** Closes the bands of picture rows below t (greater t): no frame row still to come falls on them. */
  private closeBelow(t: number): void {
    for (let k = 0; k < 2; k++) {
      const band = this.bands[k] as Band;
      if (band.t > t) {
        this.close(band);
      }
    }
  }

  /** The band's per-column totals into its picture row, and the band emptied. */
  private close(band: Band): void {
    this.kernel.close(band.slot, band.t, band.rows);
    band.t = -1;
    band.rows = 0;
  }

  /** The exact clip from the kept pixels' ranks, then the picture; undefined when a percentile fell outside its window. */
  finish(
    p: number,
    canvas: Uint8Array,
    canvasWidth: number,
  ): OnePassClip | undefined {
    this.closeBelow(-1);
    const { kernel } = this;
    const split = kernel.keep(this.rows, this.w.lowTo);
    const { whites, blacks } = kernel.tallies();
    const below = Math.round(blacks);
    const above = Math.round(whites);
    const count = this.frameWidth * this.frameHeight - split.nonFinite;
    const between = count - below - split.lows - split.highs - above;
    const low = valueOfRank(kernel, "low", split.lows, below, p, count);
    const high = valueOfRank(
      kernel,
      "high",
      split.highs,
      count - above - split.highs,
      100 - p,
      count,
    );
    if (
      between < 0 ||
      low === undefined ||
      high === undefined ||
      !(high > low)
    ) {
      return undefined;
    }
    this.paint(low, high, split.nans > 0, canvas, canvasWidth);
    return { low, high, count };
  }

  private paint(
    low: number,
    high: number,
    blanks: boolean,
    canvas: Uint8Array,
    canvasWidth: number,
  ): void {
    const { box, kernel } = this;
    const { across, out } = kernel.paintArea(blanks);
    const scale = 1 / (high - low);
    // Kept pixels add their shade where they fall (into the whites, now
    // the shade-1 sum), NaN takes its weight away; and `down` is filled.
    kernel.spread(low, scale);
    across.set(this.range.covered);
    // Pixels of no weight keep what the canvas holds.
    for (let y = 0; y < box.height; y++) {
      const from = (box.y + y) * canvasWidth + box.x;
      out.set(canvas.subarray(from, from + box.width), y * box.width);
    }
    kernel.paint(scale, this.centre - low);
    for (let y = 0; y < box.height; y++) {
      canvas.set(
        out.subarray(y * box.width, (y + 1) * box.width),
        (box.y + y) * canvasWidth + box.x,
      );
    }
  }
}

/**
 * Percentile p of `count` values, from a window of `length` of them in the
 * kernel (reordered there) whose lowest has rank `before`; undefined if it
 * is not inside.
 */
function valueOfRank(
  kernel: FloatKernel,
  window: "low" | "high",
  length: number,
  before: number,
  p: number,
  count: number,
): number | undefined {
  const at = wanted(p, count);
  if (at.below < before || at.above >= before + length) {
    return undefined;
  }
  const k = at.below - before;
  const below = kernel.select(window, k);
  const above = at.above > at.below ? kernel.minimumAfter(window, k) : below;
  return lerp(below, above, at.fraction);
}
