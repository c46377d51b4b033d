/**
 * Rendering a FITS file's preview picture as the reference archive does
 * (FitsStorage v3 `Previewer.render_image`, DOMAIN §4), to 8-bit greyscale:
 * - GMOS with more than one science extension: the amplifier mosaic
 *   (gmos.ts), clipped at the 5th and 95th percentiles;
 * - everything else: the primary data, or the first image extension when the
 *   primary has none, squeezed to 2-D (the first plane of a cube), clipped at
 *   the 0.3rd and 99.7th percentiles;
 * - flipped so FITS row 1 is at the bottom, fitted into the figure (640 x 480
 *   by default, matplotlib's default figure) with its aspect kept, on white.
 *
 * Synchronous and CPU-bound: run it in a worker thread (render-thread.ts) in
 * a process that must stay responsive. A file that cannot make a picture
 * (tables only, a spectrum, empty or all-NaN data) is a "no-preview" outcome
 * with the reason; a damaged file throws FitsFormatError.
 *
 * Peak memory is one Float32 copy of the frame (for a mosaic, plus one
 * amplifier's data section) and about 5 MB of accumulators for the output.
 */
import { UsageError } from "../errors.js";
import {
  FitsPixelReader,
  imageLayout,
  type ImageLayoutResult,
} from "../fits/pixels.js";
import { readHeaders } from "../fits/read.js";
import type { FitsStructure, Hdu } from "../fits/scanner.js";
import {
  buildGmosMosaic,
  type GapRule,
  isGmosMosaic,
  scienceImages,
} from "./gmos.js";
import { percentiles } from "./percentile.js";
import {
  type Box,
  drawFrame,
  fitBox,
  type Frame,
  whiteCanvas,
} from "./raster.js";

/** The reference's percentiles: norm(percentile=5) for GMOS mosaics, norm()'s default 0.3 otherwise. */
export const GMOS_PERCENTILE = 5;
export const IMAGE_PERCENTILE = 0.3;

export interface RenderOptions {
  /** Picture size in pixels; default 640 x 480, matplotlib's default figure at 100 dpi. */
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
  width: 640,
  height: 480,
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
    if (!Number.isInteger(n) || n < 1 || n > 10_000) {
      throw new UsageError(
        `preview ${key} must be a whole number of pixels from 1 to 10000; got ${n}`,
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
  const reader = new FitsPixelReader(path);
  try {
    let frame: Frame;
    let hdus: number[];
    let kind: RenderStats["kind"];
    if (isGmosMosaic(fits)) {
      const built = buildGmosMosaic(reader, fits, settings);
      if (!built.ok) {
        return noPreview(built.reason);
      }
      frame = built.mosaic.frame;
      hdus = built.mosaic.placements.map((p) => p.hdu);
      kind = "gmos-mosaic";
    } else {
      const chosen = imageToShow(fits);
      if (!chosen.ok) {
        return noPreview(chosen.reason);
      }
      const { layout } = chosen;
      frame = reader.read(layout, { plane: 0 });
      hdus = [layout.hdu];
      kind = "image";
    }
    const percentile =
      kind === "gmos-mosaic" ? GMOS_PERCENTILE : IMAGE_PERCENTILE;
    const clip = clipRange(frame.data, percentile);
    if (clip.count === 0) {
      return noPreview("every pixel is NaN, infinite or BLANK");
    }
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
    drawFrame(pixels, width, box, frame, clip.low, clip.high);
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
