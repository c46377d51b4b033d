/**
 * The WebAssembly loop of one-pass drawing against the same arithmetic in
 * plain JavaScript, on rows built to hit its edges: values on and either side
 * of the thresholds, NaN and the infinities, every row width modulo 4, and the
 * bytes past the row that it may read but must not count. Also: the committed
 * binary is the assembly of the committed text.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import {
  floatKernel,
  KernelMemoryError,
  type PictureSums,
  TooManyKeptError,
} from "../../lib/preview/float-kernel.js";
import { RowMap, spans } from "../../lib/preview/raster.js";
import {
  assembled,
  generatedPath,
  wasmSources,
} from "../../scripts/build-wasm.js";

/** Big-endian float32 bytes of `values`, then `after` (what lies past the row). */
function stored(values: number[], after: number[]): Uint8Array {
  const all = [...values, ...after];
  const bytes = new Uint8Array(4 * all.length);
  const view = new DataView(bytes.buffer);
  all.forEach((v, i) => {
    view.setFloat32(4 * i, v, false);
  });
  return bytes;
}

const WINDOWS = { lowFrom: 8, lowTo: 10, highFrom: 20, highTo: 22 };
const CENTRE = 15;

/** What the kernel does to one pixel, in plain JavaScript. */
function sorted(v: number): "between" | "white" | "black" | "kept" {
  const { lowFrom, lowTo, highFrom, highTo } = WINDOWS;
  if (v > lowTo && v < highFrom) {
    return "between";
  }
  if (v > highTo && v !== Infinity) {
    return "white";
  }
  if (v < lowFrom && v !== -Infinity) {
    return "black";
  }
  return "kept";
}

describe("the float kernel", () => {
  it("sorts every pixel as JavaScript would and sums by picture column, for every width modulo 4", () => {
    const kernel = floatKernel();
    assert.ok(kernel, "WebAssembly SIMD is available here");
    const { lowFrom, lowTo, highFrom, highTo } = WINDOWS;
    const palette = [
      lowFrom,
      Math.fround(lowFrom - 1e-6),
      lowTo,
      Math.fround(lowTo + 1e-6),
      highFrom,
      Math.fround(highFrom - 1e-6),
      highTo,
      Math.fround(highTo + 1e-6),
      12.5,
      NaN,
      Infinity,
      -Infinity,
      -3,
      1e30,
      17.25,
      9,
      21,
    ];
    for (let width = 1; width <= 13; width++) {
      const values = Array.from(
        { length: width },
        (_, x) => palette[(x * 7 + width) % palette.length] as number,
      );
      const m = Math.max(1, Math.floor(width / 2));
      const weight = 0.5;
      kernel.prepare(width, spans(width, m), new RowMap(width, m), m, 2, 64);
      const input = kernel.input(4 * width);
      // Past the row: pixels of every sort, which must not count.
      const bytes = stored(values, [12, 30, 0]);
      input.set(bytes.subarray(0, 4 * width));
      new Uint8Array(input.buffer, input.byteOffset + 4 * width, 12).set(
        bytes.subarray(4 * width),
      );
      // Twice into area 1, closed into picture row 1; area 0 stays empty.
      // The first time kept, the second only listed (a straddling row's second sort).
      const expected = values.flatMap((v, x) =>
        sorted(v) === "kept" ? [x] : [],
      );
      for (const round of [0, 1]) {
        const listed = kernel.sort(
          0,
          WINDOWS,
          CENTRE,
          weight,
          1,
          3,
          round === 0,
        );
        assert.equal(
          listed,
          expected.length,
          `width ${width}: listed, ${round}`,
        );
        assert.equal(kernel.kept().xs.length, expected.length, "kept once");
        const all = kernel.kept(round === 0 ? 0 : listed);
        const from = all.xs.length - listed;
        assert.deepEqual(
          [...all.xs.subarray(from)],
          expected,
          `width ${width}: columns, ${round}`,
        );
        assert.deepEqual(
          [...all.values.subarray(from)],
          expected.map((x) => Math.fround(values[x]!)),
          `width ${width}: values`,
        );
        assert.ok(
          all.fs.subarray(from).every((f) => f === 3),
          "rows",
        );
      }
      kernel.close(1, 1, 2 * weight);
      kernel.close(0, 0, 0);
      const { from, to, left, right, leftWeight, rightWeight } = spans(
        width,
        m,
      );
      const perColumn = (each: (v: number) => number) =>
        Array.from({ length: m }, (_, j) => {
          let s = 0;
          for (let x = from[j] as number; x < (to[j] as number); x++) {
            s += each(values[x] as number);
          }
          if ((left[j] as number) >= 0) {
            s +=
              (leftWeight[j] as number) *
              each(values[left[j] as number] as number);
          }
          if ((right[j] as number) >= 0) {
            s +=
              (rightWeight[j] as number) *
              each(values[right[j] as number] as number);
          }
          return 2 * s;
        });
      const picture: PictureSums = kernel.picture();
      const what = `width ${width}`;
      const zeros = Array.from({ length: m }, () => 0);
      for (const [name, each] of [
        [
          "sums",
          (v: number) => (sorted(v) === "between" ? (v - CENTRE) * weight : 0),
        ],
        ["counts", (v: number) => (sorted(v) === "between" ? weight : 0)],
        ["whites", (v: number) => (sorted(v) === "white" ? weight : 0)],
      ] as const) {
        const plane = picture[name];
        assert.deepEqual(
          [...plane.subarray(0, m)],
          zeros,
          `${what}: ${name}, row 0`,
        );
        const got = [...plane.subarray(m, 2 * m)];
        perColumn(each).forEach((e, j) => {
          assert.ok(
            Math.abs((got[j] as number) - e) <= 1e-6 * Math.max(1, Math.abs(e)),
            `${what}: ${name}, column ${j}: ${got[j]} against ${e}`,
          );
        });
      }
    }
  });

  it("tallies white and black pixels once per frame pixel, not the columns past the row", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    // 5 pixels: white, black, between, kept, white; 3 more past the row, all white.
    const values = [30, 1, 15, 9, 25];
    kernel.prepare(5, spans(5, 2), new RowMap(5, 2), 2, 1, 64);
    const input = kernel.input(20);
    const bytes = stored(values, [30, 30, 30]);
    new Uint8Array(input.buffer, input.byteOffset, bytes.length).set(bytes);
    // A row straddling two picture rows: sorted twice, by weights summing to 1.
    kernel.sort(0, WINDOWS, CENTRE, 0.25, 0, 0, true);
    kernel.sort(0, WINDOWS, CENTRE, 0.75, 1, 0, false);
    assert.deepEqual(kernel.tallies(), { whites: 2, blacks: 1 });
    kernel.prepare(5, spans(5, 2), new RowMap(5, 2), 2, 1, 64);
    assert.deepEqual(
      kernel.tallies(),
      { whites: 0, blacks: 0 },
      "prepare resets",
    );
  });

  it("counts a sample by sort key as JavaScript would, in the planes it then clears", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    const values = [
      0,
      -0,
      1,
      -1,
      1.5,
      -1.5,
      1000.25,
      1000.5,
      1000.75,
      -3e38,
      3e38,
      1e-40,
      NaN,
      Infinity,
      -Infinity,
      7,
      7,
      7,
    ];
    const bytes = stored(values, []);
    const view = new DataView(bytes.buffer);
    const keyOf = (i: number) => {
      const u = view.getUint32(4 * i, false);
      return (u & 0x80000000) !== 0 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
    };
    kernel.prepare(64, spans(64, 4), new RowMap(64, 4), 4, 4, 64);
    kernel.sample(bytes.length, 0).set(bytes);
    const counts = kernel.keyCounts(values.length);
    const expected = new Map<number, number>();
    values.forEach((_, i) => {
      const bin = keyOf(i) >>> 16;
      expected.set(bin, (expected.get(bin) ?? 0) + 1);
    });
    const got = new Map<number, number>();
    counts.forEach((n, bin) => {
      if (n > 0) {
        got.set(bin, n);
      }
    });
    assert.deepEqual(got, expected);
    const running = Uint32Array.from(counts);
    running.forEach((c, bin) => {
      running[bin] = c + (bin > 0 ? running[bin - 1]! : 0);
    });
    assert.deepEqual(
      kernel.keyTotals(values.length),
      running,
      "running totals",
    );
    const bins = [keyOf(6) >>> 16, keyOf(3) >>> 16, keyOf(15) >>> 16];
    const lows = kernel.lowCounts(values.length, bins);
    const expectedLows = new Map<number, number>();
    values.forEach((_, i) => {
      const slot = bins.indexOf(keyOf(i) >>> 16);
      if (slot >= 0) {
        const at = 256 * slot + ((keyOf(i) >>> 8) & 0xff);
        expectedLows.set(at, (expectedLows.get(at) ?? 0) + 1);
      }
    });
    const gotLows = new Map<number, number>();
    lows.forEach((n, at) => {
      if (n > 0) {
        gotLows.set(at, n);
      }
    });
    assert.deepEqual(gotLows, expectedLows);
    assert.throws(() => kernel.lowCounts(4, [1, 1]), /distinct/);
    assert.throws(() => kernel.keyCounts(values.length + 1), /sample holds/);
    kernel.endSample();
    const { sums, counts: between, whites } = kernel.picture();
    assert.ok(
      [sums, between, whites].every((plane) => plane.every((v) => v === 0)),
      "the planes are zero again",
    );
  });

  it("paints grey levels as JavaScript would, keeping pixels of no weight", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    kernel.prepare(8, spans(8, 3), new RowMap(8, 3), 3, 2, 64);
    const area = kernel.paintArea(true);
    const { sums, counts, whites } = kernel.picture();
    sums.set([1, -2, 3, 40, 5, 6]);
    counts.set([1, 2, 1, 1, 0, 1]);
    whites.set([0, 0.5, 0, 0, 0.25, 0.5]);
    area.down.set([1, 2]);
    area.across.set([1, 1, 0.5]);
    area.blank?.set([0, 0, 0.5, 0, 0, 0]);
    area.out.fill(7);
    const [scale, shift] = [0.1, 2];
    kernel.paint(scale, shift);
    const expected = [0, 1, 2, 3, 4, 5].map((i) => {
      const weight =
        [1, 2][Math.floor(i / 3)]! * [1, 1, 0.5][i % 3]! - (i === 2 ? 0.5 : 0);
      if (weight <= 1e-9) {
        return 7;
      }
      const shade = scale * (sums[i]! + counts[i]! * shift) + whites[i]!;
      return Math.max(0, Math.min(255, Math.floor((shade / weight) * 256)));
    });
    assert.deepEqual([...area.out], expected);
    assert.equal(area.out[2], 7, "no weight left: kept");
    assert.equal(area.out[3], 255, "clipped white");
  });

  it("splits the kept pixels by window and counts the non-finite ones and the NaNs", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    kernel.prepare(8, spans(8, 2), new RowMap(8, 2), 2, 2, 64);
    const values = [9, 21, NaN, 10, Infinity, 22, -Infinity, 8, NaN, 20.5];
    const n = values.length;
    kernel.addKept({
      values: Float32Array.from(values),
      xs: new Int32Array(n),
      fs: new Int32Array(n),
    });
    const split = kernel.keep(new RowMap(8, 2), WINDOWS.lowTo);
    assert.deepEqual(split, { lows: 3, highs: 3, nonFinite: 4, nans: 2 });
    const low = [0, 1, 2].map(() => 0);
    low.forEach((_, k) => {
      low[k] = kernel.select("low", k);
    });
    assert.deepEqual(low, [8, 9, 10]);
    assert.equal(kernel.select("high", 0), 20.5);
    assert.equal(kernel.minimumAfter("high", 0), 21);
    assert.equal(kernel.select("high", 2), 22);
    assert.equal(
      kernel.minimumAfter("high", 2),
      Infinity,
      "none after the last",
    );
    assert.throws(
      () => kernel.select("low", 3),
      /rank 3 is outside a window of 3/,
    );
  });

  it("selects a rank as a sort would, with repeats, runs and a single value", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    let state = 7;
    const next = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
    const cases = [
      [5],
      [2, 1],
      Array.from({ length: 1000 }, () => Math.floor(next() * 10)),
      Array.from({ length: 777 }, (_, i) => i),
      Array.from({ length: 777 }, (_, i) => -i),
      Array.from({ length: 5000 }, () => next() * 1e6 - 5e5),
    ];
    for (const values of cases) {
      const sorted = Float32Array.from(values).sort();
      for (const k of [0, 1, values.length >> 1, values.length - 1]) {
        if (k >= values.length) {
          continue;
        }
        // All in the low window, in their first order each time.
        kernel.prepare(8, spans(8, 2), new RowMap(8, 2), 2, 2, 8192);
        kernel.addKept({
          values: Float32Array.from(values),
          xs: new Int32Array(values.length),
          fs: new Int32Array(values.length),
        });
        kernel.keep(new RowMap(8, 2), Infinity);
        assert.equal(
          kernel.select("low", k),
          sorted[k],
          `${values.length}: ${k}`,
        );
        assert.equal(
          kernel.minimumAfter("low", k),
          k + 1 < values.length ? sorted[k + 1] : Infinity,
          `${values.length}: the next after ${k}`,
        );
      }
    }
  });

  it("spreads kept pixels' shades, NaNs' weights and the rows' weights over the picture as JavaScript would", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    // 10 x 7 frame pixels onto 4 x 3: columns and rows straddle.
    const [width, height, m, rows] = [10, 7, 4, 3];
    const columnMap = new RowMap(width, m);
    const rowMap = new RowMap(height, rows);
    kernel.prepare(width, spans(width, m), columnMap, m, rows, 64);
    const pixels = [
      { v: 5, x: 0, f: 0 },
      { v: 12.5, x: 2, f: 1 },
      { v: NaN, x: 5, f: 3 },
      { v: 30, x: 9, f: 6 },
      { v: 11, x: 7, f: 2 },
      { v: NaN, x: 2, f: 5 },
      { v: 10, x: 4, f: 4 },
    ];
    const n = pixels.length;
    kernel.addKept({
      values: Float32Array.from(pixels, (k) => k.v),
      xs: Int32Array.from(pixels, (k) => k.x),
      fs: Int32Array.from(pixels, (k) => k.f),
    });
    assert.equal(kernel.kept().values.length, n);
    kernel.keep(rowMap, WINDOWS.lowTo);
    const area = kernel.paintArea(true);
    const { whites } = kernel.picture();
    whites.set(Array.from({ length: m * rows }, (_, i) => i / 8));
    const tops = Float32Array.from(whites);
    const blank = new Float64Array(m * rows);
    const [low, scale] = [10, 1 / 8];
    kernel.spread(low, scale);
    for (const { v, x, f } of pixels) {
      const t = Math.min(1, Math.max(0, (v - low) * scale));
      for (let a = rowMap.rowStart[f]!; a < rowMap.rowStart[f + 1]!; a++) {
        for (
          let b = columnMap.rowStart[x]!;
          b < columnMap.rowStart[x + 1]!;
          b++
        ) {
          const i = rowMap.ys.target[a]! * m + columnMap.ys.target[b]!;
          const share = rowMap.ys.weight[a]! * columnMap.ys.weight[b]!;
          if (Number.isNaN(v)) {
            blank[i] = blank[i]! + share;
          } else {
            tops[i] = tops[i]! + share * t;
          }
        }
      }
    }
    assert.deepEqual([...kernel.picture().whites], [...tops]);
    assert.deepEqual([...(area.blank ?? [])], [...blank]);
    const down = new Float64Array(rows);
    rowMap.ys.target.forEach((t, a) => {
      down[t] = down[t]! + rowMap.ys.weight[a]!;
    });
    assert.deepEqual([...area.down], [...down], "each picture row's weight");
    assert.ok(blank.some((w) => w > 0) && tops.some((w, i) => w !== i / 8));
    kernel.paintArea(false);
    assert.throws(() => kernel.spread(low, scale), /NaN pixels were kept/);
  });

  it("says when its memory cannot hold a picture, and stays usable", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    // 30,000 x 30,000 picture pixels: 21.6 GB of sums, past WebAssembly's 4 GiB.
    assert.throws(
      () =>
        kernel.prepare(8, spans(8, 2), new RowMap(8, 2), 30_000, 30_000, 64),
      (error: unknown) =>
        error instanceof KernelMemoryError &&
        /cannot grow its memory/.test(error.message),
    );
    kernel.prepare(8, spans(8, 2), new RowMap(8, 2), 2, 1, 64);
    kernel.input(32).set(stored([12, 12, 12, 12, 12, 12, 12, 12], []));
    assert.equal(kernel.sort(0, WINDOWS, CENTRE, 1, 0, 0, true), 0);
    kernel.close(0, 0, 1);
    assert.deepEqual([...kernel.picture().counts], [4, 4]);
  });

  it("says when more pixels are kept than it has room for", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    kernel.prepare(8, spans(8, 2), new RowMap(8, 2), 2, 1, 2);
    kernel.input(32).set(stored([9, 9, 9, 9, 9, 9, 9, 9], []));
    assert.equal(kernel.sort(0, WINDOWS, CENTRE, 1, 0, 0, true), 8);
    assert.throws(
      () => kernel.sort(0, WINDOWS, CENTRE, 1, 0, 1, true),
      (error: unknown) =>
        error instanceof TooManyKeptError &&
        /more than 2 pixels fell inside the percentile windows/.test(
          error.message,
        ),
    );
  });

  it("refuses a row outside its input", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    kernel.prepare(8, spans(8, 2), new RowMap(8, 2), 2, 1, 64);
    kernel.input(64);
    assert.throws(
      () => kernel.sort(40, WINDOWS, CENTRE, 1, 0, 0, true),
      /outside the input/,
    );
  });

  it("is the assembly of float-kernel.wat (npm run wasm)", async () => {
    const sources = wasmSources();
    assert.ok(sources.includes("lib/preview/float-kernel.wat"), "found");
    for (const source of sources) {
      assert.equal(
        readFileSync(generatedPath(source), "utf8"),
        await assembled(source),
        `${source}: run npm run wasm`,
      );
    }
  });
});
