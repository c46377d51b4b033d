/**
 * Previews of the real fixtures: every Gemini file (the GMOS masks as mosaics
 * with the right chips in the right order, their pixel statistics checked
 * against the extensions read directly), every astropy file a picture or a
 * reason; damaged files fail with a FitsFormatError naming the file; and the
 * thread pool, where a failure stays with its file.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import sharp from "sharp";

import { FitsFormatError } from "../../lib/fits/errors.js";
import {
  FitsPixelReader,
  imageLayout,
  readImage,
} from "../../lib/fits/pixels.js";
import { readHeaders } from "../../lib/fits/read.js";
import {
  buildGmosMosaic,
  type GapRule,
  type GmosMosaic,
  parseSection,
  scienceImages,
} from "../../lib/preview/gmos.js";
import { median } from "../../lib/preview/percentile.js";
import { makePreview, type PreviewOutcome } from "../../lib/preview/preview.js";
import { renderPreview } from "../../lib/preview/render.js";
import {
  PreviewPool,
  PreviewThreadError,
} from "../../lib/preview/render-thread.js";
import { sharedPath } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const GEMINI = sharedPath("fixtures", "fits", "gemini");
const ASTROPY = sharedPath("fixtures", "fits", "astropy");

/** Decompressed copies of the Gemini .bz2 fixtures, made once. */
const plain = mkdtempSync(join(tmpdir(), "ff-preview-fixtures-"));
after(() => rmSync(plain, { recursive: true, force: true }));
before(() => {
  for (const name of readdirSync(GEMINI).filter((n) => n.endsWith(".bz2"))) {
    const bytes = execFileSync("bzip2", ["-dc", join(GEMINI, name)], {
      maxBuffer: 64 * 1024 * 1024,
    });
    writeFileSync(join(plain, name.replace(/\.bz2$/, "")), bytes);
  }
});

const GMOS = readdirSync(GEMINI).filter((n) => n.startsWith("gmos-"));

function preview(outcome: PreviewOutcome) {
  assert.equal(
    outcome.kind,
    "preview",
    outcome.kind === "no-preview" ? outcome.reason : "",
  );
  return outcome as Extract<PreviewOutcome, { kind: "preview" }>;
}

async function grey(jpeg: Buffer) {
  const { data, info } = await sharp(jpeg)
    .toColourspace("b-w")
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, pixels: data };
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

/** Contiguous runs of mosaic columns that some amplifier covers. */
function coveredRuns(mosaic: GmosMosaic): [number, number][] {
  const covered = new Uint8Array(mosaic.frame.width);
  for (const { target } of mosaic.placements) {
    covered.fill(1, target.x, target.x + target.width);
  }
  const runs: [number, number][] = [];
  covered.forEach((c, x) => {
    const last = runs[runs.length - 1];
    if (c === 1 && last !== undefined && last[1] === x) {
      last[1] = x + 1;
    } else if (c === 1) {
      runs.push([x, x + 1]);
    }
  });
  return runs;
}

describe("Gemini fixtures", () => {
  for (const name of GMOS) {
    const amps = Number(/_(\d+)amp_/.exec(name)?.[1]);
    const xbin = Number(/_(\d)\d_\d+amp/.exec(name)?.[1]);

    it(`${name}: a ${amps}-amplifier mosaic of three chips in detector order`, async () => {
      const made = preview(await makePreview(join(GEMINI, name)));
      assert.equal(made.stats.kind, "gmos-mosaic");
      assert.equal(made.stats.hdus.length, amps);
      assert.equal(made.stats.frameWidth, 6144 / xbin + 80);
      assert.ok(made.stats.decompressMs > 0, "read through bzip2");
      const picture = await grey(made.jpeg);
      assert.deepEqual([picture.width, picture.height], [640, 480]);

      const path = join(plain, name.replace(/\.bz2$/, ""));
      const chip = mosaicOf(path, "chip");
      assert.equal(coveredRuns(chip).length, 3, "three chips, two gaps");
      // The default is the chip rule, for the mosaic and for the picture.
      assert.deepEqual(coveredRuns(mosaicOf(path)), coveredRuns(chip));
      const byChip = preview(await makePreview(path, { gapRule: "chip" }));
      assert.ok(made.jpeg.equals(byChip.jpeg), "the default picture");
      const reference = mosaicOf(path, "reference");
      // The reference's rule splits chips 2 and 3 of 12-amplifier frames.
      assert.equal(coveredRuns(reference).length, amps === 12 ? 5 : 3);
      // Left to right in the mosaic is ascending DETSEC, whatever the file order.
      const byColumn = [...reference.placements].sort(
        (a, b) => a.target.x - b.target.x,
      );
      const byDetector = [...reference.placements].sort(
        (a, b) => a.detsec.x0 - b.detsec.x0,
      );
      assert.deepEqual(
        byColumn.map((p) => p.hdu),
        byDetector.map((p) => p.hdu),
      );
      // Gap columns hold nothing.
      const { width, height, data } = chip.frame;
      const [first, second] = coveredRuns(chip) as [
        [number, number],
        [number, number],
      ];
      for (let x = first[1]; x < second[0]; x++) {
        for (let y = 0; y < height; y += 17) {
          assert.equal(data[y * width + x], 0, `gap column ${x}`);
        }
      }
    });

    it(`${name}: each chip's region of the JPEG has the brightness of that chip's pixels`, async () => {
      const path = join(plain, name.replace(/\.bz2$/, ""));
      const made = preview(await makePreview(path));
      const picture = await grey(made.jpeg);
      const { low, high, box, frameWidth } = made.stats;
      const mosaic = mosaicOf(path, "chip");
      // Expected: straight from each extension, bias and gain applied here.
      const structure = readHeaders(path);
      const chips = [0, 1, 2].map(() => ({
        sum: 0,
        n: 0,
        x0: Infinity,
        x1: 0,
      }));
      for (const hdu of scienceImages(structure)) {
        const layout = imageLayout(hdu);
        assert.ok(layout.ok);
        const detsec = parseSection(hdu.header.string("DETSEC"));
        const datasec = parseSection(hdu.header.string("DATASEC"));
        assert.ok(detsec && datasec);
        const overscan = parseSection(hdu.header.string("BIASSEC"));
        const pixels = readImage(path, layout.layout).data;
        const w = layout.layout.width;
        let bias = 0;
        if (overscan && overscan.x1 <= w) {
          const values: number[] = [];
          for (let y = overscan.y0; y < overscan.y1; y++) {
            for (let x = overscan.x0; x < overscan.x1; x++) {
              values.push(pixels[y * w + x] as number);
            }
          }
          bias = median(Float32Array.from(values));
        }
        const gain = hdu.header.number("GAIN") ?? 1;
        const c = chips[Math.floor(detsec.x0 / 2048)];
        assert.ok(c);
        for (let y = datasec.y0; y < datasec.y1; y++) {
          for (let x = datasec.x0; x < datasec.x1; x++) {
            const v = ((pixels[y * w + x] as number) - bias) * gain;
            c.sum += Math.min(1, Math.max(0, (v - low) / (high - low)));
            c.n++;
          }
        }
        const placed = mosaic.placements.find((p) => p.hdu === hdu.index);
        assert.ok(placed);
        c.x0 = Math.min(c.x0, placed.target.x);
        c.x1 = Math.max(c.x1, placed.target.x + placed.target.width);
      }
      // The chips of these masks differ by 60 levels or more; JPEG and the
      // area averaging move a region's mean by a few.
      const scale = box.width / frameWidth;
      for (const [i, c] of chips.entries()) {
        const expected = (c.sum / c.n) * 255;
        const x0 = box.x + Math.ceil(c.x0 * scale) + 2;
        const x1 = box.x + Math.floor(c.x1 * scale) - 2;
        let sum = 0;
        let n = 0;
        for (let y = box.y + 2; y < box.y + box.height - 2; y++) {
          for (let x = x0; x < x1; x++) {
            sum += picture.pixels[y * picture.width + x] as number;
            n++;
          }
        }
        assert.ok(
          Math.abs(sum / n - expected) < 10,
          `chip ${i + 1}: JPEG mean ${(sum / n).toFixed(1)}, pixels say ${expected.toFixed(1)}`,
        );
      }
    });
  }

  it("F2: the 2048 x 2048 image extension, pillarboxed on white", async () => {
    const made = preview(
      await makePreview(join(GEMINI, "f2_image_illumination.fits.bz2")),
    );
    assert.equal(made.stats.kind, "image");
    assert.deepEqual(made.stats.hdus, [1]);
    assert.deepEqual(made.stats.box, { x: 80, y: 0, width: 480, height: 480 });
    const picture = await grey(made.jpeg);
    let side = 0;
    for (let y = 0; y < 480; y++) {
      for (let x = 0; x < 76; x++) {
        side += (picture.pixels[y * 640 + x] as number) / (76 * 480);
      }
    }
    assert.ok(side > 250, `white beside the image: ${side}`);
  });

  it("IGRINS-2 files without data give no preview", async () => {
    for (const name of readdirSync(GEMINI).filter((n) =>
      n.startsWith("igrins2"),
    )) {
      const outcome = await makePreview(join(GEMINI, name));
      assert.equal(outcome.kind, "no-preview", name);
    }
  });
});

/** What each astropy fixture gives: a picture, or the gist of the reason. */
const ASTROPY_EXPECTED: Record<string, "preview" | RegExp> = {
  "arange.fits": "preview",
  "blank.fits": /single pixel/,
  "btable.fits": /only BINTABLE/,
  "checksum.fits": "preview",
  "checksum_false.fits": "preview",
  "comp.fits": /tile-compressed/,
  "compressed_image.fits": /tile-compressed/,
  "double_ext.fits": /tile-compressed/,
  "fixed-1890.fits": "preview",
  "group.fits": /random groups/,
  "history_header.fits": /only a primary header/,
  "o4sp040b0_raw.fits": "preview",
  "random_groups.fits": /random groups/,
  "scale.fits": "preview",
  "stddata.fits": /only BINTABLE/,
  "table.fits": /only BINTABLE/,
  "tb.fits": /only BINTABLE/,
  "tdim.fits": /only BINTABLE/,
  "test0.fits": "preview",
  "test1.fits": "preview",
  "theap-gap.fits": /only BINTABLE/,
  "variable_length_table.fits": /only BINTABLE/,
  "verify.fits": /only a primary header/,
  "zerowidth.fits": /only BINTABLE/,
};

describe("astropy fixtures", () => {
  it("every file is listed here", () => {
    assert.deepEqual(
      readdirSync(ASTROPY).sort(),
      Object.keys(ASTROPY_EXPECTED).sort(),
    );
  });

  for (const [name, expected] of Object.entries(ASTROPY_EXPECTED)) {
    it(name, async () => {
      const outcome = await makePreview(join(ASTROPY, name));
      if (expected === "preview") {
        const made = preview(outcome);
        const picture = await grey(made.jpeg);
        assert.deepEqual([picture.width, picture.height], [640, 480]);
      } else {
        assert.equal(outcome.kind, "no-preview");
        if (outcome.kind === "no-preview") {
          assert.match(outcome.reason, expected);
        }
      }
    });
  }
});

function isFitsError(path: string, problem: FitsFormatError["problem"]) {
  return (error: unknown) => {
    assert.ok(error instanceof FitsFormatError, String(error));
    assert.equal(error.problem, problem);
    assert.equal(error.file, path);
    assert.ok(error.message.startsWith(path), error.message);
    return true;
  };
}

describe("damaged files", () => {
  it("a truncated data unit", async (t) => {
    const path = join(tempDir(t), "cut.fits");
    copyFileSync(join(ASTROPY, "test1.fits"), path);
    truncateSync(path, 20_000);
    assert.throws(
      () => renderPreview(path),
      isFitsError(path, "truncated-data"),
    );
    await assert.rejects(
      makePreview(path),
      isFitsError(path, "truncated-data"),
    );
  });

  it("a .bz2 file: corrupt compression, or a truncated data unit inside", async (t) => {
    const dir = tempDir(t);
    const source = join(GEMINI, "gmos-n_illum_HAM_44_12amp_v1.fits.bz2");
    const cut = join(dir, "cut.fits.bz2");
    copyFileSync(source, cut);
    truncateSync(cut, 5000);
    await assert.rejects(makePreview(cut), isFitsError(cut, "bzip2"));
    // Valid bzip2 of a FITS file cut inside a data unit: the error names the
    // .bz2 file, not the temporary copy the pixels were read from.
    const short = join(dir, "short.fits");
    writeFileSync(
      short,
      execFileSync("bzip2", ["-dc", source], { maxBuffer: 1 << 26 }).subarray(
        0,
        2_000_000,
      ),
    );
    execFileSync("bzip2", ["-z", short]);
    await assert.rejects(
      makePreview(`${short}.bz2`),
      isFitsError(`${short}.bz2`, "truncated-data"),
    );
  });
});

describe("the preview thread pool", () => {
  it("gives the same pictures as rendering in-process, and a failure stays with its file", async (t) => {
    const dir = tempDir(t);
    const cut = join(dir, "cut.fits");
    copyFileSync(join(ASTROPY, "test1.fits"), cut);
    truncateSync(cut, 20_000);
    const files = [
      join(GEMINI, "gmos-s_illum_HAM_44_12amp_v1.fits.bz2"),
      cut,
      join(ASTROPY, "test1.fits"),
      join(ASTROPY, "btable.fits"),
      join(GEMINI, "f2_image_illumination.fits.bz2"),
    ];
    const pool = new PreviewPool({ threads: 2 });
    t.after(() => pool.close());
    const results = await Promise.allSettled(files.map((f) => pool.make(f)));
    const [gmos, broken, plainImage, table, f2] = results;
    assert.equal(broken?.status, "rejected");
    if (broken?.status === "rejected") {
      isFitsError(cut, "truncated-data")(broken.reason);
    }
    assert.equal(table?.status, "fulfilled");
    if (table?.status === "fulfilled") {
      assert.equal(table.value.kind, "no-preview");
    }
    for (const [i, result] of [gmos, plainImage, f2].entries()) {
      assert.equal(result?.status, "fulfilled", `file ${i}`);
      if (result?.status === "fulfilled") {
        const inProcess = preview(
          await makePreview(files[[0, 2, 4][i] as number] as string),
        );
        assert.ok(
          preview(result.value).jpeg.equals(inProcess.jpeg),
          `file ${i}`,
        );
      }
    }
  });

  it("a thread that overruns fails its file only, and is replaced", async (t) => {
    const pool = new PreviewPool({ threads: 1 });
    t.after(() => pool.close());
    const file = join(GEMINI, "f2_image_illumination.fits.bz2");
    // 1 ms is less than starting a thread takes, so this one always overruns.
    await assert.rejects(
      pool.make(file, { timeoutMs: 1 }),
      (error: unknown) =>
        error instanceof PreviewThreadError && error.message.includes(file),
    );
    const next = await pool.make(file);
    assert.equal(next.kind, "preview");
  });
});
