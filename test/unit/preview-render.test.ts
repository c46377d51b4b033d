/**
 * Preview rendering on frames made for the purpose: exact percentiles, the
 * orientation and letterboxing of the picture, which HDU is shown, the
 * "no preview" reasons, and the GMOS mosaic's geometry (chips, gaps, order,
 * bias and gain) checked on the mosaic and on the decoded JPEG.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";

import sharp from "sharp";

import { FitsPixelReader, imageLayout } from "../../lib/fits/pixels.js";
import { readHeaders } from "../../lib/fits/read.js";
import type { Hdu } from "../../lib/fits/scanner.js";
import {
  buildGmosMosaic,
  type GapRule,
  type GmosMosaic,
  mosaicRegions,
  parseSection,
  planGmosMosaic,
} from "../../lib/preview/gmos.js";
import { drawInOnePass } from "../../lib/preview/one-pass.js";
import {
  median,
  PercentileCounter,
  percentiles,
  percentilesOfCounts,
} from "../../lib/preview/percentile.js";
import { makePreview } from "../../lib/preview/preview.js";
import {
  drawFrame,
  fitBox,
  type Frame,
  whiteCanvas,
} from "../../lib/preview/raster.js";
import {
  clipRange,
  type GreyImage,
  type RenderOutcome,
  renderPreview,
} from "../../lib/preview/render.js";
import {
  type AmpSpec,
  gmosFrame,
  type HduSpec,
  writeFits,
} from "../helpers/fits-images.js";
import { tempDir } from "../helpers/tmp.js";

/** numpy.percentile's default method on a sorted copy: the definition the selection must meet. */
function sortedPercentile(values: readonly number[], p: number): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  const position = (p / 100) * (finite.length - 1);
  const below = Math.floor(position);
  const a = finite[below] as number;
  const b = finite[Math.min(below + 1, finite.length - 1)] as number;
  return a + (b - a) * (position - below);
}

/** A deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function image(outcome: RenderOutcome): GreyImage & {
  stats: Extract<RenderOutcome, { kind: "image" }>["stats"];
} {
  assert.equal(
    outcome.kind,
    "image",
    outcome.kind === "no-preview" ? outcome.reason : "",
  );
  return { ...outcome.image, stats: outcome.stats };
}

function mean(
  picture: GreyImage,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
): number {
  let sum = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      sum += picture.pixels[y * picture.width + x] as number;
    }
  }
  return sum / ((x1 - x0) * (y1 - y0));
}

async function decode(jpeg: Buffer): Promise<GreyImage> {
  const metadata = await sharp(jpeg).metadata();
  assert.equal(metadata.format, "jpeg");
  assert.equal(metadata.channels, 1, "a greyscale JPEG");
  const { data, info } = await sharp(jpeg)
    .toColourspace("b-w")
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, pixels: data };
}

describe("percentiles", () => {
  it("match numpy's linear percentiles, NaN and infinities left out", () => {
    const next = random(7);
    for (const n of [1, 2, 3, 10, 1001, 100_000]) {
      const values = Array.from({ length: n }, (_, i) => {
        const r = next();
        if (i % 97 === 5) {
          return NaN;
        }
        if (i % 211 === 7) {
          return -Infinity;
        }
        // Negatives, duplicates and a wide range of magnitudes.
        return r < 0.2 ? -Math.round(r * 50) : Math.fround(r ** 3 * 1e6);
      });
      const data = Float32Array.from(values);
      const ps = [0, 0.3, 5, 50, 95, 99.7, 100];
      const got = percentiles(data, ps);
      assert.equal(got.count, values.filter(Number.isFinite).length);
      ps.forEach((p, i) => {
        const expected = sortedPercentile([...data], p);
        const actual = got.values[i] as number;
        assert.ok(
          Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
          `n=${n} p=${p}: ${actual} != ${expected}`,
        );
      });
    }
  });

  it("fed in pieces, as big-endian halves and repeated values, with or without guesses", () => {
    const next = random(11);
    const values = Float32Array.from({ length: 20_000 }, (_, i) =>
      i % 501 === 3
        ? NaN
        : i % 7 === 0
          ? -Math.fround(next() * 300)
          : Math.fround(1000 + 50 * (next() - 0.5)),
    );
    // The same values in FITS byte order, as readBigEndianHalves lends them.
    const bigEndian = Buffer.from(values.slice().buffer).swap32();
    const halves = new Uint16Array(
      bigEndian.buffer,
      bigEndian.byteOffset,
      bigEndian.length / 2,
    );
    const ps = [0.3, 5, 95, 99.7];
    const reference = [...values, ...new Array<number>(500).fill(0)];
    const feed = (counter: PercentileCounter, every = 1) => {
      // Three kinds of input: native floats, big-endian halves, a constant.
      for (let row = 0; row < 100; row += every) {
        if (row % 2 === 0) {
          counter.addRows(values, row * 200, 200, 200, 1);
        } else {
          counter.addBigEndianRows(halves, row * 200, 200, 200, 1);
        }
      }
      counter.addRepeated(0, Math.round(500 / every));
    };
    const guesses: [((c: PercentileCounter) => void) | undefined, number][] = [
      [undefined, 2],
      // A sample that is all of them: the guesses hold, one pass is enough.
      [(counter) => feed(counter), 1],
      // Every 8th row: the guesses may miss in these thin tails, never the values.
      [(counter) => feed(counter, 8), 0],
      // A misleading sample: the guesses miss, and a second pass follows.
      [(counter) => counter.addRepeated(-1e30, 100), 2],
    ];
    for (const [guess, passes] of guesses) {
      const counter = new PercentileCounter(ps);
      if (guess !== undefined) {
        const sample = new PercentileCounter(ps);
        guess(sample);
        counter.expect(sample);
      }
      let fed = 0;
      do {
        feed(counter);
        fed++;
      } while (counter.nextPass());
      if (passes > 0) {
        assert.equal(fed, passes, "passes over the values");
      }
      const got = counter.result();
      assert.equal(got.count, reference.filter(Number.isFinite).length);
      assert.equal(counter.nonFinite, values.filter(Number.isNaN).length);
      ps.forEach((p, i) => {
        assert.equal(
          got.values[i],
          percentiles(Float32Array.from(reference), [p]).values[0],
          `p=${p}`,
        );
        const expected = sortedPercentile(reference, p);
        assert.ok(
          Math.abs((got.values[i] as number) - expected) <= 1e-9 * 1000,
          `p=${p}: ${got.values[i]} != ${expected}`,
        );
      });
    }
  });

  it("from counts of a table, walked in order of value", () => {
    const table = Float32Array.from([5, NaN, 1, 3, Infinity]);
    const counts = Int32Array.from([2, 9, 1, 0, 4]);
    const got = percentilesOfCounts(
      counts,
      [2, 3, 0, 1, 4],
      (k) => table[k] as number,
      [0, 50, 100],
    );
    assert.equal(got.count, 3);
    assert.deepEqual(got.values, [1, 5, 5]);
  });

  it("the median of an even count averages the middle pair; nothing finite gives NaN", () => {
    assert.equal(median(Float32Array.from([4, 1, 3, 2])), 2.5);
    assert.equal(median(Float32Array.from([-0, 0, -1])), 0);
    assert.ok(Number.isNaN(median(Float32Array.from([NaN, Infinity]))));
  });
});

describe("the picture", () => {
  it("fits the frame with its aspect kept, centred", () => {
    assert.deepEqual(fitBox(200, 100, 640, 480), {
      x: 0,
      y: 80,
      width: 640,
      height: 320,
    });
    assert.deepEqual(fitBox(2048, 2048, 640, 480), {
      x: 80,
      y: 0,
      width: 480,
      height: 480,
    });
    assert.deepEqual(fitBox(10, 1000, 640, 480).height, 480);
  });

  it("puts FITS row 1 at the bottom and NaN stays white", () => {
    // 4 x 3 frame: FITS row 1 (first in the data) black, row 3 white.
    const frame = {
      width: 4,
      height: 3,
      data: Float32Array.from([0, 0, 0, 0, 5, 5, NaN, 5, 10, 10, 10, 10]),
    };
    const canvas = whiteCanvas(4, 3);
    drawFrame(canvas, 4, { x: 0, y: 0, width: 4, height: 3 }, frame, 0, 10);
    assert.deepEqual(
      [...canvas],
      [255, 255, 255, 255, 128, 128, 255, 128, 0, 0, 0, 0],
    );
  });

  it("a constant frame is black, as matplotlib draws vmin = vmax", () => {
    const canvas = whiteCanvas(2, 2);
    drawFrame(
      canvas,
      2,
      { x: 0, y: 0, width: 2, height: 2 },
      { width: 2, height: 2, data: new Float32Array(4).fill(3) },
      3,
      3,
    );
    assert.deepEqual([...canvas], [0, 0, 0, 0]);
  });

  it("shrinks by averaging areas and enlarges by repeating pixels", () => {
    const frame = {
      width: 4,
      height: 2,
      data: Float32Array.from([0, 10, 10, 10, 0, 10, 10, 10]),
    };
    const small = whiteCanvas(2, 1);
    drawFrame(small, 2, { x: 0, y: 0, width: 2, height: 1 }, frame, 0, 10);
    assert.deepEqual([...small], [128, 255]);
    const big = whiteCanvas(8, 4);
    drawFrame(big, 8, { x: 0, y: 0, width: 8, height: 4 }, frame, 0, 10);
    assert.deepEqual(
      [...big.subarray(0, 8)],
      [0, 0, 255, 255, 255, 255, 255, 255],
    );
  });
});

/** A 200 x 100 float frame: value = FITS row number (1 at the bottom), with two wild outliers. */
function rampFrame(): HduSpec {
  const values: number[] = [];
  for (let y = 1; y <= 100; y++) {
    for (let x = 0; x < 200; x++) {
      values.push(y);
    }
  }
  values[0] = -1e6;
  values[1] = 1e9;
  return { bitpix: -32, axes: [200, 100], values };
}

describe("rendering a plain image", () => {
  it("clips at the 0.3/99.7 percentiles, flips, and letterboxes on white", (t) => {
    const path = writeFits(join(tempDir(t), "ramp.fits"), [rampFrame()]);
    const picture = image(renderPreview(path));
    assert.equal(picture.stats.kind, "image");
    assert.deepEqual(picture.stats.hdus, [0]);
    assert.equal(picture.stats.percentile, 0.3);
    const all = Float32Array.from(rampFrame().values as number[]);
    assert.equal(picture.stats.low, percentiles(all, [0.3]).values[0]);
    assert.equal(picture.stats.high, percentiles(all, [99.7]).values[0]);
    assert.deepEqual(picture.stats.box, {
      x: 0,
      y: 80,
      width: 640,
      height: 320,
    });
    assert.deepEqual([picture.width, picture.height], [640, 480]);
    assert.equal(mean(picture, 0, 640, 0, 80), 255, "white band above");
    assert.equal(mean(picture, 0, 640, 400, 480), 255, "white band below");
    const top = mean(picture, 0, 640, 82, 90);
    const bottom = mean(picture, 0, 640, 390, 398);
    assert.ok(top > 240, `the last FITS rows are at the top: ${top}`);
    assert.ok(bottom < 15, `FITS row 1 is at the bottom: ${bottom}`);
  });

  it("letterbox false gives just the fitted frame; width and height are options", async (t) => {
    const path = writeFits(join(tempDir(t), "ramp.fits"), [rampFrame()]);
    const picture = image(
      renderPreview(path, { width: 300, height: 300, letterbox: false }),
    );
    assert.deepEqual([picture.width, picture.height], [300, 150]);
    const made = await makePreview(path, {
      width: 100,
      height: 100,
      quality: 90,
    });
    assert.equal(made.kind, "preview");
    if (made.kind === "preview") {
      const decoded = await decode(made.jpeg);
      assert.deepEqual([decoded.width, decoded.height], [100, 100]);
      assert.equal(made.stats.jpegBytes, made.jpeg.length);
    }
    assert.throws(() => renderPreview(path, { width: 0 }), /preview width/);
    await assert.rejects(makePreview(path, { quality: 101 }), /JPEG quality/);
  });

  it("shows the first plane of a cube, squeezed, and the first SCI extension when the primary is empty", (t) => {
    const dir = tempDir(t);
    const plane = (v: number) => new Array<number>(16).fill(v);
    const cube = writeFits(join(dir, "cube.fits"), [
      {
        bitpix: 16,
        axes: [4, 1, 4, 2],
        values: [...plane(0).map((_, i) => i), ...plane(1000)],
      },
    ]);
    const fromCube = image(renderPreview(cube, { letterbox: false }));
    assert.equal(fromCube.stats.frameWidth, 4);
    assert.equal(fromCube.stats.frameHeight, 4);
    assert.equal(fromCube.stats.high < 16, true, "not the 1000s of plane 2");
    const mef = writeFits(join(dir, "mef.fits"), [
      {},
      { xtension: "BINTABLE", axes: [4, 1], cards: [["TFIELDS", 0]] },
      { bitpix: -32, axes: [2, 2], cards: [["EXTNAME", "DQ"]] },
      { bitpix: -32, axes: [3, 2], cards: [["EXTNAME", "SCI"]] },
    ]);
    assert.deepEqual(image(renderPreview(mef)).stats.hdus, [3]);
  });

  it("gives a reason instead of a picture when there is nothing to show", (t) => {
    const dir = tempDir(t);
    const cases: [string, HduSpec[], RegExp][] = [
      ["header.fits", [{}], /no data, only a primary header/],
      [
        "table.fits",
        [{}, { xtension: "BINTABLE", axes: [4, 3], cards: [["TFIELDS", 0]] }],
        /no image data, only BINTABLE/,
      ],
      ["spectrum.fits", [{ bitpix: -32, axes: [500, 1] }], /one-dimensional/],
      ["empty-ext.fits", [{}, { bitpix: -32, axes: [] }], /HDU 1 has no data/],
      [
        "nan.fits",
        [{ bitpix: -32, axes: [3, 3], values: new Array(9).fill(NaN) }],
        /every pixel is NaN/,
      ],
      [
        "blank.fits",
        [
          {
            bitpix: 16,
            axes: [2, 2],
            values: [-1, -1, -1, -1],
            cards: [["BLANK", -1]],
          },
        ],
        /every pixel is NaN, infinite or BLANK/,
      ],
    ];
    for (const [name, hdus, reason] of cases) {
      const outcome = renderPreview(writeFits(join(dir, name), hdus));
      assert.equal(outcome.kind, "no-preview", name);
      if (outcome.kind === "no-preview") {
        assert.match(outcome.reason, reason, name);
      }
    }
  });
});

/** Three 2048-column chips of four 512-column amplifiers, levels 1000/2000/3000 after bias and gain. */
function twelveAmps(rows: number): AmpSpec[] {
  const gains = [1, 2, 4, 0.5];
  return Array.from({ length: 12 }, (_, k) => ({
    detsec: [512 * k + 1, 512 * (k + 1), 1, rows] as [
      number,
      number,
      number,
      number,
    ],
    overscanLeft: k % 2 === 1,
    bias: 400 + 37 * k,
    gain: gains[k % 4] as number,
    level: 1000 * (Math.floor(k / 4) + 1),
  }));
}

function mosaicOf(path: string, gapRule?: GapRule): GmosMosaic {
  const reader = new FitsPixelReader(path);
  try {
    const built = buildGmosMosaic(reader, readHeaders(path), { gapRule });
    assert.ok(built.ok, built.ok ? "" : built.reason);
    return built.mosaic;
  } finally {
    reader.close();
  }
}

/** Runs of equal values along the mosaic's first row: [start, end, value]. */
function columnRuns(mosaic: GmosMosaic): [number, number, number][] {
  const { width, height, data } = mosaic.frame;
  const runs: [number, number, number][] = [];
  for (let x = 0; x < width; x++) {
    const v = data[x] as number;
    for (let y = 1; y < height; y++) {
      assert.equal(data[y * width + x], v, `column ${x} is uniform`);
    }
    const last = runs[runs.length - 1];
    if (last !== undefined && last[2] === v) {
      last[1] = x + 1;
    } else {
      runs.push([x, x + 1, v]);
    }
  }
  return runs;
}

describe("the GMOS mosaic", () => {
  it("parses sections as 0-based, end-exclusive", () => {
    assert.deepEqual(parseSection("[33:544,1:4224]"), {
      x0: 32,
      x1: 544,
      y0: 0,
      y1: 4224,
    });
    assert.equal(parseSection("[5:4,1:2]"), undefined);
    assert.equal(parseSection(undefined), undefined);
  });

  it("12 amplifiers, binned 4 x 4, with the reference's gap rule", (t) => {
    const path = writeFits(
      join(tempDir(t), "gmos12.fits"),
      gmosFrame(twelveAmps(64), { xbin: 4, ybin: 4 }),
    );
    const mosaic = mosaicOf(path, "reference");
    assert.deepEqual(mosaic.binning, { x: 4, y: 4 });
    assert.equal(mosaic.frame.width, 6144 / 4 + 80, "80 columns not binned");
    assert.equal(mosaic.frame.height, 16);
    // Amplifiers at 2048/3072 move 40 unbinned columns (10 binned), at
    // 4096/5120 80 (20); the others stay, so chips 2 and 3 get inner holes
    // and overlaps (later extensions win) exactly as the archive shows them.
    assert.deepEqual(columnRuns(mosaic), [
      [0, 512, 1000],
      [512, 522, 0],
      [522, 768, 2000],
      [768, 778, 0],
      [778, 1024, 2000],
      [1024, 1044, 0],
      [1044, 1280, 3000],
      [1280, 1300, 0],
      [1300, 1536, 3000],
      [1536, 1616, 0],
    ]);
    assert.deepEqual(
      mosaic.placements.map((p) => p.target.x),
      [0, 128, 256, 384, 522, 640, 778, 896, 1044, 1152, 1300, 1408],
    );
    assert.deepEqual(
      mosaic.placements.map((p) => p.bias),
      Array.from({ length: 12 }, (_, k) => 400 + 37 * k),
      "the median of each overscan",
    );
  });

  it("the default, the chip rule, moves whole chips: three chips, two gaps", (t) => {
    const path = writeFits(
      join(tempDir(t), "gmos12.fits"),
      gmosFrame(twelveAmps(64), { xbin: 4, ybin: 4 }),
    );
    const chips = [
      [0, 512, 1000],
      [512, 522, 0],
      [522, 1034, 2000],
      [1034, 1044, 0],
      [1044, 1556, 3000],
      [1556, 1616, 0],
    ];
    assert.deepEqual(columnRuns(mosaicOf(path, "chip")), chips);
    assert.deepEqual(columnRuns(mosaicOf(path)), chips);
  });

  it("6 amplifiers stored out of order land where DETSEC puts them", (t) => {
    const amps: AmpSpec[] = Array.from({ length: 6 }, (_, k) => ({
      detsec: [1024 * k + 1, 1024 * (k + 1), 1, 32] as [
        number,
        number,
        number,
        number,
      ],
      overscanLeft: k % 2 === 0,
      bias: 1000 + k,
      gain: 2,
      level: 100 * (Math.floor(k / 2) + 1),
    }));
    // The e2v fixtures store each chip's right amplifier first.
    const shuffled = [1, 0, 3, 2, 4, 5].map((k) => amps[k] as AmpSpec);
    const path = writeFits(
      join(tempDir(t), "gmos6.fits"),
      gmosFrame(shuffled, { xbin: 2, ybin: 2, instrument: "GMOS-S" }),
    );
    assert.deepEqual(columnRuns(mosaicOf(path, "reference")), [
      [0, 1024, 100],
      [1024, 1044, 0],
      [1044, 2068, 200],
      [2068, 2088, 0],
      [2088, 3112, 300],
      [3112, 3152, 0],
    ]);
  });

  it("the JPEG shows the chips left to right, darkest to brightest, with the gaps", async (t) => {
    const path = writeFits(
      join(tempDir(t), "gmos12.fits"),
      gmosFrame(twelveAmps(1024), { xbin: 4, ybin: 4 }),
    );
    // Native scale: the mosaic is 1616 x 256, drawn 1:1.
    const native = await makePreview(path, {
      width: 1616,
      height: 256,
      gapRule: "chip",
      quality: 95,
    });
    assert.equal(native.kind, "preview");
    if (native.kind !== "preview") {
      return;
    }
    assert.equal(native.stats.kind, "gmos-mosaic");
    assert.equal(native.stats.percentile, 5);
    assert.equal(native.stats.hdus.length, 12);
    const full = await decode(native.jpeg);
    const column = (x0: number, x1: number) => mean(full, x0, x1, 4, 252);
    const chips = [column(4, 508), column(526, 1030), column(1048, 1552)];
    // 1000 is below the 5th percentile, 3000 the top: 0, then 2000 of 1000..3000.
    assert.ok(Math.abs((chips[0] as number) - 0) < 4, `chip 1: ${chips[0]}`);
    assert.ok(Math.abs((chips[1] as number) - 128) < 4, `chip 2: ${chips[1]}`);
    assert.ok((chips[2] as number) > 250, `chip 3: ${chips[2]}`);
    assert.ok(column(1036, 1042) < 20, "the gap between chips 2 and 3 is dark");
    assert.ok(
      column(1565, 1610) < 20,
      "the unused columns on the right are dark",
    );

    // The default picture: 640 x 480, the mosaic letterboxed, three whole
    // chips with the gaps between them.
    const standard = await makePreview(path);
    assert.equal(standard.kind, "preview");
    if (standard.kind !== "preview") {
      return;
    }
    const picture = await decode(standard.jpeg);
    assert.deepEqual([picture.width, picture.height], [640, 480]);
    const { box } = standard.stats;
    assert.deepEqual(box, { x: 0, y: 189, width: 640, height: 101 });
    assert.ok(mean(picture, 0, 640, 0, 180) > 250, "white above");
    assert.ok(mean(picture, 0, 640, 300, 480) > 250, "white below");
    const scale = box.width / 1616;
    const region = (shown: GreyImage, x0: number, x1: number, margin: number) =>
      mean(
        shown,
        Math.ceil(x0 * scale) + margin,
        Math.floor(x1 * scale) - margin,
        box.y + 5,
        box.y + box.height - 5,
      );
    const chipLevels = [
      region(picture, 0, 512, 3),
      region(picture, 522, 1034, 3),
      region(picture, 1044, 1556, 3),
    ];
    assert.ok(
      (chipLevels[0] as number) < 4 &&
        Math.abs((chipLevels[1] as number) - 128) < 4 &&
        (chipLevels[2] as number) > 250,
      `chip levels left to right: ${chipLevels.join(", ")}`,
    );
    // The gaps, 4 picture columns each, are exact before JPEG's ringing.
    const raw = image(renderPreview(path));
    assert.equal(
      region(raw, 1034, 1044, 0),
      0,
      "the gap between chips 2 and 3",
    );
    assert.ok(region(raw, 1024, 1034, 0) > 120, "chip 2 runs up to its gap");
    assert.ok(region(raw, 1044, 1054, 0) > 250, "chip 3 starts after it");

    // The reference rule: 1000 is now above the 5th percentile (more gap
    // columns are zero), so the chips are 1/3, 2/3 and 3/3 of white, and
    // chips 2 and 3 have holes inside.
    const archive = await makePreview(path, { gapRule: "reference" });
    assert.equal(archive.kind, "preview");
    if (archive.kind !== "preview") {
      return;
    }
    const archived = await decode(archive.jpeg);
    const levels = [
      region(archived, 0, 512, 3),
      region(archived, 522, 768, 3),
      region(archived, 1300, 1536, 3),
    ];
    assert.ok(
      Math.abs((levels[0] as number) - 85) < 8 &&
        Math.abs((levels[1] as number) - 171) < 8 &&
        (levels[2] as number) > 245,
      `chip levels left to right: ${levels.join(", ")}`,
    );
  });

  it("sections that do not fit give a reason, not a picture", (t) => {
    const hdus = gmosFrame(twelveAmps(64).slice(0, 2), { xbin: 4, ybin: 4 });
    const second = hdus[2] as HduSpec;
    second.cards = (second.cards ?? []).map(([k, v]) =>
      k === "DETSEC" ? [k, "[513:1536,1:64]"] : [k, v],
    );
    const outcome = renderPreview(
      writeFits(join(tempDir(t), "bad.fits"), hdus),
    );
    assert.equal(outcome.kind, "no-preview");
    if (outcome.kind === "no-preview") {
      assert.match(outcome.reason, /HDU 2: DATASEC .* does not match DETSEC/);
    }
  });
});

/** The picture drawn the simple way: the whole frame in memory, clipped and drawn. */
function drawnInMemory(
  frame: Frame,
  p: number,
  width: number,
  height: number,
): { low: number; high: number; pixels: Uint8Array } {
  const clip = clipRange(frame.data, p);
  const box = fitBox(frame.width, frame.height, width, height);
  const pixels = whiteCanvas(box.width, box.height);
  drawFrame(
    pixels,
    box.width,
    { ...box, x: 0, y: 0 },
    frame,
    clip.low,
    clip.high,
  );
  return { low: clip.low, high: clip.high, pixels };
}

/** Streaming sums in another order: a grey level may differ by one, rarely. */
function assertSamePicture(
  streamed: GreyImage,
  expected: Uint8Array,
  what: string,
): void {
  assert.equal(streamed.pixels.length, expected.length, what);
  let different = 0;
  streamed.pixels.forEach((v, i) => {
    const d = Math.abs(v - (expected[i] as number));
    assert.ok(d <= 1, `${what}: pixel ${i} is ${v}, expected ${expected[i]}`);
    different += d === 0 ? 0 : 1;
  });
  assert.ok(
    different <= expected.length / 1000,
    `${what}: ${different} pixels differ`,
  );
}

/** Noise on every stored value of a frame's image extensions. */
function noisy(hdus: HduSpec[], seed: number, spread: number): HduSpec[] {
  const next = random(seed);
  return hdus.map((hdu) =>
    hdu.values === undefined
      ? hdu
      : {
          ...hdu,
          values: hdu.values.map(
            (v) => Number(v) + Math.round((next() - 0.5) * spread),
          ),
        },
  );
}

describe("streaming the frame gives the picture of the frame in memory", () => {
  const sizes: [number, number][] = [
    [640, 480],
    [97, 61],
    [3000, 2000],
  ];

  it("GMOS mosaics, both gap rules, shrunk and enlarged", (t) => {
    const path = writeFits(
      join(tempDir(t), "gmos12.fits"),
      noisy(gmosFrame(twelveAmps(256), { xbin: 4, ybin: 4 }), 3, 400),
    );
    for (const gapRule of ["chip", "reference"] as const) {
      const mosaic = mosaicOf(path, gapRule);
      for (const [width, height] of sizes) {
        const what = `${gapRule} ${width} x ${height}`;
        const expected = drawnInMemory(mosaic.frame, 5, width, height);
        const streamed = image(
          renderPreview(path, { gapRule, width, height, letterbox: false }),
        );
        assert.equal(streamed.stats.low, expected.low, what);
        assert.equal(streamed.stats.high, expected.high, what);
        assertSamePicture(streamed, expected.pixels, what);
      }
    }
  });

  it("images: float with and without NaN, 16-bit with and without BLANK", (t) => {
    const dir = tempDir(t);
    const next = random(5);
    const count = 300 * 200;
    const floats = Array.from({ length: count }, (_, i) =>
      i % 13 === 0 ? 5000 * next() : 1000 + 40 * (next() - 0.5),
    );
    const counts = floats.map((v) => Math.round(v) - 1000);
    const cases: [string, HduSpec][] = [
      ["float", { bitpix: -32, axes: [300, 200], values: floats }],
      [
        "float with NaN",
        {
          bitpix: -32,
          axes: [300, 200],
          values: floats.map((v, i) => (i % 97 === 0 ? NaN : v)),
        },
      ],
      [
        "16-bit",
        {
          bitpix: 16,
          axes: [300, 200],
          values: counts,
          cards: [["BZERO", 1000]],
        },
      ],
      [
        "16-bit with BLANK",
        {
          bitpix: 16,
          axes: [300, 200],
          values: counts.map((v, i) => (i % 89 === 0 ? -32768 : v)),
          cards: [
            ["BZERO", 1000],
            ["BLANK", -32768],
          ],
        },
      ],
    ];
    for (const [name, hdu] of cases) {
      const path = writeFits(join(dir, `${name}.fits`), [hdu]);
      const reader = new FitsPixelReader(path);
      const layout = imageLayout(readHeaders(path).hdus[0] as Hdu);
      assert.ok(layout.ok);
      const frame = reader.read(layout.layout);
      reader.close();
      for (const [width, height] of sizes) {
        const what = `${name} ${width} x ${height}`;
        const expected = drawnInMemory(frame, 0.3, width, height);
        const streamed = image(
          renderPreview(path, { width, height, letterbox: false }),
        );
        assert.equal(streamed.stats.low, expected.low, what);
        assert.equal(streamed.stats.high, expected.high, what);
        assertSamePicture(streamed, expected.pixels, what);
      }
    }
  });

  it("a large float frame drawn in one read is the picture of the frame in memory, and a wrong guess falls back", (t) => {
    const dir = tempDir(t);
    const next = random(11);
    const [w, h] = [1101, 1000]; // not a multiple of 4: the kernel's last group
    // Sky noise, stars, a NaN patch and a few infinities, on a slope.
    const sky = Array.from({ length: w * h }, (_, i) => {
      const x = i % w;
      const y = Math.floor(i / w);
      if (x > 200 && x < 260 && y > 500 && y < 530) {
        return NaN;
      }
      if (i % 50_021 === 0) {
        return i % 2 === 0 ? Infinity : -Infinity;
      }
      const star = i % 997 === 0 ? 20_000 * next() : 0;
      return 800 + x / 10 + 30 * (next() + next() + next() - 1.5) + star;
    });
    // Every 16th row (the sample's rows among them) far brighter than the rest: the guess misses.
    const striped = sky.map((v, i) =>
      Math.floor(i / w) % 16 === 0 ? v + 5000 : v,
    );
    for (const [name, values, onePass] of [
      ["sky", sky, true],
      ["striped", striped, false],
    ] as const) {
      const path = writeFits(join(dir, `${name}.fits`), [
        { bitpix: -32, axes: [w, h], values: [...values] },
      ]);
      const reader = new FitsPixelReader(path);
      const layout = imageLayout(readHeaders(path).hdus[0] as Hdu);
      assert.ok(layout.ok);
      const frame = reader.read(layout.layout);
      for (const [width, height] of [
        [640, 480],
        [333, 250],
      ] as const) {
        const what = `${name} ${width} x ${height}`;
        const expected = drawnInMemory(frame, 0.3, width, height);
        const box = { ...fitBox(w, h, width, height), x: 0, y: 0 };
        const canvas = whiteCanvas(box.width, box.height);
        const clip = drawInOnePass(
          reader,
          layout.layout,
          box,
          canvas,
          box.width,
          0.3,
        );
        if (onePass) {
          assert.ok(clip !== undefined, `${what}: drawn in one read`);
          assert.equal(clip.low, expected.low, what);
          assert.equal(clip.high, expected.high, what);
          assert.equal(
            clip.count,
            frame.data.filter(Number.isFinite).length,
            what,
          );
          assertSamePicture(
            { width: box.width, height: box.height, pixels: canvas },
            expected.pixels,
            what,
          );
        } else {
          assert.equal(clip, undefined, `${what}: the guess cannot hold`);
          assert.ok(
            canvas.every((v) => v === 255),
            `${what}: canvas untouched`,
          );
        }
        const rendered = image(
          renderPreview(path, { width, height, letterbox: false }),
        );
        assert.equal(rendered.stats.low, expected.low, what);
        assert.equal(rendered.stats.high, expected.high, what);
        assertSamePicture(rendered, expected.pixels, what);
      }
      reader.close();
    }
  });

  it("the pieces of a mosaic tile it: every pixel once, overlaps to the later amplifier", (t) => {
    const path = writeFits(
      join(tempDir(t), "gmos12.fits"),
      gmosFrame(twelveAmps(16), { xbin: 4, ybin: 4 }),
    );
    for (const gapRule of ["chip", "reference"] as const) {
      const planned = planGmosMosaic(readHeaders(path), { gapRule });
      assert.ok(planned.ok);
      const { width, height, amplifiers } = planned.plan;
      const owner = new Int16Array(width * height).fill(-2);
      for (const { rect, amplifier } of mosaicRegions(planned.plan)) {
        for (let y = rect.y; y < rect.y + rect.height; y++) {
          for (let x = rect.x; x < rect.x + rect.width; x++) {
            assert.equal(
              owner[y * width + x],
              -2,
              `${gapRule}: ${x}, ${y} once`,
            );
            owner[y * width + x] =
              amplifier === undefined ? -1 : amplifiers.indexOf(amplifier);
          }
        }
      }
      // The last amplifier covering a pixel owns it; uncovered ones are gaps.
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          let last = -1;
          amplifiers.forEach(({ target }, k) => {
            if (
              x >= target.x &&
              x < target.x + target.width &&
              y >= target.y &&
              y < target.y + target.height
            ) {
              last = k;
            }
          });
          assert.equal(owner[y * width + x], last, `${gapRule}: ${x}, ${y}`);
        }
      }
    }
  });
});
