/**
 * Rendering flags shared by `worker preview` and `worker ingest --make-previews`.
 */
import type { Command } from "commander";

import { UsageError } from "../../../lib/errors.js";
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
      "picture size in pixels (the reference's look: 640x480)",
      "640x480",
    )
    .option("--preview-quality <q>", "JPEG quality, 1 to 100", "75")
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
  if (
    size === null ||
    width < 16 ||
    height < 16 ||
    width > 8192 ||
    height > 8192
  ) {
    problems.push(
      `--preview-size ${flags.previewSize}: WIDTHxHEIGHT, each from 16 to 8192, e.g. 640x480`,
    );
  }
  const quality = Number(flags.previewQuality);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    problems.push(
      `--preview-quality ${flags.previewQuality}: a whole number from 1 to 100`,
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
