/**
 * From a frame of physical values to the 8-bit greyscale picture the
 * reference's matplotlib figure shows: the frame flipped vertically, clipped
 * to [low, high], scaled to fit the figure with its aspect kept (imshow's
 * default aspect "equal" on a full-figure axes), centred on white.
 *
 * Resampling is done on the clipped values before they become 8-bit, as
 * matplotlib resamples data before applying the colour map: an area average
 * when shrinking (anti-aliasing; matplotlib's filter differs in detail) and
 * nearest-neighbour when enlarging (small frames look blocky there too).
 */

import type { Codes } from "../fits/pixels.js";

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The largest box with the frame's aspect that fits in width × height, centred. */
export function fitBox(
  frameWidth: number,
  frameHeight: number,
  width: number,
  height: number,
): Box {
  const scale = Math.min(width / frameWidth, height / frameHeight);
  const w = clampSize(Math.round(frameWidth * scale), width);
  const h = clampSize(Math.round(frameHeight * scale), height);
  return {
    x: Math.floor((width - w) / 2),
    y: Math.floor((height - h) / 2),
    width: w,
    height: h,
  };
}

function clampSize(n: number, limit: number): number {
  return Math.min(limit, Math.max(1, n));
}

export interface Frame {
  width: number;
  height: number;
  /** Row-major, FITS row 1 (the bottom of the picture) first. */
  data: Float32Array;
}

/** A white 8-bit greyscale canvas (matplotlib's figure background). */
export function whiteCanvas(width: number, height: number): Uint8Array {
  return new Uint8Array(width * height).fill(255);
}

/**
 * Draws `frame` into `box` of a canvas `canvasWidth` wide: values clipped to
 * [low, high] map to 0..255 as matplotlib's grey colour map does (256 equal
 * steps); +Inf and -Inf clip to white and black as numpy.clip leaves them.
 * With low = high every finite pixel is black, as matplotlib's Normalize gives
 * for a constant frame. Where only NaN (BLANK) falls the canvas stays as it
 * was: the reference shows those pixels as white.
 */
export function drawFrame(
  canvas: Uint8Array,
  canvasWidth: number,
  box: Box,
  frame: Frame,
  low: number,
  high: number,
): void {
  const resampler = new Resampler(frame.width, frame.height, box);
  const scale = clipScale(low, high);
  resampler.addRows(
    0,
    frame.height,
    0,
    frame.width,
    frame.data,
    0,
    frame.width,
    low,
    scale,
    false,
  );
  resampler.paint(canvas, canvasWidth);
}

/** The factor that maps [low, high] onto [0, 1]; 0 when they are equal. */
export function clipScale(low: number, high: number): number {
  return high > low ? 1 / (high - low) : 0;
}

/** A value's place in [low, high] as a fraction from 0 to 1; NaN stays NaN. */
export function shade(value: number, low: number, scale: number): number {
  return Math.min(1, Math.max(0, (value - low) * scale));
}

/** Target columns [first, end) that a range of frame columns reaches, with the spans cut to the range. */
export interface ColumnRange {
  first: number;
  end: number;
  /** Per target column: how many frame pixels of the range it takes, partial ones in part. */
  covered: Float64Array;
  /** Indexed by target column, like Spans; -1 for a partial pixel outside the range. */
  spans: Spans;
}

/**
 * A frame drawn into a box without holding the frame: blocks of rows of it,
 * or of rectangles of it, arrive in any order and are area-averaged into
 * per-pixel sums (about 16 bytes per picture pixel), then painted. Each
 * frame row is summed picture column by picture column, then added to the
 * picture rows it reaches: shrinking, at most two; enlarging, each picture
 * row takes its nearest frame row, so one frame row can reach several.
 */
export class Resampler {
  readonly box: Box;
  private readonly rows: RowMap;
  private readonly xs: Spans;
  private readonly sum: Float64Array;
  private readonly weight: Float64Array;
  private readonly rowSum: Float64Array;
  private readonly rowWeight: Float64Array;
  /** Per picture row: frame-row weight gathered by addCoverage, zero between calls. */
  private readonly pending: Float64Array;
  private readonly ranges = new Map<string, ColumnRange>();

  constructor(frameWidth: number, frameHeight: number, box: Box) {
    this.box = box;
    this.rows = new RowMap(frameHeight, box.height);
    this.xs = spans(frameWidth, box.width);
    this.sum = new Float64Array(box.width * box.height);
    this.weight = new Float64Array(box.width * box.height);
    this.rowSum = new Float64Array(box.width);
    this.rowWeight = new Float64Array(box.width);
    this.pending = new Float64Array(box.height);
  }

  /**
   * Frame rows y to y + rows − 1 (0 = the first FITS row), columns [x0, x1),
   * row r's values from `values[start + r × stride]`, each clipped to
   * [low, high] on the way. `finite` says there is no NaN or infinity among
   * them, so there is no test per pixel and every pixel's weight is its
   * coverage, added once for the block.
   */
  addRows(
    y: number,
    rows: number,
    x0: number,
    x1: number,
    values: Float32Array,
    start: number,
    stride: number,
    low: number,
    scale: number,
    finite: boolean,
  ): void {
    const range = this.columns(x0, x1);
    if (finite) {
      this.addCoverage(range, y, y + rows);
    }
    const { rowSum, rowWeight } = this;
    for (let r = 0; r < rows;) {
      const run = this.rows.sameRow(y + r, rows - r);
      floatRowSums(
        range,
        values,
        start + r * stride - x0,
        stride,
        run,
        low,
        scale,
        finite,
        rowSum,
        rowWeight,
      );
      this.spread(y + r, range.first, range.end, !finite);
      r += run;
    }
  }

  /**
   * Like addRows for BITPIX 8 and 16 codes (FitsPixelReader.readCodeRows):
   * `shades[code]` is the code's value already clipped and scaled to 0..1,
   * or NaN, so a pixel costs a table look-up; `finite` says no code in these
   * rows shades to NaN.
   */
  addCodeRows(
    y: number,
    rows: number,
    x0: number,
    x1: number,
    codes: Codes,
    start: number,
    stride: number,
    shades: Float64Array,
    finite: boolean,
  ): void {
    const range = this.columns(x0, x1);
    if (finite) {
      this.addCoverage(range, y, y + rows);
    }
    const { rowSum, rowWeight } = this;
    for (let r = 0; r < rows;) {
      const run = this.rows.sameRow(y + r, rows - r);
      codeRowSums(
        range,
        codes,
        start + r * stride - x0,
        stride,
        run,
        shades,
        finite,
        rowSum,
        rowWeight,
      );
      this.spread(y + r, range.first, range.end, !finite);
      r += run;
    }
  }

  /** A rectangle of the frame where every pixel has the shade `t` (NaN draws nothing). */
  addConstant(x0: number, x1: number, y0: number, y1: number, t: number): void {
    if (!(t === t) || x1 <= x0) {
      return;
    }
    const range = this.columns(x0, x1);
    const { first, end, covered } = range;
    for (let j = first; j < end; j++) {
      this.rowSum[j] = t * (covered[j] as number);
    }
    for (let y = y0; y < y1; y++) {
      this.spread(y, first, end, false);
    }
    this.addCoverage(range, y0, y1);
  }

  /** Writes the averaged shades into the box of the canvas; pixels nothing reached keep their colour. */
  paint(canvas: Uint8Array, canvasWidth: number): void {
    const { box, sum, weight } = this;
    for (let y = 0; y < box.height; y++) {
      for (let x = 0; x < box.width; x++) {
        const i = y * box.width + x;
        const total = weight[i] as number;
        if (total > 0) {
          const t = (sum[i] as number) / total;
          canvas[(box.y + y) * canvasWidth + box.x + x] = Math.min(
            255,
            Math.floor(t * 256),
          );
        }
      }
    }
  }

  /**
   * Adds rowSum (and rowWeight, unless the caller adds coverage instead) of
   * columns [first, end) into the picture rows that frame row y reaches.
   */
  private spread(
    y: number,
    first: number,
    end: number,
    weights: boolean,
  ): void {
    const { sum, weight, rowSum, rowWeight } = this;
    const { ys, rowStart } = this.rows;
    const width = this.box.width;
    const flipped = this.rows.flip(y);
    const stop = rowStart[flipped + 1] as number;
    for (let k = rowStart[flipped] as number; k < stop; k++) {
      const w = ys.weight[k] as number;
      const at = (ys.target[k] as number) * width;
      for (let d = first; d < end; d++) {
        sum[at + d] = (sum[at + d] as number) + w * (rowSum[d] as number);
      }
      if (weights) {
        for (let d = first; d < end; d++) {
          weight[at + d] =
            (weight[at + d] as number) + w * (rowWeight[d] as number);
        }
      }
    }
  }

  /** The weights of frame rows [y0, y1) over a column range, every pixel counting in full. */
  private addCoverage(range: ColumnRange, y0: number, y1: number): void {
    const { weight, pending } = this;
    const { rowStart, ys } = this.rows;
    const width = this.box.width;
    let lowest = this.box.height;
    let highest = -1;
    for (let y = y0; y < y1; y++) {
      const flipped = this.rows.flip(y);
      const stop = rowStart[flipped + 1] as number;
      for (let k = rowStart[flipped] as number; k < stop; k++) {
        const target = ys.target[k] as number;
        pending[target] =
          (pending[target] as number) + (ys.weight[k] as number);
        lowest = Math.min(lowest, target);
        highest = Math.max(highest, target);
      }
    }
    const { first, end, covered } = range;
    for (let target = lowest; target <= highest; target++) {
      const w = pending[target] as number;
      pending[target] = 0;
      const at = target * width;
      for (let j = first; j < end; j++) {
        weight[at + j] =
          (weight[at + j] as number) + w * (covered[j] as number);
      }
    }
  }

  /** The spans cut to frame columns [x0, x1), made once per range (a frame has a few). */
  private columns(x0: number, x1: number): ColumnRange {
    const key = `${x0}:${x1}`;
    let range = this.ranges.get(key);
    if (range === undefined) {
      range = cutColumns(this.xs, this.box.width, x0, x1);
      this.ranges.set(key, range);
    }
    return range;
  }
}

/**
 * Which frame rows reach which picture rows (`axisWeights` of the height),
 * indexed by frame row drawn from the top: the picture's top row is the last
 * FITS row.
 */
export class RowMap {
  readonly frameHeight: number;
  readonly ys: AxisWeights;
  /** Entries of `ys` for the frame row drawn f-th from the top: [rowStart[f], rowStart[f + 1]). */
  readonly rowStart: Int32Array;

  constructor(frameHeight: number, pictureHeight: number) {
    this.frameHeight = frameHeight;
    this.ys = axisWeights(frameHeight, pictureHeight);
    this.rowStart = new Int32Array(frameHeight + 1);
    const { source } = this.ys;
    for (let k = 0; k < source.length; k++) {
      const next = (source[k] as number) + 1;
      this.rowStart[next] = (this.rowStart[next] as number) + 1;
    }
    for (let f = 0; f < frameHeight; f++) {
      this.rowStart[f + 1] =
        (this.rowStart[f + 1] as number) + (this.rowStart[f] as number);
    }
  }

  /** The index from the top of FITS row y (0-based). */
  flip(y: number): number {
    return this.frameHeight - 1 - y;
  }

  /**
   * How many frame rows from y (at most `limit`) fall wholly on one and the
   * same picture row, so their sums can be spread once: 1 unless frame row y
   * itself does.
   */
  sameRow(y: number, limit: number): number {
    const { rowStart, ys } = this;
    const whole = (f: number): number => {
      const k = rowStart[f] as number;
      return (rowStart[f + 1] as number) - k === 1 && ys.weight[k] === 1
        ? (ys.target[k] as number)
        : -1;
    };
    const flipped = this.flip(y);
    const target = whole(flipped);
    if (target < 0) {
      return 1;
    }
    let run = 1;
    while (run < limit && whole(flipped - run) === target) {
      run++;
    }
    return run;
  }
}

/** The spans of `m` picture columns cut to frame columns [x0, x1). */
export function cutColumns(
  xs: Spans,
  m: number,
  x0: number,
  x1: number,
): ColumnRange {
  const cut = emptySpans(m);
  let first = m;
  let end = 0;
  const inside = (i: number) => i >= x0 && i < x1;
  for (let j = 0; j < m; j++) {
    const from = Math.max(x0, xs.from[j] as number);
    const to = Math.min(x1, xs.to[j] as number);
    cut.from[j] = from;
    cut.to[j] = Math.max(from, to);
    const left = xs.left[j] as number;
    if (left >= 0 && inside(left)) {
      cut.left[j] = left;
      cut.leftWeight[j] = xs.leftWeight[j] as number;
    }
    const right = xs.right[j] as number;
    if (right >= 0 && inside(right)) {
      cut.right[j] = right;
      cut.rightWeight[j] = xs.rightWeight[j] as number;
    }
    if (
      to > from ||
      (cut.left[j] as number) >= 0 ||
      (cut.right[j] as number) >= 0
    ) {
      first = Math.min(first, j);
      end = j + 1;
    }
  }
  const covered = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    covered[j] =
      (cut.to[j] as number) -
      (cut.from[j] as number) +
      ((cut.left[j] as number) >= 0 ? (cut.leftWeight[j] as number) : 0) +
      ((cut.right[j] as number) >= 0 ? (cut.rightWeight[j] as number) : 0);
  }
  return { first, end: Math.max(first, end), covered, spans: cut };
}

/*
 * The per-pixel loops are free functions of their arguments, not methods:
 * small, and with every property read before the loop, V8 compiles them
 * once, early, instead of replacing a long method's loop several times over
 * (each time it meets a property it has no feedback for) while the first
 * preview of a process runs.
 */

/**
 * The sums per picture column of a range over `rows` frame rows, from float
 * values clipped to [low, high]: `values[first + r × stride + x]` is frame
 * column x of row r. Without NaN (`finite`), each column takes its span of
 * every row in one go and only rowSum is set (the weights are coverage);
 * otherwise row by row, NaN left out of rowSum and rowWeight.
 */
function floatRowSums(
  range: ColumnRange,
  values: Float32Array,
  first: number,
  stride: number,
  rows: number,
  low: number,
  scale: number,
  finite: boolean,
  rowSum: Float64Array,
  rowWeight: Float64Array,
): void {
  if (finite) {
    const { first: j0, end } = range;
    const { from: froms, to: tos, left: lefts, right: rights } = range.spans;
    const { leftWeight, rightWeight } = range.spans;
    // Each picture column sums its span of every row, column by column.
    for (let j = j0; j < end; j++) {
      let s = 0;
      let odd = 0;
      const from = (froms[j] as number) + first;
      const to = (tos[j] as number) + first;
      const left = lefts[j] as number;
      const right = rights[j] as number;
      let edges = 0;
      for (let r = 0; r < rows; r++) {
        const at = r * stride;
        let i = from + at;
        const stop = to + at;
        for (; i + 1 < stop; i += 2) {
          const a = ((values[i] as number) - low) * scale;
          const b = ((values[i + 1] as number) - low) * scale;
          s += a < 0 ? 0 : a > 1 ? 1 : a;
          odd += b < 0 ? 0 : b > 1 ? 1 : b;
        }
        if (i < stop) {
          const a = ((values[i] as number) - low) * scale;
          s += a < 0 ? 0 : a > 1 ? 1 : a;
        }
        if (left >= 0) {
          const a = ((values[left + first + at] as number) - low) * scale;
          edges += (leftWeight[j] as number) * (a < 0 ? 0 : a > 1 ? 1 : a);
        }
        if (right >= 0) {
          const a = ((values[right + first + at] as number) - low) * scale;
          edges += (rightWeight[j] as number) * (a < 0 ? 0 : a > 1 ? 1 : a);
        }
      }
      rowSum[j] = s + odd + edges;
    }
    return;
  }
  rowSum.fill(0, range.first, range.end);
  rowWeight.fill(0, range.first, range.end);
  for (let r = 0; r < rows; r++) {
    floatRowSum(
      range,
      values,
      first + r * stride,
      low,
      scale,
      rowSum,
      rowWeight,
    );
  }
}

/** One row's clipped values per picture column, added to rowSum and rowWeight; NaN is left out. */
function floatRowSum(
  range: ColumnRange,
  values: Float32Array,
  shift: number,
  low: number,
  scale: number,
  rowSum: Float64Array,
  rowWeight: Float64Array,
): void {
  const { first, end } = range;
  const { from: froms, to: tos, left: lefts, right: rights } = range.spans;
  const { leftWeight, rightWeight } = range.spans;
  for (let j = first; j < end; j++) {
    let s = 0;
    let w = 0;
    const from = (froms[j] as number) + shift;
    const to = (tos[j] as number) + shift;
    for (let i = from; i < to; i++) {
      const t = shade(values[i] as number, low, scale);
      if (t === t) {
        s += t;
        w++;
      }
    }
    const left = lefts[j] as number;
    if (left >= 0) {
      const t = shade(values[left + shift] as number, low, scale);
      if (t === t) {
        const f = leftWeight[j] as number;
        s += f * t;
        w += f;
      }
    }
    const right = rights[j] as number;
    if (right >= 0) {
      const t = shade(values[right + shift] as number, low, scale);
      if (t === t) {
        const f = rightWeight[j] as number;
        s += f * t;
        w += f;
      }
    }
    rowSum[j] = (rowSum[j] as number) + s;
    rowWeight[j] = (rowWeight[j] as number) + w;
  }
}

/** Like floatRowSums, from codes through their table of shades. */
function codeRowSums(
  range: ColumnRange,
  codes: Codes,
  shift: number,
  stride: number,
  rows: number,
  shades: Float64Array,
  finite: boolean,
  rowSum: Float64Array,
  rowWeight: Float64Array,
): void {
  const { first, end } = range;
  const { from: froms, to: tos, left: lefts, right: rights } = range.spans;
  const { leftWeight, rightWeight } = range.spans;
  if (finite) {
    // Each picture column sums its span of every row, column by column.
    for (let j = first; j < end; j++) {
      let s = 0;
      let odd = 0;
      const from = (froms[j] as number) + shift;
      const to = (tos[j] as number) + shift;
      const left = lefts[j] as number;
      const right = rights[j] as number;
      let edges = 0;
      for (let r = 0; r < rows; r++) {
        const at = r * stride;
        let i = from + at;
        const stop = to + at;
        for (; i + 1 < stop; i += 2) {
          s += shades[codes[i] as number] as number;
          odd += shades[codes[i + 1] as number] as number;
        }
        if (i < stop) {
          s += shades[codes[i] as number] as number;
        }
        if (left >= 0) {
          edges +=
            (leftWeight[j] as number) *
            (shades[codes[left + shift + at] as number] as number);
        }
        if (right >= 0) {
          edges +=
            (rightWeight[j] as number) *
            (shades[codes[right + shift + at] as number] as number);
        }
      }
      rowSum[j] = s + odd + edges;
    }
    return;
  }
  rowSum.fill(0, first, end);
  rowWeight.fill(0, first, end);
  for (let r = 0; r < rows; r++) {
    codeRowSum(range, codes, shift + r * stride, shades, rowSum, rowWeight);
  }
}

/** One row's shades per picture column, added to rowSum and rowWeight; NaN is left out. */
function codeRowSum(
  range: ColumnRange,
  codes: Codes,
  shift: number,
  shades: Float64Array,
  rowSum: Float64Array,
  rowWeight: Float64Array,
): void {
  const { first, end } = range;
  const { from: froms, to: tos, left: lefts, right: rights } = range.spans;
  const { leftWeight, rightWeight } = range.spans;
  for (let j = first; j < end; j++) {
    let s = 0;
    let w = 0;
    const from = (froms[j] as number) + shift;
    const to = (tos[j] as number) + shift;
    for (let i = from; i < to; i++) {
      const t = shades[codes[i] as number] as number;
      if (t === t) {
        s += t;
        w++;
      }
    }
    const left = lefts[j] as number;
    if (left >= 0) {
      const t = shades[codes[left + shift] as number] as number;
      if (t === t) {
        const f = leftWeight[j] as number;
        s += f * t;
        w += f;
      }
    }
    const right = rights[j] as number;
    if (right >= 0) {
      const t = shades[codes[right + shift] as number] as number;
      if (t === t) {
        const f = rightWeight[j] as number;
        s += f * t;
        w += f;
      }
    }
    rowSum[j] = (rowSum[j] as number) + s;
    rowWeight[j] = (rowWeight[j] as number) + w;
  }
}

/**
 * For each of `m` target pixels along a row, the `n` source pixels it takes:
 * whole pixels [from, to) with weight 1, and the partly covered pixels either
 * side (index -1 when none). Enlarging, it is the one nearest source pixel.
 */
export interface Spans {
  from: Int32Array;
  to: Int32Array;
  left: Int32Array;
  leftWeight: Float64Array;
  right: Int32Array;
  rightWeight: Float64Array;
}

/** Spans of `m` target pixels, none taking anything yet. */
function emptySpans(m: number): Spans {
  return {
    from: new Int32Array(m),
    to: new Int32Array(m),
    left: new Int32Array(m).fill(-1),
    leftWeight: new Float64Array(m),
    right: new Int32Array(m).fill(-1),
    rightWeight: new Float64Array(m),
  };
}

/** Overlaps below this are rounding noise in `j × step`, not coverage. */
const SLIVER = 1e-9;

export function spans(n: number, m: number): Spans {
  const result = emptySpans(m);
  const step = n / m;
  for (let j = 0; j < m; j++) {
    if (n < m) {
      const i = Math.min(n - 1, Math.floor((j + 0.5) * step));
      result.from[j] = i;
      result.to[j] = i + 1;
      continue;
    }
    const start = j * step;
    const end = Math.min(n, (j + 1) * step);
    const from = Math.min(n, Math.ceil(start - SLIVER));
    const to = Math.max(from, Math.floor(end + SLIVER));
    result.from[j] = from;
    result.to[j] = to;
    if (from - start > SLIVER) {
      result.left[j] = from - 1;
      result.leftWeight[j] = from - start;
    }
    if (end - to > SLIVER && to < n) {
      result.right[j] = to;
      result.rightWeight[j] = end - to;
    }
  }
  return result;
}

export interface AxisWeights {
  /** Parallel arrays of (source pixel, target pixel, weight), ascending in both. */
  source: Int32Array;
  target: Int32Array;
  weight: Float64Array;
}

/**
 * How `n` source pixels contribute to `m` target pixels along one axis:
 * shrinking, each source pixel spreads over the (at most two) targets it
 * overlaps, by overlap length; enlarging, each target takes its nearest source.
 */
export function axisWeights(n: number, m: number): AxisWeights {
  // At most two targets per source shrinking, one source per target enlarging.
  const room = n >= m ? 2 * n : m;
  const source = new Int32Array(room);
  const target = new Int32Array(room);
  const weight = new Float64Array(room);
  let k = 0;
  if (n >= m) {
    const step = n / m; // source pixels per target pixel
    for (let i = 0; i < n; i++) {
      const t = Math.min(m - 1, Math.floor(i / step));
      const inFirst = Math.min(1, Math.max(0, (t + 1) * step - i));
      source[k] = i;
      target[k] = t;
      weight[k++] = inFirst;
      if (inFirst < 1 && t + 1 < m) {
        source[k] = i;
        target[k] = t + 1;
        weight[k++] = 1 - inFirst;
      }
    }
  } else {
    for (let t = 0; t < m; t++) {
      source[k] = Math.min(n - 1, Math.floor(((t + 0.5) * n) / m));
      target[k] = t;
      weight[k++] = 1;
    }
  }
  return {
    source: source.slice(0, k),
    target: target.slice(0, k),
    weight: weight.slice(0, k),
  };
}
