/**
 * Rendering flags shared by `worker preview` and `worker ingest --make-previews`.
 */
import type { Command } from "commander";

import { UsageError } from "../../../lib/errors.js";
import {
  DEFAULT_PREVIEW_SIZE_TEXT,
  isPreviewQuality,
  isPreviewSide,
  PREVIEW_QUALITY,
  PREVIEW_SIZE,
} from "../../../lib/preview/limits.js";
import type { PreviewPoolOptions } from "../../../lib/preview/render-thread.js";

export interface PreviewFlags {
  previewSize: string;
  previewQuality: string;
  previewThreads?: string;
  stagingDir?: string;
}

export function addPreviewOptions(command: Command): Command {
  return command
    .option(
      "--preview-size <WxH>",
      `picture size in pixels (the reference's look: ${DEFAULT_PREVIEW_SIZE_TEXT})`,
      DEFAULT_PREVIEW_SIZE_TEXT,
    )
    .option(
      "--preview-quality <q>",
      `JPEG quality, ${PREVIEW_QUALITY.min} to ${PREVIEW_QUALITY.max}`,
      String(PREVIEW_QUALITY.default),
    )
    .option(
      "--preview-threads <n>",
      "rendering threads (default: one per core)",
    )
    .option(
      "--staging-dir <dir>",
      "where files from S3 are copied for rendering (default: the temporary folder)",
    );
}

/** The pool settings the flags ask for; every bad flag is named at once. */
export function previewPoolOptions(flags: PreviewFlags): PreviewPoolOptions {
  const problems: string[] = [];
  const size = /^(\d{1,5})x(\d{1,5})$/.exec(flags.previewSize);
  const width = Number(size?.[1]);
  const height = Number(size?.[2]);
  if (size === null || !isPreviewSide(width) || !isPreviewSide(height)) {
    problems.push(
      `--preview-size ${flags.previewSize}: WIDTHxHEIGHT, each from ${PREVIEW_SIZE.min} to ${PREVIEW_SIZE.max}, e.g. ${DEFAULT_PREVIEW_SIZE_TEXT}`,
    );
  }
  const quality = Number(flags.previewQuality);
  if (!isPreviewQuality(quality)) {
    problems.push(
      `--preview-quality ${flags.previewQuality}: a whole number from ${PREVIEW_QUALITY.min} to ${PREVIEW_QUALITY.max}`,
    );
  }
  const threads =
    flags.previewThreads === undefined
      ? undefined
      : Number(flags.previewThreads);
  if (
    threads !== undefined &&
    (!Number.isInteger(threads) || threads < 1 || threads > 256)
  ) {
    problems.push(
      `--preview-threads ${flags.previewThreads}: a whole number from 1 to 256`,
    );
  }
  if (problems.length > 0) {
    throw new UsageError(problems.join("; "));
  }
  return { width, height, quality, threads };
}
