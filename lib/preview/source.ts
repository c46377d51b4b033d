/**
 * Rendering reads pixels by offset, so it needs an uncompressed file on disk.
 * A `.bz2` file is decompressed (by lbzip2/bzip2 in a child process) into a
 * private temporary folder that is removed afterwards, whatever happens.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

import { bunzip2 } from "../fits/bzip2.js";
import { isCompressedName } from "../fits/read.js";

export async function withUncompressed<T>(
  path: string,
  use: (uncompressed: string) => Promise<T> | T,
  options: { tempDir?: string | undefined } = {},
): Promise<T> {
  if (!isCompressedName(path)) {
    return use(path);
  }
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), "ff-preview-"));
  try {
    const target = join(dir, basename(path).replace(/\.bz2$/i, ""));
    await pipeline(
      Readable.from(bunzip2(createReadStream(path), path)),
      createWriteStream(target),
    );
    return await use(target);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
