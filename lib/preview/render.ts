/**
 * Rendering a FITS file's preview picture as the reference archive does
 * (FitsStorage v3 `Previewer.render_image`, DOMAIN §4), to 8-bit greyscale:
 * - GMOS with more than one science extension: the amplifier mosaic
 *   (gmos.ts), clipped at the 5th and 95th percentiles;
 * - everything else: the primary data, or the first image extension when the
 *   primary has none, squeezed to 2-D (the first plane of a cube), clipped at
 *   the 0.3rd and 99.7th percentiles;
 * - flipped so FITS row 1 is at the bottom, fitted into the figure
 *   (PREVIEW_SIZE by default, matplotlib's default figure) with its aspect
 *   kept, on white.
 *
 * Synchronous and CPU-bound: run it in a worker thread (render-thread.ts) in
 * a process that must stay responsive. A file that cannot make a picture
 * (tables only, a spectrum, empty or all-NaN data) is a "no-preview" outcome
 * with the reason; a damaged file throws FitsFormatError.
 *
 * The frame is never held: it is a set of rectangles (a mosaic's amplifiers
 * and gaps, or one image), streamed from the file a megabyte of rows at a
 * time, once or twice for the percentiles and once to draw (PieceStream).
 * Peak memory is a few MB of histograms and accumulators, whatever the
 * frame's size.
 */
import { UsageError } from "../errors.js";
import {
  codeDecoder,
  type Codes,
  FitsPixelReader,
  type ImageLayout,
  imageLayout,
  type ImageLayoutResult,
  isCoded,
  type Rect,
} from "../fits/pixels.js";
import { readHeaders } from "../fits/read.js";
import type { FitsStructure, Hdu } from "../fits/scanner.js";
import {
  type AmplifierPlan,
  biasOf,
  type GapRule,
  isGmosMosaic,
  type MosaicPlan,
  mosaicRegions,
  planGmosMosaic,
  scienceImages,
} from "./gmos.js";
import { isPreviewSide, PREVIEW_SIZE } from "./limits.js";
import { drawInOnePass } from "./one-pass.js";
import {
  median,
  PercentileCounter,
  percentiles,
  percentilesOfCounts,
} from "./percentile.js";
import {
  type Box,
  clipScale,
  fitBox,
  Resampler,
  shade,
  whiteCanvas,
} from "./raster.js";

/** The reference's percentiles: norm(percentile=5) for GMOS mosaics, norm()'s default 0.3 otherwise. */
export const GMOS_PERCENTILE = 5;
export const IMAGE_PERCENTILE = 0.3;

export interface RenderOptions {
  /** Picture size in pixels; default and bounds in PREVIEW_SIZE. */
  width?: number;
  height?: number;
  /**
   * true (default): the frame is centred in width x height on white, as the
   * reference's figure shows it; false: the picture is just the fitted frame.
   */
  letterbox?: boolean;
  /** How GMOS amplifiers are moved apart; see gmos.ts. Default "chip". */
  gapRule?: GapRule;
}

/**
 * gapRule departs from the reference on purpose: its per-amplifier rule cuts
 * chips 2 and 3 of 12-amplifier (Hamamatsu) frames into pieces, with holes
 * and overlaps inside the chips, while a preview should show three whole
 * chips in detector order with the gaps between them. For 3- and
 * 6-amplifier frames both rules place every amplifier the same way;
 * "reference" stays available to reproduce the archive's pictures.
 */
export const RENDER_DEFAULTS = {
  width: PREVIEW_SIZE.width,
  height: PREVIEW_SIZE.height,
  letterbox: true,
  gapRule: "chip",
} as const satisfies Required<RenderOptions>;

export interface GreyImage {
  width: number;
  height: number;
  /** Row-major, top row first, one byte per pixel. */
  pixels: Uint8Array;
}

export interface RenderStats {
  kind: "gmos-mosaic" | "image";
  /** The HDUs whose pixels were used. */
  hdus: number[];
  /** The frame before scaling: the mosaic, or the squeezed 2-D plane. */
  frameWidth: number;
  frameHeight: number;
  percentile: number;
  /** The values that became black and white. */
  low: number;
  high: number;
  /** Pixels with a finite value (NaN and BLANK are left out of the percentiles). */
  finitePixels: number;
  /** Where the frame was drawn in the picture. */
  box: Box;
  renderMs: number;
}

export type RenderOutcome =
  | { kind: "image"; image: GreyImage; stats: RenderStats }
  | { kind: "no-preview"; reason: string };

/** Options with defaults filled in; a bad value is a UsageError. */
export function renderSettings(
  options: RenderOptions = {},
): Required<RenderOptions> {
  const settings = { ...RENDER_DEFAULTS, ...definedOnly(options) };
  for (const key of ["width", "height"] as const) {
    const n = settings[key];
    if (!isPreviewSide(n)) {
      throw new UsageError(
        `preview ${key} must be a whole number of pixels from ${PREVIEW_SIZE.min} to ${PREVIEW_SIZE.max}; got ${n}`,
      );
    }
  }
  if (settings.gapRule !== "reference" && settings.gapRule !== "chip") {
    throw new UsageError(
      `the GMOS gap rule is "reference" or "chip"; got ${String(settings.gapRule)}`,
    );
  }
  return settings;
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(options).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}

/**
 * Pixels of an image HDU: frame pixel (x, y) is image pixel (x + dx, y + dy),
 * and its value is (physical − bias) × gain, the bias being the median of
 * the overscan (0 without one), as the reference's mosaic has it.
 */
interface PixelSource {
  layout: ImageLayout;
  plane: number;
  dx: number;
  dy: number;
  gain: number;
  overscan: Rect | undefined;
}

/** Rectangles that tile the frame exactly, each from pixels or a constant (a gap's zeros). */
interface FramePiece {
  rect: Rect;
  source: PixelSource | { constant: number };
}

/** A frame to draw: its size and pieces, never its pixels all at once. */
interface StreamedFrame {
  width: number;
  height: number;
  pieces: FramePiece[];
}

/**
 * Renders the preview of the uncompressed FITS file at `path`. Pass the
 * structure when it is known already, to save reading the headers again.
 */
export function renderPreview(
  path: string,
  options: RenderOptions = {},
  structure?: FitsStructure,
): RenderOutcome {
  const started = performance.now();
  const settings = renderSettings(options);
  const fits = structure ?? readHeaders(path);
  let frame: StreamedFrame;
  let hdus: number[];
  let kind: RenderStats["kind"];
  if (isGmosMosaic(fits)) {
    const planned = planGmosMosaic(fits, settings);
    if (!planned.ok) {
      return noPreview(planned.reason);
    }
    frame = mosaicFrame(planned.plan);
    hdus = planned.plan.amplifiers.map((a) => a.hdu);
    kind = "gmos-mosaic";
  } else {
    const chosen = imageToShow(fits);
    if (!chosen.ok) {
      return noPreview(chosen.reason);
    }
    const { layout } = chosen;
    const { width, height } = layout;
    frame = {
      width,
      height,
      pieces: [
        {
          rect: { x: 0, y: 0, width, height },
          source: {
            layout,
            plane: 0,
            dx: 0,
            dy: 0,
            gain: 1,
            overscan: undefined,
          },
        },
      ],
    };
    hdus = [layout.hdu];
    kind = "image";
  }
  const reader = new FitsPixelReader(path);
  try {
    const percentile =
      kind === "gmos-mosaic" ? GMOS_PERCENTILE : IMAGE_PERCENTILE;
    const fitted = fitBox(
      frame.width,
      frame.height,
      settings.width,
      settings.height,
    );
    const box = settings.letterbox ? fitted : { ...fitted, x: 0, y: 0 };
    const width = settings.letterbox ? settings.width : fitted.width;
    const height = settings.letterbox ? settings.height : fitted.height;
    const pixels = whiteCanvas(width, height);
    const only = frame.pieces[0];
    let clip =
      kind === "image" &&
      frame.pieces.length === 1 &&
      only !== undefined &&
      isStreamedFloat(only.source) &&
      !("constant" in only.source) &&
      only.source.plane === 0
        ? drawInOnePass(
            reader,
            only.source.layout,
            box,
            pixels,
            width,
            percentile,
          )
        : undefined;
    if (clip === undefined) {
      const stream = new PieceStream(reader, frame);
      clip = stream.clipRange(percentile);
      if (clip.count === 0) {
        return noPreview("every pixel is NaN, infinite or BLANK");
      }
      stream.draw(pixels, width, box, clip.low, clip.high);
    }
    return {
      kind: "image",
      image: { width, height, pixels },
      stats: {
        kind,
        hdus,
        frameWidth: frame.width,
        frameHeight: frame.height,
        percentile,
        low: clip.low,
        high: clip.high,
        finitePixels: clip.count,
        box,
        renderMs: performance.now() - started,
      },
    };
  } finally {
    reader.close();
  }
}

/** The mosaic as pieces: each amplifier's visible part, and the zeros between. */
function mosaicFrame(plan: MosaicPlan): StreamedFrame {
  const sources = new Map<AmplifierPlan, PixelSource>();
  const pieces = mosaicRegions(plan).map(({ rect, amplifier }): FramePiece => {
    if (amplifier === undefined) {
      return { rect, source: { constant: 0 } };
    }
    let source = sources.get(amplifier);
    if (source === undefined) {
      const { layout, source: data, target, gain, overscan } = amplifier;
      source = {
        layout,
        plane: 0,
        dx: data.x - target.x,
        dy: data.y - target.y,
        gain,
        overscan,
      };
      sources.set(amplifier, source);
    }
    return { rect, source };
  });
  return { width: plan.width, height: plan.height, pieces };
}

/** The codes a coded source's pieces hold, how often each occurs, and what each stands for. */
interface CodeCensus {
  codes: Uint16Array;
  counts: Int32Array;
  /** (physical − bias) × gain, as float32. */
  values: Float32Array;
  /** Whether some code is BLANK (its value NaN). */
  blank: boolean;
}

/**
 * The passes over a frame's pieces: percentiles, then drawing, holding only
 * a block of rows at a time. BITPIX 8 and 16 sources (raw GMOS, most raw
 * frames) are read once to count their codes, overscan included, so the
 * bias and the percentiles come from the counts, and once more to draw
 * through a table of shades. Other sources are read twice for the
 * percentiles (PercentileCounter), once to draw, and once more for an
 * overscan.
 */
class PieceStream {
  private readonly reader: FitsPixelReader;
  private readonly frame: StreamedFrame;
  /** The piece through which each source's census is fed to the percentiles. */
  private readonly feeder = new Map<PixelSource, FramePiece>();
  private readonly biases = new Map<PixelSource, number>();
  private readonly censuses = new Map<PixelSource, CodeCensus>();
  /** Counting space for one source at a time, zeroed after use. */
  private readonly tally = new Int32Array(1 << 16);
  private readonly overscanTally = new Int32Array(1 << 16);
  /** No NaN or infinity anywhere in the frame (known once the percentiles are). */
  private finite = false;

  constructor(reader: FitsPixelReader, frame: StreamedFrame) {
    this.reader = reader;
    this.frame = frame;
    for (const piece of frame.pieces) {
      if (!("constant" in piece.source) && !this.feeder.has(piece.source)) {
        this.feeder.set(piece.source, piece);
      }
    }
  }

  /**
   * The reference's norm(): the [p, 100 - p] percentiles. When they are equal
   * (numpy would then divide by zero and the reference shows a blank figure)
   * the frame's minimum and maximum are used instead, which is what
   * matplotlib's own scaling does with the unclipped frame.
   */
  clipRange(p: number): { low: number; high: number; count: number } {
    const counter = new PercentileCounter([p, 100 - p]);
    if (this.frame.pieces.some((piece) => isStreamedFloat(piece.source))) {
      // A first look at every SAMPLE_STEP-th row tells where the percentiles
      // probably are, so one pass over the pixels usually finds them exactly.
      const sample = new PercentileCounter([p, 100 - p]);
      for (const piece of this.frame.pieces) {
        this.feed(piece, sample, SAMPLE_STEP);
      }
      counter.expect(sample);
    }
    this.feedAll(counter);
    this.finite = counter.nonFinite === 0;
    const { count, values } = counter.result();
    const [low, high] = values as [number, number];
    if (count === 0 || high > low) {
      return { low, high, count };
    }
    const extremes = new PercentileCounter([0, 100]);
    this.feedAll(extremes);
    const [min, max] = extremes.result().values as [number, number];
    return { low: min, high: max, count };
  }

  private feedAll(counter: PercentileCounter): void {
    do {
      for (const piece of this.frame.pieces) {
        this.feed(piece, counter);
      }
    } while (counter.nextPass());
  }

  draw(
    canvas: Uint8Array,
    canvasWidth: number,
    box: Box,
    low: number,
    high: number,
  ): void {
    const resampler = new Resampler(this.frame.width, this.frame.height, box);
    const scale = clipScale(low, high);
    // One table for every coded source: only the codes a source holds are
    // filled in for it, and only those are looked up while drawing it.
    const shades = new Float64Array(1 << 16);
    let shaded: PixelSource | undefined;
    for (const { rect, source } of this.frame.pieces) {
      const x1 = rect.x + rect.width;
      if ("constant" in source) {
        resampler.addConstant(
          rect.x,
          x1,
          rect.y,
          rect.y + rect.height,
          shade(Math.fround(source.constant), low, scale),
        );
        continue;
      }
      const section = sectionOf(rect, source);
      if (isCoded(source.layout)) {
        const census = this.census(source);
        if (shaded !== source) {
          shaded = source;
          for (let k = 0; k < census.codes.length; k++) {
            shades[census.codes[k] as number] = shade(
              census.values[k] as number,
              low,
              scale,
            );
          }
        }
        this.reader.readCodeRows(
          source.layout,
          { plane: source.plane, section },
          (codes, start, stride, row, rows) => {
            resampler.addCodeRows(
              rect.y + row,
              rows,
              rect.x,
              x1,
              codes,
              start,
              stride,
              shades,
              !census.blank,
            );
          },
        );
      } else {
        this.reader.readFloatRows(
          source.layout,
          { plane: source.plane, section, ...this.scaling(source) },
          (values, start, stride, row, rows) => {
            resampler.addRows(
              rect.y + row,
              rows,
              rect.x,
              x1,
              values,
              start,
              stride,
              low,
              scale,
              this.finite,
            );
          },
        );
      }
    }
    resampler.paint(canvas, canvasWidth);
  }

  /**
   * Feeds one piece's values to the counter; a coded source's census stands
   * in for its pixels. With `step` > 1, a sample: every step-th row, and a
   * step-th of each count.
   */
  private feed(piece: FramePiece, counter: PercentileCounter, step = 1): void {
    const { rect, source } = piece;
    if ("constant" in source) {
      counter.addRepeated(
        source.constant,
        Math.round((rect.width * rect.height) / step),
      );
      return;
    }
    if (isCoded(source.layout)) {
      if (this.feeder.get(source) === piece) {
        const { values, counts } = this.census(source);
        for (let k = 0; k < counts.length; k++) {
          counter.addRepeated(
            values[k] as number,
            Math.round((counts[k] as number) / step),
          );
        }
      }
      return;
    }
    const section = sectionOf(rect, source);
    const { multiply, add } = this.scaling(source);
    const { layout, plane } = source;
    const sections =
      step === 1
        ? [section]
        : Array.from({ length: Math.ceil(section.height / step) }, (_, k) => ({
            ...section,
            y: section.y + k * step,
            height: 1,
          }));
    for (const part of sections) {
      if (isStreamedFloat(source)) {
        // Unscaled float32, counted by its bits as stored: no byte swap.
        this.reader.readBigEndianHalves(
          layout,
          { plane, section: part },
          (halves, start, stride, _row, rows) => {
            counter.addBigEndianRows(halves, start, stride, part.width, rows);
          },
        );
      } else {
        this.reader.readFloatRows(
          layout,
          { plane, section: part, multiply, add },
          (values, start, stride, _row, rows) => {
            counter.addRows(values, start, stride, part.width, rows);
          },
        );
      }
    }
  }

  private scaling(source: PixelSource): { multiply: number; add: number } {
    const bias = this.bias(source);
    return { multiply: source.gain, add: -bias * source.gain };
  }

  private bias(source: PixelSource): number {
    const known = this.biases.get(source);
    if (known !== undefined) {
      return known;
    }
    const { layout, plane, overscan } = source;
    if (isCoded(layout)) {
      // Counting the codes finds the bias on the way.
      this.census(source);
      return this.biases.get(source) as number;
    }
    const bias =
      overscan === undefined
        ? 0
        : biasOf(
            median(this.reader.read(layout, { plane, section: overscan }).data),
          );
    this.biases.set(source, bias);
    return bias;
  }

  /**
   * A coded source's codes, counted in one read of the rows its pieces
   * span; its overscan, in the same rows, is counted on the way and gives
   * the bias.
   */
  private census(source: PixelSource): CodeCensus {
    const known = this.censuses.get(source);
    if (known !== undefined) {
      return known;
    }
    const { layout, plane, overscan } = source;
    const { tally, overscanTally } = this;
    const areas = this.frame.pieces
      .filter((piece) => piece.source === source)
      .map((piece) => ({ rect: sectionOf(piece.rect, source), into: tally }));
    if (overscan !== undefined) {
      areas.push({ rect: overscan, into: overscanTally });
    }
    const y0 = Math.min(...areas.map((a) => a.rect.y));
    const y1 = Math.max(...areas.map((a) => a.rect.y + a.rect.height));
    this.reader.readCodeRows(
      layout,
      { plane, section: { x: 0, y: y0, width: layout.width, height: y1 - y0 } },
      (codes, start, stride, row, rows) => {
        for (const { rect, into } of areas) {
          const first = Math.max(0, rect.y - y0 - row);
          const end = Math.min(rows, rect.y + rect.height - y0 - row);
          for (let r = first; r < end; r++) {
            const from = start + r * stride + rect.x;
            countInto(into, codes, from, from + rect.width);
          }
        }
      },
    );
    let bias = 0;
    if (overscan !== undefined) {
      // The median of the overscan's physical values, as the reference takes it.
      const decode = codeDecoder(layout);
      const present = presentCodes(overscanTally);
      const ascending = present
        .filter((code) => Number.isFinite(decode(code)))
        .sort((a, b) => decode(a) - decode(b));
      const { values } = percentilesOfCounts(
        overscanTally,
        ascending,
        decode,
        [50],
      );
      bias = biasOf(values[0] as number);
      for (const code of present) {
        overscanTally[code] = 0;
      }
    }
    this.biases.set(source, bias);
    const decode = codeDecoder(layout, source.gain, -bias * source.gain);
    const present = presentCodes(tally);
    const codes = Uint16Array.from(present);
    const counts = Int32Array.from(present, (code) => tally[code] as number);
    const values = Float32Array.from(present, decode);
    for (const code of present) {
      tally[code] = 0;
    }
    const census = {
      codes,
      counts,
      values,
      blank: values.some(Number.isNaN),
    };
    this.censuses.set(source, census);
    return census;
  }
}

/** The codes counted at least once. */
function presentCodes(tally: Int32Array): number[] {
  const present: number[] = [];
  for (let code = 0; code < tally.length; code++) {
    if (tally[code] !== 0) {
      present.push(code);
    }
  }
  return present;
}

function countInto(
  counts: Int32Array,
  codes: Codes,
  from: number,
  to: number,
): void {
  for (let i = from; i < to; i++) {
    const code = codes[i] as number;
    counts[code] = (counts[code] as number) + 1;
  }
}

/** Rows in a sample of a frame's pixels (PieceStream.clipRange). */
const SAMPLE_STEP = 16;

/**
 * Unscaled float32 pixels, streamed as stored (readBigEndianHalves). Only a
 * mosaic amplifier can have a bias or gain, and those are integer images.
 */
function isStreamedFloat(source: FramePiece["source"]): boolean {
  return (
    !("constant" in source) &&
    source.layout.bitpix === -32 &&
    source.layout.bscale === 1 &&
    source.layout.bzero === 0 &&
    source.gain === 1 &&
    source.overscan === undefined
  );
}

/** The image pixels under a rectangle of the frame. */
function sectionOf(rect: Rect, source: PixelSource): Rect {
  return {
    x: rect.x + source.dx,
    y: rect.y + source.dy,
    width: rect.width,
    height: rect.height,
  };
}

function noPreview(reason: string): RenderOutcome {
  return { kind: "no-preview", reason };
}

/**
 * The reference's `ad[0].data`: the primary's data if it has any, else the
 * first science image extension (any image extension if none is named SCI).
 */
function imageToShow(structure: FitsStructure): ImageLayoutResult {
  const primary = structure.hdus[0] as Hdu;
  if (primary.randomGroups || primary.dataSize > 0) {
    return imageLayout(primary);
  }
  const extension =
    scienceImages(structure)[0] ??
    structure.hdus.find((h) => h.index > 0 && h.type === "IMAGE");
  if (extension !== undefined) {
    return imageLayout(extension);
  }
  const compressed = structure.hdus.find(
    (h) => h.header.get("ZIMAGE") === true,
  );
  if (compressed !== undefined) {
    return imageLayout(compressed);
  }
  const others = structure.hdus.slice(1).map((h) => h.type || "unnamed");
  return {
    ok: false,
    reason:
      others.length === 0
        ? "the file has no data, only a primary header"
        : `the file has no image data, only ${others.join(", ")} extension(s)`,
  };
}

/**
 * The reference's norm(): the [p, 100 - p] percentiles. When they are equal
 * (numpy would then divide by zero and the reference shows a blank figure)
 * the frame's minimum and maximum are used instead, which is what
 * matplotlib's own scaling does with the unclipped frame.
 */
export function clipRange(
  data: Float32Array,
  p: number,
): { low: number; high: number; count: number } {
  const { count, values } = percentiles(data, [p, 100 - p, 0, 100]);
  const [low, high, min, max] = values as [number, number, number, number];
  return high > low ? { low, high, count } : { low: min, high: max, count };
}
