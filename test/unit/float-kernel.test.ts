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
      kernel.prepare(width, spans(width, m), new RowMap(width, m), m, 2);
      const input = kernel.input(4 * width);
      // Past the row: pixels of every sort, which must not count.
      const bytes = stored(values, [12, 30, 0]);
      input.set(bytes.subarray(0, 4 * width));
      new Uint8Array(input.buffer, input.byteOffset + 4 * width, 12).set(
        bytes.subarray(4 * width),
      );
      // Twice into area 1, closed into picture row 1; area 0 stays empty.
      for (const round of [0, 1]) {
        const listed = kernel.sort(0, WINDOWS, CENTRE, weight, 1);
        const columns: number[] = [...kernel.kept().subarray(0, listed)].filter(
          (x) => x < width,
        );
        const expected = values.flatMap((v, x) =>
          sorted(v) === "kept" ? [x] : [],
        );
        assert.deepEqual(columns, expected, `width ${width}: kept, ${round}`);
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
            Math.abs((got[j] as number) - e) <=
              1e-12 * Math.max(1, Math.abs(e)),
            `${what}: ${name}, column ${j}: ${got[j]} against ${e}`,
          );
        });
      }
    }
  });

  it("says when its memory cannot hold a picture, and stays usable", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    // 30,000 x 30,000 picture pixels: 21.6 GB of sums, past WebAssembly's 4 GiB.
    assert.throws(
      () => kernel.prepare(8, spans(8, 2), new RowMap(8, 2), 30_000, 30_000),
      (error: unknown) =>
        error instanceof KernelMemoryError &&
        /cannot grow its memory/.test(error.message),
    );
    kernel.prepare(8, spans(8, 2), new RowMap(8, 2), 2, 1);
    kernel.input(32).set(stored([12, 12, 12, 12, 12, 12, 12, 12], []));
    assert.equal(kernel.sort(0, WINDOWS, CENTRE, 1, 0), 0);
    kernel.close(0, 0, 1);
    assert.deepEqual([...kernel.picture().counts], [4, 4]);
  });

  it("refuses a row outside its input", () => {
    const kernel = floatKernel();
    assert.ok(kernel);
    kernel.prepare(8, spans(8, 2), new RowMap(8, 2), 2, 1);
    kernel.input(64);
    assert.throws(
      () => kernel.sort(40, WINDOWS, CENTRE, 1, 0),
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
