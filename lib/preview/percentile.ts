/**
 * Exact percentiles of a Float32Array without sorting it or copying it.
 *
 * A float32's bits, with the sign bit flipped for positives and every bit
 * flipped for negatives, sort as unsigned integers in the order of the values.
 * So a value of a given rank can be found with two counting passes: the top
 * 16 bits of that key by a 65,536-bin histogram, then the low 16 bits among
 * the values sharing them. Each pass is one linear read of the data; the extra
 * memory is a few 256 KiB histograms, whatever the frame size (a sort of a
 * 50-megapixel frame would need its own 200 MB copy).
 *
 * Ranks are combined as numpy.percentile's default ("linear") method does, so
 * the results match the reference's numpy.percentile for the same values.
 * NaN and ±Inf are left out (numpy would return NaN and the reference's
 * preview would be blank).
 *
 * The values need not be in one array: a PercentileCounter is fed them in
 * pieces, in the same order on each of its passes, so a frame can be streamed
 * from the file twice instead of being held; a value repeated n times (a
 * gap's zeros, an entry of a 16-bit image's code table) counts n in one call.
 */

export interface PercentileResult {
  /** How many finite values there were. */
  count: number;
  /** One per requested percentile; all NaN when `count` is 0. */
  values: number[];
}

const BINS = 1 << 16;
const SIGN = 0x80000000;
/** Top-16-bit key bins of negative NaN/-Inf (below) and of +Inf/NaN (from). */
const NON_FINITE_BELOW = 0x0080;
const NON_FINITE_FROM = 0xff80;

interface Target {
  rank: number;
  /** The top 16 bits of the rank's key, and how many values lie in lower bins. */
  bin: number;
  before: number;
}

/**
 * Percentiles of values fed in pieces. Feed every value, call `nextPass()`,
 * and while it returns true feed the same values again; then `result()`.
 */
export class PercentileCounter {
  private readonly ps: readonly number[];
  private readonly high = new Uint32Array(BINS);
  private pass: "count" | "select" | "done" = "count";
  private count = 0;
  private targets: Target[] = [];
  /** Second pass: the slot of each top-16-bit bin that holds a wanted rank, or -1. */
  private slotOf = new Int8Array(0);
  /** Second pass: a 65,536-bin histogram of the low 16 bits per slot, end to end. */
  private low = new Uint32Array(0);
  /** The top-16-bit bins of the wanted ranks, by slot. */
  private bins: number[] = [];
  /** Values fed as big-endian halves: counted by raw half, folded into the histograms at the end of each pass. */
  private rawHigh: Int32Array | undefined;
  private rawSlotOf = new Int8Array(0);
  private rawLow = new Int32Array(0);
  private infinite = 0;

  constructor(ps: readonly number[]) {
    for (const p of ps) {
      if (!(p >= 0 && p <= 100)) {
        throw new RangeError(`a percentile is from 0 to 100; got ${p}`);
      }
    }
    this.ps = ps;
  }

  /**
   * Feeds `rows` runs of `width` values, run r from `start + r × stride`:
   * a block of rows of a section, as FitsPixelReader lends them.
   */
  addRows(
    values: Float32Array,
    start: number,
    stride: number,
    width: number,
    rows: number,
  ): void {
    // Int32 rather than Uint32: V8 keeps int32 in registers, while a uint32
    // above 2^31 becomes a double.
    const bits = new Int32Array(
      values.buffer,
      values.byteOffset,
      values.length,
    );
    if (this.pass === "count") {
      const high = this.high;
      for (let r = 0; r < rows; r++) {
        const from = start + r * stride;
        const to = from + width;
        for (let i = from; i < to; i++) {
          const bin = sortKey(bits[i] as number) >>> 16;
          high[bin] = (high[bin] as number) + 1;
        }
      }
    } else if (this.pass === "select") {
      const { slotOf, low } = this;
      for (let r = 0; r < rows; r++) {
        const from = start + r * stride;
        const to = from + width;
        for (let i = from; i < to; i++) {
          const key = sortKey(bits[i] as number);
          const slot = slotOf[key >>> 16] as number;
          if (slot >= 0) {
            const at = (slot << 16) | (key & 0xffff);
            low[at] = (low[at] as number) + 1;
          }
        }
      }
    }
  }

  /**
   * Like addRows for float32 values still in FITS (big-endian) byte order:
   * value p is `halves[2p]` (its top 16 bits, bytes swapped) and
   * `halves[2p + 1]`. Counting by the raw halves needs no byte swap and no
   * key per value: the 65,536 possible halves are turned into keys once.
   */
  addBigEndianRows(
    halves: Uint16Array,
    start: number,
    stride: number,
    width: number,
    rows: number,
  ): void {
    if (this.pass === "count") {
      this.rawHigh ??= new Int32Array(BINS);
      const raw = this.rawHigh;
      for (let r = 0; r < rows; r++) {
        const from = 2 * (start + r * stride);
        const to = from + 2 * width;
        for (let i = from; i < to; i += 2) {
          const h = halves[i] as number;
          raw[h] = (raw[h] as number) + 1;
        }
      }
    } else if (this.pass === "select") {
      const { rawSlotOf, rawLow } = this;
      for (let r = 0; r < rows; r++) {
        const from = 2 * (start + r * stride);
        const to = from + 2 * width;
        for (let i = from; i < to; i += 2) {
          const slot = rawSlotOf[halves[i] as number] as number;
          if (slot >= 0) {
            const at = (slot << 16) | (halves[i + 1] as number);
            rawLow[at] = (rawLow[at] as number) + 1;
          }
        }
      }
    }
  }

  /** How many NaN or infinite values were fed (known after the first pass). */
  get nonFinite(): number {
    return this.infinite;
  }

  /** Feeds `n` copies of a value (rounded to float32, as the other values are). */
  addRepeated(value: number, n: number): void {
    if (n <= 0) {
      return;
    }
    scratch[0] = value;
    const key = sortKey(scratchBits[0] as number);
    if (this.pass === "count") {
      this.high[key >>> 16] = (this.high[key >>> 16] as number) + n;
    } else if (this.pass === "select") {
      const slot = this.slotOf[key >>> 16] as number;
      if (slot >= 0) {
        const at = (slot << 16) | (key & 0xffff);
        this.low[at] = (this.low[at] as number) + n;
      }
    }
  }

  /** Ends a pass; true when the values must be fed once more. */
  nextPass(): boolean {
    if (this.pass === "count") {
      this.startSelecting();
      // With nothing finite there is nothing to select.
      return this.count > 0;
    }
    this.pass = "done";
    return false;
  }

  result(): PercentileResult {
    if (this.pass !== "done") {
      throw new Error("the percentiles are known only after the last pass");
    }
    const count = this.count;
    if (count === 0) {
      return { count, values: this.ps.map(() => NaN) };
    }
    if (this.rawHigh !== undefined) {
      this.bins.forEach((bin, slot) => {
        // A negative value's key is its bits inverted.
        const flip = bin < 0x8000 ? 0xffff : 0;
        const base = slot << 16;
        for (let half = 0; half < BINS; half++) {
          const n = this.rawLow[base | half] as number;
          if (n > 0) {
            const at = base | (swapHalf(half) ^ flip);
            this.low[at] = (this.low[at] as number) + n;
          }
        }
      });
    }
    const found = new Map<number, number>();
    for (const target of this.targets) {
      const base = (this.slotOf[target.bin] as number) << 16;
      let remaining = target.rank - target.before;
      for (let l = 0; l < BINS; l++) {
        remaining -= this.low[base + l] as number;
        if (remaining < 0) {
          found.set(target.rank, valueOfKey(((target.bin << 16) | l) >>> 0));
          break;
        }
      }
    }
    const valueOf = (rank: number) => found.get(rank) as number;
    return {
      count,
      values: this.ps.map((p) => {
        const w = wanted(p, count);
        return lerp(valueOf(w.below), valueOf(w.above), w.fraction);
      }),
    };
  }

  private startSelecting(): void {
    const high = this.high;
    const rawHigh = this.rawHigh;
    if (rawHigh !== undefined) {
      for (let half = 0; half < BINS; half++) {
        const n = rawHigh[half] as number;
        if (n > 0) {
          const bin = highKeyOfHalf(half);
          high[bin] = (high[bin] as number) + n;
        }
      }
    }
    for (let bin = 0; bin < NON_FINITE_BELOW; bin++) {
      this.infinite += high[bin] as number;
    }
    for (let bin = NON_FINITE_FROM; bin < BINS; bin++) {
      this.infinite += high[bin] as number;
    }
    // NaN and ±Inf (exponent bits all set) have keys of their own at both
    // ends: dropping those bins leaves the finite values, with no test per value.
    high.fill(0, 0, NON_FINITE_BELOW);
    high.fill(0, NON_FINITE_FROM);
    let count = 0;
    for (let bin = 0; bin < BINS; bin++) {
      count += high[bin] as number;
    }
    this.count = count;
    if (count === 0) {
      this.pass = "done";
      return;
    }
    const ranks = [
      ...new Set(
        this.ps.flatMap((p) => {
          const w = wanted(p, count);
          return [w.below, w.above];
        }),
      ),
    ].sort((a, b) => a - b);
    let cumulative = 0;
    let next = 0;
    for (let bin = 0; bin < BINS && next < ranks.length; bin++) {
      const inBin = high[bin] as number;
      while (
        next < ranks.length &&
        (ranks[next] as number) < cumulative + inBin
      ) {
        this.targets.push({
          rank: ranks[next] as number,
          bin,
          before: cumulative,
        });
        next++;
      }
      cumulative += inBin;
    }
    const bins = [...new Set(this.targets.map((t) => t.bin))];
    this.bins = bins;
    this.slotOf = new Int8Array(BINS).fill(-1);
    bins.forEach((bin, slot) => {
      this.slotOf[bin] = slot;
    });
    this.low = new Uint32Array(bins.length * BINS);
    if (rawHigh !== undefined) {
      this.rawSlotOf = new Int8Array(BINS);
      for (let half = 0; half < BINS; half++) {
        this.rawSlotOf[half] = this.slotOf[highKeyOfHalf(half)] as number;
      }
      this.rawLow = new Int32Array(bins.length * BINS);
    }
    this.pass = "select";
  }
}

/** Where percentile p falls among `count` sorted values, as numpy's linear method puts it. */
function wanted(p: number, count: number) {
  const position = (p / 100) * (count - 1);
  const below = Math.floor(position);
  return {
    below,
    above: Math.min(below + 1, count - 1),
    fraction: position - below,
  };
}

export function percentiles(
  data: Float32Array,
  ps: readonly number[],
): PercentileResult {
  const counter = new PercentileCounter(ps);
  do {
    counter.addRows(data, 0, data.length, data.length, 1);
  } while (counter.nextPass());
  return counter.result();
}

/**
 * Percentiles of values given as how often each entry of a table occurs,
 * visiting the entries in ascending order of value (`ascending`, indices into
 * `counts`; `valueOf` gives an entry's value): one walk, no histogram passes.
 * NaN and infinite entries are left out, wherever they are in the order.
 */
export function percentilesOfCounts(
  counts: Int32Array,
  ascending: ArrayLike<number>,
  valueOf: (entry: number) => number,
  ps: readonly number[],
): PercentileResult {
  let count = 0;
  for (let k = 0; k < ascending.length; k++) {
    const entry = ascending[k] as number;
    const n = counts[entry] as number;
    if (n > 0 && Number.isFinite(valueOf(entry))) {
      count += n;
    }
  }
  if (count === 0) {
    return { count, values: ps.map(() => NaN) };
  }
  const ranks = ps.map((p) => wanted(p, count));
  const needed = [...new Set(ranks.flatMap((w) => [w.below, w.above]))].sort(
    (a, b) => a - b,
  );
  const found = new Map<number, number>();
  let before = 0;
  let next = 0;
  for (let k = 0; k < ascending.length && next < needed.length; k++) {
    const entry = ascending[k] as number;
    const n = counts[entry] as number;
    if (n === 0) {
      continue;
    }
    const value = valueOf(entry);
    if (!Number.isFinite(value)) {
      continue;
    }
    before += n;
    while (next < needed.length && (needed[next] as number) < before) {
      found.set(needed[next] as number, value);
      next++;
    }
  }
  return {
    count,
    values: ranks.map((w) =>
      lerp(
        found.get(w.below) as number,
        found.get(w.above) as number,
        w.fraction,
      ),
    ),
  };
}

/** The median of the finite values, as numpy.median (NaN when there are none). */
export function median(data: Float32Array): number {
  return percentiles(data, [50]).values[0] as number;
}

/** A 16-bit half as read little-endian from big-endian bytes, back in order. */
function swapHalf(half: number): number {
  return ((half & 0xff) << 8) | (half >>> 8);
}

/** The top 16 bits of the sort key of a float32 whose top half is `half` (bytes swapped). */
function highKeyOfHalf(half: number): number {
  const top = swapHalf(half);
  return (top & 0x8000) !== 0 ? ~top & 0xffff : top ^ 0x8000;
}

function sortKey(u: number): number {
  // Without a branch: u >> 31 is all ones for negatives, 0 for positives.
  return (u ^ ((u >> 31) | SIGN)) >>> 0;
}

const scratch = new Float32Array(1);
const scratchBits = new Int32Array(scratch.buffer);

function valueOfKey(key: number): number {
  scratchBits[0] = (key & SIGN) === 0 ? ~key : key ^ SIGN;
  return scratch[0] as number;
}

/** numpy's interpolation between neighbours, which is exact at both ends. */
function lerp(a: number, b: number, t: number): number {
  const difference = b - a;
  return t >= 0.5 ? b - difference * (1 - t) : a + difference * t;
}
