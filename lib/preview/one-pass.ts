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
 * keep aside for this module.
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
  type Windows,
} from "./float-kernel.js";
import { lerp, percentiles, wanted } from "./percentile.js";
import {
  type Box,
  type ColumnRange,
  cutColumns,
  RowMap,
  spans,
} from "./raster.js";

/** Below this many pixels the general path is as quick. */
const MIN_PIXELS = 1 << 20;
const SAMPLE_STEP = 16;
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
  const windows = guessWindows(reader, layout, p);
  if (windows === undefined) {
    return undefined;
  }
  let bands: Bands;
  try {
    bands = new Bands(layout.width, layout.height, box, windows, kernel);
    reader.readStoredRows(
      layout,
      { plane: 0 },
      (bytes) => kernel.input(bytes),
      (row, rows) => {
        bands.add(row, rows);
      },
    );
  } catch (error) {
    if (error instanceof TooManyKept || error instanceof KernelMemoryError) {
      return undefined;
    }
    throw error;
  }
  return bands.finish(p, canvas, canvasWidth);
}

/** Windows around the percentiles from a sample of rows, wide enough for its sampling error many times over. */
function guessWindows(
  reader: FitsPixelReader,
  layout: ImageLayout,
  p: number,
): Windows | undefined {
  const { width, height } = layout;
  const rows = Math.ceil(height / SAMPLE_STEP);
  const sample = new Float32Array(rows * width);
  for (let k = 0; k < rows; k++) {
    reader.readFloatRows(
      layout,
      { plane: 0, section: { x: 0, y: k * SAMPLE_STEP, width, height: 1 } },
      (values, start) => {
        sample.set(values.subarray(start, start + width), k * width);
      },
    );
  }
  const q = p / 100;
  const spread = Math.max(0.05, 800 * Math.sqrt((q * (1 - q)) / sample.length));
  const { count, values } = percentiles(sample, [
    Math.max(0, p - spread),
    p + spread,
    100 - p - spread,
    Math.min(100, 100 - p + spread),
  ]);
  const [lowFrom, lowTo, highFrom, highTo] = values as [
    number,
    number,
    number,
    number,
  ];
  if (count < sample.length / 2 || !(lowTo < highFrom)) {
    return undefined;
  }
  // Widened to float32 values, which the kernel compares with exactly.
  return {
    lowFrom: float32AtMost(lowFrom),
    lowTo: -float32AtMost(-lowTo),
    highFrom: float32AtMost(highFrom),
    highTo: -float32AtMost(-highTo),
  };
}

const one = new Float32Array(1);
const oneBits = new Int32Array(one.buffer);

/** The greatest float32 value at most x (finite x). */
function float32AtMost(x: number): number {
  const f = Math.fround(x);
  if (f <= x) {
    return f;
  }
  if (f === 0) {
    return -1.401298464324817e-45;
  }
  one[0] = f;
  oneBits[0] = (oneBits[0] as number) + (f > 0 ? -1 : 1);
  return one[0] as number;
}

class TooManyKept extends Error {}

/** Pixels kept aside: value and frame position, in arrays that grow up to `limit`. */
class Kept {
  n = 0;
  values = new Float32Array(1 << 14);
  xs = new Int32Array(1 << 14);
  ys = new Int32Array(1 << 14);
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  add(value: number, x: number, y: number): void {
    const n = this.n;
    if (n === this.values.length) {
      this.grow();
    }
    this.values[n] = value;
    this.xs[n] = x;
    this.ys[n] = y;
    this.n = n + 1;
  }

  private grow(): void {
    const size = this.values.length * 2;
    if (size > this.limit) {
      throw new TooManyKept();
    }
    const values = new Float32Array(size);
    const xs = new Int32Array(size);
    const ys = new Int32Array(size);
    values.set(this.values);
    xs.set(this.xs);
    ys.set(this.ys);
    this.values = values;
    this.xs = xs;
    this.ys = ys;
  }
}

/** A picture row being summed: the frame rows that fall on it, in one of the kernel's two areas. */
interface Band {
  /** Picture row (from the top of the box); -1 when the slot is free. */
  t: number;
  slot: 0 | 1;
  /** Frame rows summed, by their weight on this picture row. */
  rows: number;
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
  private readonly kept: Kept;

  constructor(
    frameWidth: number,
    frameHeight: number,
    box: Box,
    w: Windows,
    kernel: FloatKernel,
  ) {
    this.frameWidth = frameWidth;
    this.frameHeight = frameHeight;
    this.box = box;
    this.w = w;
    this.centre = (w.lowTo + w.highFrom) / 2;
    this.rows = new RowMap(frameHeight, box.height);
    this.range = cutColumns(
      spans(frameWidth, box.width),
      box.width,
      0,
      frameWidth,
    );
    this.kernel = kernel;
    this.columns = new RowMap(frameWidth, box.width);
    kernel.prepare(
      frameWidth,
      this.range.spans,
      this.columns,
      box.width,
      box.height,
    );
    this.bands = [
      { t: -1, slot: 0, rows: 0 },
      { t: -1, slot: 1, rows: 0 },
    ];
    this.kept = new Kept(Math.ceil(frameWidth * frameHeight * MAX_KEPT_SHARE));
  }

  /** Frame rows [y, y + rows), as stored, from the start of the kernel's input. */
  add(y: number, rows: number): void {
    const { w, kernel, frameWidth, kept } = this;
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
        const listed = kernel.sort(rowAt, w, this.centre, weight, band.slot);
        // A straddling row lists the same columns twice: keep them once.
        if (a === first && listed > 0) {
          const columns = kernel.kept();
          for (let e = 0; e < listed; e++) {
            const x = columns[e] as number;
            if (x >= frameWidth) {
              break;
            }
            kept.add(kernel.value(rowAt, x), x, y + k);
          }
        }
      }
    }
  }

  /** The open band of picture row t, opened if need be. */
  private open(t: number): Band {
    const [a, b] = this.bands;
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
    for (const band of this.bands) {
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
    const { kept, w } = this;
    const lowWindow: number[] = [];
    const highWindow: number[] = [];
    let nonFinite = 0;
    for (let k = 0; k < kept.n; k++) {
      const v = kept.values[k] as number;
      if (!Number.isFinite(v)) {
        nonFinite++;
      } else if (v <= w.lowTo) {
        lowWindow.push(v);
      } else {
        highWindow.push(v);
      }
    }
    const { counts, whites } = this.kernel.picture();
    const between = Math.round(total(counts));
    const above = Math.round(total(whites));
    const count = this.frameWidth * this.frameHeight - nonFinite;
    const below =
      count - lowWindow.length - between - highWindow.length - above;
    const low = valueOfRank(lowWindow, below, p, count);
    const high = valueOfRank(
      highWindow,
      below + lowWindow.length + between,
      100 - p,
      count,
    );
    if (below < 0 || low === undefined || high === undefined || !(high > low)) {
      return undefined;
    }
    this.paint(low, high, canvas, canvasWidth);
    return { low, high, count };
  }

  private paint(
    low: number,
    high: number,
    canvas: Uint8Array,
    canvasWidth: number,
  ): void {
    const { box, kept } = this;
    const { sums: sum, counts: mid, whites: top } = this.kernel.picture();
    const scale = 1 / (high - low);
    const { columns } = this;
    const { rowStart, ys } = this.rows;
    let blank: Float64Array | undefined;
    // Kept pixels add their shade where they fall (into `top`, now the
    // shade-1 sum), NaN takes its weight away.
    for (let k = 0; k < kept.n; k++) {
      const v = kept.values[k] as number;
      const x = kept.xs[k] as number;
      const f = this.rows.flip(kept.ys[k] as number);
      const t = Math.min(1, Math.max(0, (v - low) * scale));
      for (
        let a = rowStart[f] as number;
        a < (rowStart[f + 1] as number);
        a++
      ) {
        const row = (ys.target[a] as number) * box.width;
        const wy = ys.weight[a] as number;
        for (
          let b = columns.rowStart[x] as number;
          b < (columns.rowStart[x + 1] as number);
          b++
        ) {
          const i = row + (columns.ys.target[b] as number);
          const share = wy * (columns.ys.weight[b] as number);
          if (v === v) {
            top[i] = (top[i] as number) + share * t;
          } else {
            blank ??= new Float64Array(sum.length);
            blank[i] = (blank[i] as number) + share;
          }
        }
      }
    }
    const down = new Float64Array(box.height);
    for (let a = 0; a < ys.target.length; a++) {
      const t = ys.target[a] as number;
      down[t] = (down[t] as number) + (ys.weight[a] as number);
    }
    const across = this.range.covered;
    const shift = this.centre - low;
    for (let y = 0; y < box.height; y++) {
      for (let x = 0; x < box.width; x++) {
        const i = y * box.width + x;
        const weight =
          (down[y] as number) * (across[x] as number) -
          (blank === undefined ? 0 : (blank[i] as number));
        if (weight > 1e-9) {
          const shades =
            scale * ((sum[i] as number) + (mid[i] as number) * shift) +
            (top[i] as number);
          canvas[(box.y + y) * canvasWidth + box.x + x] = Math.max(
            0,
            Math.min(255, Math.floor((shades / weight) * 256)),
          );
        }
      }
    }
  }
}

function total(values: Float64Array): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) {
    s += values[i] as number;
  }
  return s;
}

/** Percentile p of `count` values, from a window of them whose lowest has rank `before`; undefined if it is not inside. */
function valueOfRank(
  window: number[],
  before: number,
  p: number,
  count: number,
): number | undefined {
  const at = wanted(p, count);
  if (at.below < before || at.above >= before + window.length) {
    return undefined;
  }
  const sorted = Float64Array.from(window).sort();
  return lerp(
    sorted[at.below - before] as number,
    sorted[at.above - before] as number,
    at.fraction,
  );
}
