/**
 * bzip2 decompression in a native child process, off our event loop. We prefer
 * `lbzip2 -n 1`: on the Gemini fixtures it decodes about twice as fast as
 * `bzip2`, and it writes large chunks where bzip2 writes 5,000 bytes at a time,
 * which costs Node one wake-up each (docs/BENCHMARKS.md). One thread per file,
 * because ingest already decompresses several files at once. `bzip2` is the
 * fallback. A truncated or corrupt stream is a FitsFormatError naming the file.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

import { Semaphore } from "../concurrency.js";
import { MissingDependencyError } from "../errors.js";
import { FitsFormatError } from "./errors.js";

interface Decompressor {
  program: string;
  args: string[];
}

const CANDIDATES: Decompressor[] = [
  { program: "lbzip2", args: ["-n", "1", "-d", "-c"] },
  { program: "bzip2", args: ["-d", "-c"] },
];

let chosen: Decompressor | undefined;

/** The first installed decompressor, found once per process. */
export function decompressor(): Decompressor {
  chosen ??= CANDIDATES.find((c) => onPath(c.program));
  if (chosen === undefined) {
    throw new MissingDependencyError("lbzip2 or bzip2", "lbzip2");
  }
  return chosen;
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * One decompressor at a time per process. bzip2 decoding is bound by memory
 * latency: eight of them time-sharing two cores took three times the CPU of
 * two (BENCHMARKS.md, ingest), and a worker runs per core. Files still
 * overlap: others are read, hashed and parsed meanwhile.
 */
const running = new Semaphore(1);

/** Decompresses `input`, yielding the decompressed bytes as they come. */
export async function* bunzip2(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  file: string | undefined,
  use: Decompressor = decompressor(),
): AsyncGenerator<Uint8Array> {
  const release = await running.acquire();
  try {
    yield* decompress(input, file, use);
  } finally {
    release();
  }
}

async function* decompress(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  file: string | undefined,
  use: Decompressor,
): AsyncGenerator<Uint8Array> {
  const { program } = use;
  const child = spawn(program, use.args, { stdio: ["pipe", "pipe", "pipe"] });
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
          // Both listeners go once either fires: a large file waits thousands of times.
          await new Promise<void>((resolve) => {
            const done = () => {
              child.stdin.off("drain", done);
              child.off("close", done);
              resolve();
            };
            child.stdin.once("drain", done);
            child.once("close", done);
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
      throw new MissingDependencyError(
        program,
        program === "lbzip2" ? "lbzip2" : "bzip2",
      );
    }
    throw error;
  }
  if (code !== 0) {
    throw bzip2Error(stderr, file);
  }
}

function bzip2Error(stderr: string, file: string | undefined): FitsFormatError {
  // Messages of bzip2 and lbzip2 respectively.
  const text = stderr.toLowerCase();
  const reason =
    text.includes("ends unexpectedly") ||
    text.includes("unexpected end of file")
      ? "the compressed data is truncated"
      : text.includes("not a bzip2 file") ||
          text.includes("not a valid bzip2 file")
        ? "it is not bzip2-compressed data"
        : text.includes("integrity") ||
            text.includes("crc") ||
            text.includes("compressed data error")
          ? "the compressed data is corrupt (integrity check failed)"
          : `decompression failed: ${stderr.trim().split("\n")[0] ?? "unknown error"}`;
  return new FitsFormatError("bzip2", `cannot decompress: ${reason}`, { file });
}
