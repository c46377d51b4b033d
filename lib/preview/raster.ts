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
  const xs = spans(frame.width, box.width);
  const ys = axisWeights(frame.height, box.height);
  const scale = high > low ? 1 / (high - low) : 0;
  const sum = new Float64Array(box.width * box.height);
  const weight = new Float64Array(box.width * box.height);
  const rowSum = new Float64Array(box.width);
  const rowWeight = new Float64Array(box.width);
  const data = frame.data;
  let done = -1;
  for (let k = 0; k < ys.source.length; k++) {
    // Output row 0 is the top of the picture: the last FITS row.
    const flipped = ys.source[k] as number;
    if (flipped !== done) {
      done = flipped;
      const start = (frame.height - 1 - flipped) * frame.width;
      for (let j = 0; j < box.width; j++) {
        let s = 0;
        let w = 0;
        const end = start + (xs.to[j] as number);
        for (let i = start + (xs.from[j] as number); i < end; i++) {
          const t = Math.min(
            1,
            Math.max(0, ((data[i] as number) - low) * scale),
          );
          if (t === t) {
            s += t;
            w++;
          }
        }
        const left = xs.left[j] as number;
        if (left >= 0) {
          const t = Math.min(
            1,
            Math.max(0, ((data[start + left] as number) - low) * scale),
          );
          if (t === t) {
            const f = xs.leftWeight[j] as number;
            s += f * t;
            w += f;
          }
        }
        const right = xs.right[j] as number;
        if (right >= 0) {
          const t = Math.min(
            1,
            Math.max(0, ((data[start + right] as number) - low) * scale),
          );
          if (t === t) {
            const f = xs.rightWeight[j] as number;
            s += f * t;
            w += f;
          }
        }
        rowSum[j] = s;
        rowWeight[j] = w;
      }
    }
    const w = ys.weight[k] as number;
    const at = (ys.target[k] as number) * box.width;
    for (let d = 0; d < box.width; d++) {
      sum[at + d] = (sum[at + d] as number) + w * (rowSum[d] as number);
      weight[at + d] =
        (weight[at + d] as number) + w * (rowWeight[d] as number);
    }
  }
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
 * For each of `m` target pixels along a row, the `n` source pixels it takes:
 * whole pixels [from, to) with weight 1, and the partly covered pixels either
 * side (index -1 when none). Enlarging, it is the one nearest source pixel.
 */
interface Spans {
  from: Int32Array;
  to: Int32Array;
  left: Int32Array;
  leftWeight: Float64Array;
  right: Int32Array;
  rightWeight: Float64Array;
}

/** Overlaps below this are rounding noise in `j × step`, not coverage. */
const SLIVER = 1e-9;

function spans(n: number, m: number): Spans {
  const result: Spans = {
    from: new Int32Array(m),
    to: new Int32Array(m),
    left: new Int32Array(m).fill(-1),
    leftWeight: new Float64Array(m),
    right: new Int32Array(m).fill(-1),
    rightWeight: new Float64Array(m),
  };
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

interface AxisWeights {
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
function axisWeights(n: number, m: number): AxisWeights {
  const source: number[] = [];
  const target: number[] = [];
  const weight: number[] = [];
  if (n >= m) {
    const step = n / m; // source pixels per target pixel
    for (let i = 0; i < n; i++) {
      const t = Math.min(m - 1, Math.floor(i / step));
      const inFirst = Math.min(1, Math.max(0, (t + 1) * step - i));
      source.push(i);
      target.push(t);
      weight.push(inFirst);
      if (inFirst < 1 && t + 1 < m) {
        source.push(i);
        target.push(t + 1);
        weight.push(1 - inFirst);
      }
    }
  } else {
    for (let t = 0; t < m; t++) {
      source.push(Math.min(n - 1, Math.floor(((t + 0.5) * n) / m)));
      target.push(t);
      weight.push(1);
    }
  }
  return {
    source: Int32Array.from(source),
    target: Int32Array.from(target),
    weight: Float64Array.from(weight),
  };
}
