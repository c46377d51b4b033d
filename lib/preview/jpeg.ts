/**
 * JPEG encoding of a rendered preview with sharp (libvips + libjpeg-turbo,
 * prebuilt for linux-x64). Encoding runs on libuv's thread pool, so awaiting
 * it does not block the event loop.
 *
 * The picture is written as a one-channel greyscale JPEG: the reference's
 * figure is grey too, but matplotlib saves it as RGB; one channel is a third
 * of the work and a smaller file with the same look.
 */
import sharp from "sharp";

import { UsageError } from "../errors.js";
import { isPreviewQuality, PREVIEW_QUALITY } from "./limits.js";
import type { GreyImage } from "./render.js";

export function checkQuality(quality: number): number {
  if (!isPreviewQuality(quality)) {
    throw new UsageError(
      `JPEG quality must be a whole number from ${PREVIEW_QUALITY.min} to ${PREVIEW_QUALITY.max}; got ${quality}`,
    );
  }
  return quality;
}

export async function encodeJpeg(
  image: GreyImage,
  quality: number = PREVIEW_QUALITY.default,
): Promise<Buffer> {
  checkQuality(quality);
  const { width, height, pixels } = image;
  if (pixels.length !== width * height) {
    throw new RangeError(
      `a ${width} x ${height} greyscale image has ${width * height} pixels; got ${pixels.length}`,
    );
  }
  return sharp(pixels, { raw: { width, height, channels: 1 } })
    .toColourspace("b-w")
    .jpeg({ quality })
    .toBuffer();
}
