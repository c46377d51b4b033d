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

export function percentiles(
  data: Float32Array,
  ps: readonly number[],
): PercentileResult {
  for (const p of ps) {
    if (!(p >= 0 && p <= 100)) {
      throw new RangeError(`a percentile is from 0 to 100; got ${p}`);
    }
  }
  // Int32 rather than Uint32: V8 keeps int32 in registers, while a uint32
  // above 2^31 becomes a double.
  const bits = new Int32Array(data.buffer, data.byteOffset, data.length);
  const high = new Uint32Array(BINS);
  for (let i = 0; i < bits.length; i++) {
    const bin = sortKey(bits[i] as number) >>> 16;
    high[bin] = (high[bin] as number) + 1;
  }
  // NaN and ±Inf (exponent bits all set) have keys of their own at both ends:
  // dropping those bins leaves the finite values, without a test per value.
  high.fill(0, 0, NON_FINITE_BELOW);
  high.fill(0, NON_FINITE_FROM);
  let count = 0;
  for (let bin = 0; bin < BINS; bin++) {
    count += high[bin] as number;
  }
  if (count === 0) {
    return { count, values: ps.map(() => NaN) };
  }
  const wanted = ps.map((p) => {
    const position = (p / 100) * (count - 1);
    const below = Math.floor(position);
    return {
      below,
      above: Math.min(below + 1, count - 1),
      fraction: position - below,
    };
  });
  const ranks = [...new Set(wanted.flatMap((w) => [w.below, w.above]))].sort(
    (a, b) => a - b,
  );
  const found = selectRanks(bits, high, ranks);
  const valueOf = (rank: number) => found.get(rank) as number;
  return {
    count,
    values: wanted.map((w) =>
      lerp(valueOf(w.below), valueOf(w.above), w.fraction),
    ),
  };
}

/** The median of the finite values, as numpy.median (NaN when there are none). */
export function median(data: Float32Array): number {
  return percentiles(data, [50]).values[0] as number;
}

function sortKey(u: number): number {
  // Without a branch: u >> 31 is all ones for negatives, 0 for positives.
  return (u ^ ((u >> 31) | SIGN)) >>> 0;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

function valueOfKey(key: number): number {
  scratchBits[0] = (key & SIGN) === 0 ? ~key >>> 0 : (key ^ SIGN) >>> 0;
  return scratch[0] as number;
}

/** The values at the given 0-based ranks (ascending) of the finite values. */
function selectRanks(
  bits: Int32Array,
  high: Uint32Array,
  ranks: readonly number[],
): Map<number, number> {
  // The top-16-bit bin of each rank, and how many values lie in lower bins.
  const targets: { rank: number; bin: number; before: number }[] = [];
  let cumulative = 0;
  let next = 0;
  for (let bin = 0; bin < BINS && next < ranks.length; bin++) {
    const inBin = high[bin] as number;
    while (
      next < ranks.length &&
      (ranks[next] as number) < cumulative + inBin
    ) {
      targets.push({ rank: ranks[next] as number, bin, before: cumulative });
      next++;
    }
    cumulative += inBin;
  }
  const bins = [...new Set(targets.map((t) => t.bin))];
  const slotOf = new Int8Array(BINS).fill(-1);
  bins.forEach((bin, slot) => {
    slotOf[bin] = slot;
  });
  const low = bins.map(() => new Uint32Array(BINS));
  for (let i = 0; i < bits.length; i++) {
    const key = sortKey(bits[i] as number);
    const slot = slotOf[key >>> 16] as number;
    if (slot >= 0) {
      const histogram = low[slot] as Uint32Array;
      const l = key & 0xffff;
      histogram[l] = (histogram[l] as number) + 1;
    }
  }
  const result = new Map<number, number>();
  for (const target of targets) {
    const histogram = low[slotOf[target.bin] as number] as Uint32Array;
    let remaining = target.rank - target.before;
    for (let l = 0; l < BINS; l++) {
      remaining -= histogram[l] as number;
      if (remaining < 0) {
        result.set(target.rank, valueOfKey(((target.bin << 16) | l) >>> 0));
        break;
      }
    }
  }
  return result;
}

/** numpy's interpolation between neighbours, which is exact at both ends. */
function lerp(a: number, b: number, t: number): number {
  const difference = b - a;
  return t >= 0.5 ? b - difference * (1 - t) : a + difference * t;
}
