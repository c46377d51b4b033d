/**
 * Image pixels by offset (lib/fits/pixels.ts): every BITPIX, big-endian, with
 * BZERO/BSCALE and BLANK; planes, sections and squeezed axes; what is not an
 * image and why; a truncated data unit names the file and the HDU.
 */
import assert from "node:assert/strict";
import { truncateSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { FitsFormatError } from "../../lib/fits/errors.js";
import {
  codeDecoder,
  FitsPixelReader,
  type ImageLayout,
  imageLayout,
  isCoded,
  readImage,
} from "../../lib/fits/pixels.js";
import { readHeaders } from "../../lib/fits/read.js";
import { type Bitpix, writeFits } from "../helpers/fits-images.js";
import { tempDir } from "../helpers/tmp.js";

function layoutOf(path: string, hdu = 0): ImageLayout {
  const found = readHeaders(path).hdus[hdu];
  assert.ok(found, `HDU ${hdu} exists`);
  const result = imageLayout(found);
  assert.ok(result.ok, result.ok ? "" : result.reason);
  return result.layout;
}

function reasonFor(path: string, hdu = 0): string {
  const found = readHeaders(path).hdus[hdu];
  assert.ok(found);
  const result = imageLayout(found);
  assert.ok(!result.ok, `HDU ${hdu} of ${path} should not be an image`);
  return result.reason;
}

/** Each case: stored values, the scaling cards, and the physical values expected. */
const CASES: {
  bitpix: Bitpix;
  stored: (number | bigint)[];
  cards: [string, number | bigint][];
  expected: number[];
}[] = [
  {
    bitpix: 8,
    stored: [0, 1, 127, 128, 255, 7],
    cards: [["BLANK", 7]],
    expected: [0, 1, 127, 128, 255, NaN],
  },
  {
    // The unsigned-16 convention of raw Gemini frames.
    bitpix: 16,
    stored: [-32768, -1, 0, 1, 32767, -99],
    cards: [
      ["BZERO", 32768],
      ["BSCALE", 1],
      ["BLANK", -99],
    ],
    expected: [0, 32767, 32768, 32769, 65535, NaN],
  },
  {
    bitpix: 16,
    stored: [-2, -1, 0, 1, 2, 1000],
    cards: [
      ["BZERO", 1500],
      ["BSCALE", 0.5],
    ],
    expected: [1499, 1499.5, 1500, 1500.5, 1501, 2000],
  },
  {
    bitpix: 32,
    stored: [-2147483648, -5, 0, 5, 2147483647, 123],
    cards: [
      ["BSCALE", 2],
      ["BLANK", 123],
    ],
    expected: [-4294967296, -10, 0, 10, 4294967294, NaN],
  },
  {
    bitpix: 64,
    stored: [-(2n ** 40n), -1n, 0n, 1n, 2n ** 40n, -(2n ** 63n)],
    cards: [
      ["BZERO", 10],
      ["BLANK", -(2n ** 63n)],
    ],
    expected: [-(2 ** 40) + 10, 9, 10, 11, 2 ** 40 + 10, NaN],
  },
  {
    bitpix: -32,
    stored: [-1.5, 0, 1e-20, 3.25, NaN, 1e30],
    cards: [],
    expected: [-1.5, 0, 1e-20, 3.25, NaN, 1e30],
  },
  {
    bitpix: -64,
    stored: [-1.5, 0, 1e-20, 3.25, NaN, 1e30],
    cards: [
      ["BZERO", 1],
      ["BSCALE", 2],
    ],
    expected: [-2, 1, 1, 7.5, NaN, 2e30],
  },
];

describe("reading image pixels", () => {
  for (const c of CASES) {
    const scaling = c.cards.map(([k, v]) => `${k}=${v}`).join(" ");
    it(`BITPIX ${c.bitpix} ${scaling}`, (t) => {
      const path = writeFits(join(tempDir(t), "image.fits"), [
        { bitpix: c.bitpix, axes: [3, 2], values: c.stored, cards: c.cards },
      ]);
      const layout = layoutOf(path);
      assert.equal(layout.width, 3);
      assert.equal(layout.height, 2);
      const { data } = readImage(path, layout);
      assert.ok(data instanceof Float32Array);
      assert.deepEqual(
        [...data],
        c.expected.map((v) => Math.fround(v)),
      );
    });
  }

  it("float64 keeps what float32 would round", (t) => {
    const path = writeFits(join(tempDir(t), "i32.fits"), [
      { bitpix: 32, axes: [2, 2], values: [2 ** 30 + 1, 1, 2, 3] },
    ]);
    const layout = layoutOf(path);
    const reader = new FitsPixelReader(path);
    try {
      assert.equal(reader.read(layout, { float64: true }).data[0], 2 ** 30 + 1);
      assert.equal(reader.read(layout).data[0], 2 ** 30);
    } finally {
      reader.close();
    }
  });

  it("squeezes length-1 axes, reads planes and sections", (t) => {
    // 1 x 4 x 1 x 3 x 2: after squeezing, 4 x 3 images in 2 planes.
    const values = Array.from({ length: 24 }, (_, i) => i);
    const path = writeFits(join(tempDir(t), "cube.fits"), [
      { bitpix: -32, axes: [1, 4, 1, 3, 2], values },
    ]);
    const layout = layoutOf(path);
    assert.deepEqual([layout.width, layout.height, layout.planes], [4, 3, 2]);
    const reader = new FitsPixelReader(path);
    try {
      assert.deepEqual([...reader.read(layout).data], values.slice(0, 12));
      assert.deepEqual(
        [...reader.read(layout, { plane: 1 }).data],
        values.slice(12),
      );
      const section = reader.read(layout, {
        plane: 1,
        section: { x: 1, y: 1, width: 2, height: 2 },
      });
      assert.deepEqual([section.width, section.height], [2, 2]);
      assert.deepEqual([...section.data], [17, 18, 21, 22]);
      assert.throws(
        () => reader.read(layout, { plane: 2 }),
        RangeError,
        "a plane past the end",
      );
      assert.throws(
        () =>
          reader.read(layout, { section: { x: 3, y: 0, width: 2, height: 1 } }),
        RangeError,
        "a section past the edge",
      );
    } finally {
      reader.close();
    }
  });

  it("readInto writes rows at a stride with a multiply-add", (t) => {
    const path = writeFits(join(tempDir(t), "into.fits"), [
      {
        bitpix: 16,
        axes: [3, 2],
        values: [1, 2, 3, 4, 5, 6],
        cards: [["BZERO", 10]],
      },
    ]);
    const layout = layoutOf(path);
    const target = new Float32Array(4 * 3).fill(-1);
    const reader = new FitsPixelReader(path);
    try {
      reader.readInto(layout, target, {
        section: { x: 1, y: 0, width: 2, height: 2 },
        offset: 5,
        stride: 4,
        multiply: 2,
        add: -20,
      });
    } finally {
      reader.close();
    }
    // (10 + v) x 2 - 20 = 2v
    assert.deepEqual(
      [...target],
      [-1, -1, -1, -1, -1, 4, 6, -1, -1, 10, 12, -1],
    );
  });

  it("streams blocks of rows: floats, codes and big-endian halves agree with read", (t) => {
    const dir = tempDir(t);
    for (const c of CASES) {
      const path = writeFits(join(dir, `image${c.bitpix}.fits`), [
        { bitpix: c.bitpix, axes: [3, 2], values: c.stored, cards: c.cards },
      ]);
      const layout = layoutOf(path);
      const section = { x: 1, y: 0, width: 2, height: 2 };
      const expected = readImage(path, layout, { section }).data;
      const reader = new FitsPixelReader(path);
      try {
        const floats: number[] = [];
        reader.readFloatRows(
          layout,
          { section, multiply: 2, add: 1 },
          (values, start, stride, _row, rows) => {
            for (let r = 0; r < rows; r++) {
              for (let c = 0; c < section.width; c++) {
                floats.push(values[start + r * stride + c] as number);
              }
            }
          },
        );
        assert.deepEqual(
          floats,
          [...expected].map((v) => Math.fround(2 * v + 1)),
          `BITPIX ${c.bitpix} as floats`,
        );
        if (c.bitpix === 8 || c.bitpix === 16) {
          assert.ok(isCoded(layout));
          const decode = codeDecoder(layout);
          const decoded: number[] = [];
          reader.readCodeRows(
            layout,
            { section },
            (codes, start, stride, _row, rows) => {
              for (let r = 0; r < rows; r++) {
                for (let c = 0; c < section.width; c++) {
                  decoded.push(decode(codes[start + r * stride + c] as number));
                }
              }
            },
          );
          assert.deepEqual(decoded, [...expected], `BITPIX ${c.bitpix} codes`);
        } else {
          assert.ok(!isCoded(layout));
          assert.throws(() => reader.readCodeRows(layout, {}, () => {}));
        }
        if (c.bitpix === -32) {
          const halves: number[] = [];
          reader.readBigEndianHalves(
            layout,
            { section },
            (h, start, stride, _row, rows) => {
              for (let r = 0; r < rows; r++) {
                for (let c = 0; c < section.width; c++) {
                  const at = 2 * (start + r * stride + c);
                  // Each half was read little-endian: swap its bytes back.
                  const top = h[at] as number;
                  const bottom = h[at + 1] as number;
                  const bytes = Buffer.from([
                    top & 0xff,
                    top >>> 8,
                    bottom & 0xff,
                    bottom >>> 8,
                  ]);
                  halves.push(bytes.readFloatBE(0));
                }
              }
            },
          );
          assert.deepEqual(halves, [...expected], "big-endian halves");
        }
      } finally {
        reader.close();
      }
    }
  });

  it("says why an HDU is not an image", (t) => {
    const dir = tempDir(t);
    const path = writeFits(join(dir, "mixed.fits"), [
      {},
      { xtension: "BINTABLE", axes: [8, 2], cards: [["TFIELDS", 0]] },
      {
        xtension: "BINTABLE",
        axes: [8, 1],
        cards: [
          ["TFIELDS", 0],
          ["ZIMAGE", true],
        ],
      },
      { bitpix: -32, axes: [7] },
      { bitpix: -32, axes: [1, 1] },
      { bitpix: -32, axes: [5, 0] },
    ]);
    assert.equal(reasonFor(path, 0), "the primary HDU has no data");
    assert.equal(reasonFor(path, 1), "HDU 1 is a BINTABLE extension");
    assert.match(reasonFor(path, 2), /HDU 2 is a tile-compressed image/);
    assert.match(reasonFor(path, 3), /HDU 3 is one-dimensional \(7 values/);
    assert.equal(reasonFor(path, 4), "HDU 4 holds a single pixel");
    assert.match(reasonFor(path, 5), /HDU 5 has no data/);
  });

  it("a truncated data unit is a FitsFormatError naming the file and the HDU", (t) => {
    const path = writeFits(join(tempDir(t), "cut.fits"), [
      {},
      { bitpix: 16, axes: [100, 100] },
    ]);
    const layout = layoutOf(path, 1);
    truncateSync(path, layout.dataOffset + 5000);
    assert.throws(
      () => readImage(path, layout),
      (error: unknown) =>
        error instanceof FitsFormatError &&
        error.problem === "truncated-data" &&
        error.file === path &&
        error.message.startsWith(`${path}, HDU 1`),
    );
  });
});
