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
export const NON_FINITE_BELOW = 0x0080;
export const NON_FINITE_FROM = 0xff80;

interface Target {
  rank: number;
  /** The top 16 bits of the rank's key, and how many values lie in lower bins. */
  bin: number;
  before: number;
}

/** Bins either side of a sample's guess whose low bits are counted too (PercentileCounter.expect). */
const GUESS_SPREAD = 2;

/**
 * Percentiles of values fed in pieces. Feed every value, call `nextPass()`,
 * and while it returns true feed the same values again; then `result()`.
 *
 * The first pass counts the top 16 bits of each value's key, the second the
 * low 16 bits of the values in the bins where the wanted ranks fell. Told
 * beforehand where those bins probably are (`expect`, from a sample of the
 * values), the first pass counts the low bits of a few bins around each guess
 * as well, and when the guesses hold there is no second pass.
 */
export class PercentileCounter {
  private readonly ps: readonly number[];
  private readonly high = new Uint32Array(BINS);
  /** Values fed as big-endian halves: their top halves, counted raw and folded into `high` after the first pass. */
  private rawHigh: Int32Array | undefined;
  private pass: "count" | "select" | "done" = "count";
  private count = 0;
  private infinite = 0;
  private targets: Target[] = [];
  /** Whether this pass counts low bits (the select pass, or a first pass with guesses). */
  private selecting = false;
  /** The slot of each top-16-bit bin whose low bits are counted, or -1. */
  private slotOf = new Int8Array(0);
  /** The same by raw top half, for values fed as big-endian halves. */
  private rawSlotOf = new Int8Array(0);
  /** The bins by slot. */
  private bins: number[] = [];
  /** Per slot, a 65,536-bin histogram of the low 16 bits, end to end; rawLow by raw low half. */
  private low = new Uint32Array(0);
  private rawLow = new Int32Array(0);

  constructor(ps: readonly number[]) {
    for (const p of ps) {
      if (!(p >= 0 && p <= 100)) {
        throw new RangeError(`a percentile is from 0 to 100; got ${p}`);
      }
    }
    this.ps = ps;
  }

  /**
   * Before anything is fed: guesses the bins of the wanted ranks from
   * `sample`, a counter that was fed a sample of the values (its first pass
   * only), so the first pass can count their low bits too.
   */
  expect(sample: PercentileCounter): void {
    if (this.pass !== "count" || this.selecting) {
      throw new Error("guesses are made before any value is fed");
    }
    const histogram = sample.finiteHistogram();
    let total = 0;
    for (let bin = 0; bin < BINS; bin++) {
      total += histogram[bin] as number;
    }
    if (total === 0) {
      return;
    }
    const guessed = new Set<number>();
    for (const p of this.ps) {
      const rank = Math.floor((p / 100) * (total - 1));
      let cumulative = 0;
      for (let bin = 0; bin < BINS; bin++) {
        cumulative += histogram[bin] as number;
        if (rank < cumulative) {
          for (let d = -GUESS_SPREAD; d <= GUESS_SPREAD; d++) {
            const near = bin + d;
            if (near >= NON_FINITE_BELOW && near < NON_FINITE_FROM) {
              guessed.add(near);
            }
          }
          break;
        }
      }
    }
    this.countLowBits([...guessed]);
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
    if (this.pass === "done") {
      return;
    }
    // Int32 rather than Uint32: V8 keeps int32 in registers, while a uint32
    // above 2^31 becomes a double.
    const bits = new Int32Array(
      values.buffer,
      values.byteOffset,
      values.length,
    );
    const high = this.pass === "count" ? this.high : undefined;
    const slotOf = this.selecting ? this.slotOf : undefined;
    for (let r = 0; r < rows; r++) {
      const from = start + r * stride;
      countKeys(bits, from, from + width, high, slotOf, this.low);
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
    if (this.pass === "done") {
      return;
    }
    let raw: Int32Array | undefined;
    if (this.pass === "count") {
      this.rawHigh ??= new Int32Array(BINS);
      raw = this.rawHigh;
    }
    const slotOf = this.selecting ? this.rawSlotOf : undefined;
    for (let r = 0; r < rows; r++) {
      const from = 2 * (start + r * stride);
      countHalves(halves, from, from + 2 * width, raw, slotOf, this.rawLow);
    }
  }

  /** How many NaN or infinite values were fed (known after the first pass). */
  get nonFinite(): number {
    return this.infinite;
  }

  /** Feeds `n` copies of a value (rounded to float32, as the other values are). */
  addRepeated(value: number, n: number): void {
    if (n <= 0 || this.pass === "done") {
      return;
    }
    scratch[0] = value;
    const key = sortKey(scratchBits[0] as number);
    if (this.pass === "count") {
      this.high[key >>> 16] = (this.high[key >>> 16] as number) + n;
    }
    if (this.selecting) {
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
      this.endCounting();
      if (this.count === 0) {
        this.pass = "done";
        return false;
      }
      const missing = this.targets.filter(
        (t) => !this.selecting || (this.slotOf[t.bin] as number) < 0,
      );
      if (missing.length === 0) {
        // Every wanted rank fell in a guessed bin.
        this.foldRawLow();
        this.pass = "done";
        return false;
      }
      this.countLowBits([...new Set(this.targets.map((t) => t.bin))]);
      this.pass = "select";
      return true;
    }
    if (this.pass === "select") {
      this.foldRawLow();
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
    const found = new Map<number, number>();
    for (const target of this.targets) {
      const base = (this.slotOf[target.bin] as number) << 16;
      const l = lowBitsOfRank(this.low, base, target.rank - target.before);
      found.set(target.rank, valueOfKey(((target.bin << 16) | l) >>> 0));
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

  /** The first pass's histogram of top-16-bit keys, NaN and infinities left out. */
  private finiteHistogram(): Uint32Array {
    const histogram = this.high.slice();
    if (this.rawHigh !== undefined) {
      foldHigh(this.rawHigh, histogram);
    }
    histogram.fill(0, 0, NON_FINITE_BELOW);
    histogram.fill(0, NON_FINITE_FROM);
    return histogram;
  }

  /** After the first pass: how many finite values, and the bins of the wanted ranks. */
  private endCounting(): void {
    const high = this.high;
    if (this.rawHigh !== undefined) {
      foldHigh(this.rawHigh, high);
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
  }

  /** From now on, counts the low 16 bits of values in these bins (afresh). */
  private countLowBits(bins: number[]): void {
    this.bins = bins;
    this.slotOf = new Int8Array(BINS).fill(-1);
    bins.forEach((bin, slot) => {
      this.slotOf[bin] = slot;
    });
    this.low = new Uint32Array(bins.length * BINS);
    this.rawSlotOf = new Int8Array(BINS);
    for (let half = 0; half < BINS; half++) {
      this.rawSlotOf[half] = this.slotOf[highKeyOfHalf(half)] as number;
    }
    this.rawLow = new Int32Array(bins.length * BINS);
    this.selecting = true;
  }

  /** Adds the low halves counted raw into `low`, for the bins of wanted ranks. */
  private foldRawLow(): void {
    const wantedBins = new Set(this.targets.map((t) => t.bin));
    this.bins.forEach((bin, slot) => {
      if (wantedBins.has(bin)) {
        // A negative value's key is its bits inverted.
        foldLow(this.rawLow, this.low, slot << 16, bin < 0x8000 ? 0xffff : 0);
      }
    });
  }
}

/*
 * The per-value loops are free functions of their arguments: small, with no
 * property read inside, so V8 compiles them once, early.
 */

/** The low 16 bits of the value of rank `rank` (0-based) among one slot's values. */
function lowBitsOfRank(low: Uint32Array, base: number, rank: number): number {
  let remaining = rank;
  let l = 0;
  for (; l < BINS - 1; l++) {
    remaining -= low[base + l] as number;
    if (remaining < 0) {
      break;
    }
  }
  return l;
}

/** Counts keys of float32 bits[from, to): top halves into `high`, low halves of slotted bins into `low`. */
function countKeys(
  bits: Int32Array,
  from: number,
  to: number,
  high: Uint32Array | undefined,
  slotOf: Int8Array | undefined,
  low: Uint32Array,
): void {
  if (high !== undefined && slotOf === undefined) {
    for (let i = from; i < to; i++) {
      const bin = sortKey(bits[i] as number) >>> 16;
      high[bin] = (high[bin] as number) + 1;
    }
    return;
  }
  if (slotOf === undefined) {
    return;
  }
  for (let i = from; i < to; i++) {
    const key = sortKey(bits[i] as number);
    const bin = key >>> 16;
    if (high !== undefined) {
      high[bin] = (high[bin] as number) + 1;
    }
    const slot = slotOf[bin] as number;
    if (slot >= 0) {
      const at = (slot << 16) | (key & 0xffff);
      low[at] = (low[at] as number) + 1;
    }
  }
}

/** Like countKeys for big-endian halves: halves[i] is a top half, halves[i + 1] its low half. */
function countHalves(
  halves: Uint16Array,
  from: number,
  to: number,
  high: Int32Array | undefined,
  slotOf: Int8Array | undefined,
  low: Int32Array,
): void {
  if (high !== undefined && slotOf === undefined) {
    for (let i = from; i < to; i += 2) {
      const h = halves[i] as number;
      high[h] = (high[h] as number) + 1;
    }
    return;
  }
  if (slotOf === undefined) {
    return;
  }
  for (let i = from; i < to; i += 2) {
    const h = halves[i] as number;
    if (high !== undefined) {
      high[h] = (high[h] as number) + 1;
    }
    const slot = slotOf[h] as number;
    if (slot >= 0) {
      const at = (slot << 16) | (halves[i + 1] as number);
      low[at] = (low[at] as number) + 1;
    }
  }
}

/** Adds counts by raw top half into a histogram by key. */
function foldHigh(raw: Int32Array, high: Uint32Array): void {
  for (let half = 0; half < BINS; half++) {
    const n = raw[half] as number;
    if (n > 0) {
      const bin = highKeyOfHalf(half);
      high[bin] = (high[bin] as number) + n;
    }
  }
}

/** Adds one slot's counts by raw low half into its histogram by key. */
function foldLow(
  raw: Int32Array,
  low: Uint32Array,
  base: number,
  flip: number,
): void {
  for (let half = 0; half < BINS; half++) {
    const n = raw[base | half] as number;
    if (n > 0) {
      const at = base | (swapHalf(half) ^ flip);
      low[at] = (low[at] as number) + n;
    }
  }
}

/** Where percentile p falls among `count` sorted values, as numpy's linear method puts it. */
export function wanted(p: number, count: number) {
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

/** The float32 value of a sort key (a uint32; see the module comment). */
export function valueOfKey(key: number): number {
  scratchBits[0] = (key & SIGN) === 0 ? ~key : key ^ SIGN;
  return scratch[0] as number;
}

/** numpy's interpolation between neighbours, which is exact at both ends. */
export function lerp(a: number, b: number, t: number): number {
  const difference = b - a;
  return t >= 0.5 ? b - difference * (1 - t) : a + difference * t;
}
