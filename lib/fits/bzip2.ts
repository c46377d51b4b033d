/**
 * bzip2 decompression in a native child process (`bzip2 -dc`): measured faster
 * than JavaScript decoders (docs/BENCHMARKS.md) and off our event loop. A
 * truncated or corrupt stream is a FitsFormatError naming the file.
 */
import { spawn } from "node:child_process";

import { MissingDependencyError } from "../errors.js";
import { FitsFormatError } from "./errors.js";

export const BZIP2_PROGRAM = "bzip2";

/** Decompresses `input`, yielding the decompressed bytes as they come. */
export async function* bunzip2(
  input: AsyncIterable<Uint8Array>,
  file: string | undefined,
  program = BZIP2_PROGRAM,
): AsyncGenerator<Uint8Array> {
  const child = spawn(program, ["-dc"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const exited = new Promise<{ code: number | null; error?: Error }>(
    (resolve) => {
      child.once("error", (error) => resolve({ code: null, error }));
      child.once("close", (code) => resolve({ code }));
    },
  );
  // A consumer that stops early, or a child that dies, must not leave the writer hanging.
  child.stdin.on("error", () => undefined);
  const feeding = (async () => {
    try {
      for await (const chunk of input) {
        if (!child.stdin.write(chunk)) {
          await new Promise<void>((resolve) => {
            child.stdin.once("drain", resolve);
            child.once("close", resolve);
          });
        }
        if (child.exitCode !== null || child.killed) {
          break;
        }
      }
    } finally {
      child.stdin.end();
    }
  })();
  let finished = false;
  try {
    for await (const chunk of child.stdout) {
      yield chunk as Buffer;
    }
    finished = true;
  } finally {
    if (!finished) {
      child.kill("SIGKILL");
    }
    await feeding.catch(() => undefined);
  }
  const { code, error } = await exited;
  if (error !== undefined) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new MissingDependencyError(program, program);
    }
    throw error;
  }
  if (code !== 0) {
    throw bzip2Error(stderr, file);
  }
}

function bzip2Error(stderr: string, file: string | undefined): FitsFormatError {
  const text = stderr.toLowerCase();
  const reason = text.includes("ends unexpectedly")
    ? "the compressed data is truncated"
    : text.includes("not a bzip2 file") || text.includes("bad magic number")
      ? "it is not bzip2-compressed data"
      : text.includes("integrity") || text.includes("crc")
        ? "the compressed data is corrupt (integrity check failed)"
        : `bzip2 failed: ${stderr.trim().split("\n").pop() ?? "unknown error"}`;
  return new FitsFormatError("bzip2", `cannot decompress: ${reason}`, { file });
}
