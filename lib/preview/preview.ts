/**
 * A preview in this process: decompress if needed, render, encode. For
 * callers that may block their event loop (tests, one-off commands); workers
 * use the thread pool in render-thread.ts, which returns the same outcome.
 */
import { FitsFormatError } from "../fits/errors.js";
import { checkQuality, encodeJpeg } from "./jpeg.js";
import { PREVIEW_QUALITY } from "./limits.js";
import {
  type GreyImage,
  type RenderOptions,
  renderPreview,
  renderSettings,
  type RenderStats,
} from "./render.js";
import { withUncompressed } from "./source.js";
import { fitsErrorFor } from "./thread-protocol.js";

export interface PreviewOptions extends RenderOptions {
  /** JPEG quality; default and bounds in PREVIEW_QUALITY. */
  quality?: number;
  /** Where a `.bz2` file is decompressed; default the system's temporary folder. */
  tempDir?: string;
}

export interface PreviewStats extends RenderStats {
  /** Decompressing a `.bz2` file; 0 for an uncompressed one. */
  decompressMs: number;
  encodeMs: number;
  jpegBytes: number;
}

export type PreviewOutcome =
  | {
      kind: "preview";
      jpeg: Buffer;
      width: number;
      height: number;
      stats: PreviewStats;
    }
  | { kind: "no-preview"; reason: string };

/** Checks every option up front, so a bad setting fails before any file is read. */
export function checkPreviewOptions(options: PreviewOptions): void {
  renderSettings(options);
  checkQuality(options.quality ?? PREVIEW_QUALITY.default);
}

export async function makePreview(
  path: string,
  options: PreviewOptions = {},
): Promise<PreviewOutcome> {
  checkPreviewOptions(options);
  const started = performance.now();
  let decompressMs = 0;
  const rendered = await withUncompressed(
    path,
    (uncompressed) => {
      if (uncompressed === path) {
        return renderPreview(path, options);
      }
      decompressMs = performance.now() - started;
      try {
        return renderPreview(uncompressed, options);
      } catch (error) {
        throw error instanceof FitsFormatError
          ? fitsErrorFor(error, path)
          : error;
      }
    },
    { tempDir: options.tempDir },
  );
  if (rendered.kind === "no-preview") {
    return rendered;
  }
  return encodeOutcome(rendered.image, rendered.stats, decompressMs, options);
}

/** The JPEG of a rendered image, with the stats of every step. */
export async function encodeOutcome(
  image: GreyImage,
  stats: RenderStats,
  decompressMs: number,
  options: PreviewOptions,
): Promise<PreviewOutcome> {
  const started = performance.now();
  const jpeg = await encodeJpeg(
    image,
    options.quality ?? PREVIEW_QUALITY.default,
  );
  return {
    kind: "preview",
    jpeg,
    width: image.width,
    height: image.height,
    stats: {
      ...stats,
      decompressMs,
      encodeMs: performance.now() - started,
      jpegBytes: jpeg.length,
    },
  };
}
