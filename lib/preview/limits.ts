/**
 * A preview's size and JPEG quality: the defaults and the bounds, for the
 * renderer, the encoder and the CLI's flags alike. This module imports
 * nothing, so parsing a command's options does not load the renderer or
 * sharp's native libraries.
 */

/**
 * The default is matplotlib's default figure (6.4 x 4.8 inches at 100 dpi),
 * the reference's look. The bounds apply to each side.
 */
export const PREVIEW_SIZE = {
  width: 640,
  height: 480,
  min: 16,
  max: 8192,
} as const;

/** Pillow's default, which the reference's matplotlib savefig(format="jpg") uses. */
export const PREVIEW_QUALITY = { default: 75, min: 1, max: 100 } as const;

/** The default size as the `--preview-size` flag spells it. */
export const DEFAULT_PREVIEW_SIZE_TEXT = `${PREVIEW_SIZE.width}x${PREVIEW_SIZE.height}`;

/** A width or height a preview may have. */
export function isPreviewSide(n: number): boolean {
  return Number.isInteger(n) && n >= PREVIEW_SIZE.min && n <= PREVIEW_SIZE.max;
}

export function isPreviewQuality(q: number): boolean {
  return (
    Number.isInteger(q) && q >= PREVIEW_QUALITY.min && q <= PREVIEW_QUALITY.max
  );
}
