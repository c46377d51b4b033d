/**
 * bzip2 decompression in a native child process, off our event loop. We prefer
 * `lbzip2 -n 1`: on the Gemini fixtures it decodes about twice as fast as
 * `bzip2`, and it writes large chunks where bzip2 writes 5,000 bytes at a time,
 * which costs Node one wake-up each (docs/BENCHMARKS.md). One thread per file,
 * because ingest already decompresses several files at once. `bzip2` is the
 * fallback. A truncated or corrupt stream is a FitsFormatError naming the file.
 *
 * Two ways to take the output. `bunzip2` yields chunks the caller may keep
 * (a copy being written to disk holds them a while). `bunzip2Each` hands each
 * piece to a synchronous callback and reads the next one into the same
 * memory: a file decompressing to 10 MB otherwise costs 10 MB of fresh 64 KB
 * buffers, whose first touch is a page fault each, and that was most of the
 * system time of checksumming a highly compressed file (docs/BENCHMARKS.md).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
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

type Input = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Decompresses `input`, yielding the decompressed bytes as they come; the caller owns each chunk. */
export async function* bunzip2(
  input: Input,
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

/**
 * Decompresses `input`, calling `each` with every piece of the output in
 * order. A piece is valid only during its call: the next read reuses its
 * memory. Resolves once the decompressor has exited cleanly; a corrupt stream
 * rejects even when all its pieces were handed over first. If `each` throws,
 * the decompressor is stopped and the error is the rejection.
 */
export async function bunzip2Each(
  input: Input,
  file: string | undefined,
  each: (piece: Uint8Array) => void,
  use: Decompressor = decompressor(),
): Promise<void> {
  const release = await running.acquire();
  try {
    await decompressEach(input, file, each, use);
  } finally {
    release();
  }
}

interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; error?: Error }>;
  feeding: Promise<void>;
  stderr: () => string;
}

function start(
  input: Input,
  use: Decompressor,
  stdout: "pipe" | Socket,
): Running {
  const child = spawn(use.program, use.args, {
    stdio: ["pipe", stdout, "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const exited = new Promise<{ code: number | null; error?: Error }>(
    (resolve) => {
      child.once("error", (error) => resolve({ code: null, error }));
      child.once("close", (code) => resolve({ code }));
    },
  );
  const stdin = child.stdin!;
  // A consumer that stops early, or a child that dies, must not leave the writer hanging.
  stdin.on("error", () => undefined);
  const feeding = (async () => {
    try {
      for await (const chunk of input) {
        if (!stdin.write(chunk)) {
          // Both listeners go once either fires: a large file waits thousands of times.
          await new Promise<void>((resolve) => {
            const done = () => {
              stdin.off("drain", done);
              child.off("close", done);
              resolve();
            };
            stdin.once("drain", done);
            child.once("close", done);
          });
        }
        if (child.exitCode !== null || child.killed) {
          break;
        }
      }
    } finally {
      stdin.end();
    }
  })();
  return { child, exited, feeding, stderr: () => stderr };
}

async function finish(
  { exited, feeding, stderr }: Running,
  use: Decompressor,
  file: string | undefined,
): Promise<void> {
  await feeding.catch(() => undefined);
  const { code, error } = await exited;
  if (error !== undefined) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new MissingDependencyError(
        use.program,
        use.program === "lbzip2" ? "lbzip2" : "bzip2",
      );
    }
    throw error;
  }
  if (code !== 0) {
    throw bzip2Error(stderr(), file);
  }
}

async function* decompress(
  input: Input,
  file: string | undefined,
  use: Decompressor,
): AsyncGenerator<Uint8Array> {
  const run = start(input, use, "pipe");
  let finished = false;
  try {
    for await (const chunk of run.child.stdout!) {
      yield chunk as Buffer;
    }
    finished = true;
  } finally {
    if (!finished) {
      run.child.kill("SIGKILL");
    }
    await run.feeding.catch(() => undefined);
  }
  await finish(run, use, file);
}

/**
 * Reads of the child's output go into one buffer this large. A socket holds
 * about 200 KB, so reads come in up to that; Node's own stream reads 64 KB.
 */
const READ_BUFFER = 1024 * 1024;

async function decompressEach(
  input: Input,
  file: string | undefined,
  each: (piece: Uint8Array) => void,
  use: Decompressor,
): Promise<void> {
  let failure: { error: unknown } | undefined;
  let run: Running | undefined;
  const buffer = Buffer.allocUnsafe(READ_BUFFER);
  const { reader, writer } = await socketPair({
    buffer,
    callback: (n, into) => {
      if (failure !== undefined) {
        return false;
      }
      try {
        each(into.subarray(0, n));
        return true;
      } catch (error) {
        failure = { error };
        run?.child.kill("SIGKILL");
        reader.destroy();
        return false;
      }
    },
  });
  const drained = new Promise<Error | undefined>((resolve) => {
    let readError: Error | undefined;
    reader.on("error", (error) => (readError = error));
    reader.once("close", () => resolve(readError));
  });
  try {
    run = start(input, use, writer);
  } catch (error) {
    reader.destroy();
    throw error;
  } finally {
    // The child has its own copy of the writing end; ours must close, or the
    // reader never sees the end of the output.
    writer.destroy();
  }
  const readError = await drained;
  if (failure !== undefined) {
    await run.feeding.catch(() => undefined);
    await run.exited;
    throw failure.error;
  }
  await finish(run, use, file);
  if (readError !== undefined) {
    throw readError;
  }
}

let pairs = 0;

/**
 * A connected pair of local stream sockets: `reader` reads into the given
 * memory (net's `onread`), `writer` is for a child process's stdout. Node
 * creates no pipe whose reads we control, so each pair gets a listener of its
 * own for one connection: nothing to match up, gone once connected.
 */
async function socketPair(onread: {
  buffer: Uint8Array;
  callback: (n: number, buffer: Uint8Array) => boolean;
}): Promise<{ reader: Socket; writer: Socket }> {
  const name = `fitsfleet-bzip2-${process.pid}-${pairs++}`;
  // Linux's abstract namespace leaves no file behind, whatever happens.
  const path =
    process.platform === "linux" ? `\0${name}` : join(tmpdir(), `${name}.sock`);
  const server = createServer({ pauseOnConnect: true });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, resolve);
    });
    const accepted = new Promise<Socket>((resolve, reject) => {
      server.once("connection", resolve);
      server.once("error", reject);
    });
    const reader = connect({ path, onread });
    const connected = new Promise<void>((resolve, reject) => {
      reader.once("connect", resolve);
      reader.once("error", reject);
    });
    const [writer] = await Promise.all([accepted, connected]);
    return { reader, writer };
  } finally {
    server.close();
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
