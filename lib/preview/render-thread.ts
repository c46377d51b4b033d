/**
 * Previews off the event loop: a pool of worker threads renders (the
 * CPU-bound part, synchronous file reads included), while this thread only
 * decompresses `.bz2` files (a child process) and encodes the JPEG (sharp, on
 * libuv's pool). A queue worker that holds locks keeps renewing them meanwhile.
 *
 * Failure stays with its file: an error thrown while rendering rejects that
 * file's promise (a FitsFormatError for a damaged file); a thread that dies
 * (out of memory, a crash) or exceeds `timeoutMs` is replaced, and only the
 * file it was rendering fails, with a PreviewThreadError.
 *
 * sharp is loaded here, in the parent, before any thread starts: on glibc its
 * libraries must not be unloaded when a thread exits (sharp's documentation),
 * and the threads never load it.
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";

import { EXIT, FitsfleetError, UsageError } from "../errors.js";
import { startModuleThread } from "../threads.js";
import {
  checkPreviewOptions,
  encodeOutcome,
  type PreviewOptions,
  type PreviewOutcome,
} from "./preview.js";
import type { RenderOptions, RenderOutcome } from "./render.js";
import { withUncompressed } from "./source.js";
import {
  fitsErrorFor,
  type RenderReply,
  type RenderRequest,
  type ThreadError,
} from "./thread-protocol.js";

export interface PreviewCallOptions extends PreviewOptions {
  /** A render taking longer fails its file and its thread is replaced; default none. */
  timeoutMs?: number;
}

export interface PreviewPoolOptions extends PreviewCallOptions {
  /** Rendering threads, started as needed; default the machine's parallelism. */
  threads?: number;
}

/** A rendering thread died or overran: that file fails, the pool carries on. */
export class PreviewThreadError extends FitsfleetError {
  constructor(message: string, context: Record<string, unknown>) {
    super("preview-thread", EXIT.failed, message, {
      suggestion:
        "the file may be too large for the memory available; try it alone with `--log-level debug`",
      context,
    });
  }
}

interface Job {
  id: number;
  path: string;
  /** The name errors give: the `.bz2` file rather than its temporary copy. */
  file: string;
  options: RenderOptions;
  timeoutMs: number | undefined;
  resolve: (outcome: RenderOutcome) => void;
  reject: (error: unknown) => void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class PreviewPool {
  private readonly defaults: PreviewPoolOptions;
  private readonly threads: number;
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closing = false;
  private running = 0;
  private drained: (() => void) | undefined;

  constructor(options: PreviewPoolOptions = {}) {
    checkCallOptions(options);
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) {
      throw new UsageError(
        `a preview pool needs a whole number of threads, at least 1; got ${threads}`,
      );
    }
    this.threads = threads;
    this.defaults = options;
  }

  /** The preview of one file (`.bz2` or not), rendered on a thread. */
  async make(
    path: string,
    options: PreviewCallOptions = {},
  ): Promise<PreviewOutcome> {
    if (this.closing) {
      throw new Error("the preview pool is closed");
    }
    const settings: PreviewCallOptions = { ...this.defaults };
    for (const [key, value] of Object.entries(options)) {
      if (value !== undefined) {
        Object.assign(settings, { [key]: value });
      }
    }
    checkCallOptions(settings);
    this.running++;
    try {
      const started = performance.now();
      let decompressMs = 0;
      const rendered = await withUncompressed(
        path,
        (uncompressed) => {
          decompressMs =
            uncompressed === path ? 0 : performance.now() - started;
          return this.render({
            path: uncompressed,
            file: path,
            options: renderOptions(settings),
            timeoutMs: settings.timeoutMs,
          });
        },
        { tempDir: settings.tempDir },
      );
      if (rendered.kind === "no-preview") {
        return rendered;
      }
      return await encodeOutcome(
        rendered.image,
        rendered.stats,
        decompressMs,
        settings,
      );
    } finally {
      this.running--;
      if (this.running === 0) {
        this.drained?.();
      }
    }
  }

  /** Waits for the files already asked for, then stops the threads. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.running > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    await Promise.all([...this.slots].map((slot) => slot.worker.terminate()));
    this.slots.clear();
  }

  private render(
    job: Omit<Job, "id" | "resolve" | "reject">,
  ): Promise<RenderOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...job, id: this.nextId++, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = [...this.slots].find((s) => s.job === undefined);
      if (slot === undefined) {
        if (this.slots.size >= this.threads) {
          return;
        }
        slot = this.spawn();
      }
      const job = this.queue.shift() as Job;
      slot.job = job;
      slot.worker.ref();
      const timeout = job.timeoutMs;
      if (timeout !== undefined) {
        const busy = slot;
        busy.timer = setTimeout(() => {
          this.retire(
            busy,
            new PreviewThreadError(
              `${job.file}: rendering the preview took longer than ${timeout} ms`,
              { file: job.file, timeoutMs: timeout },
            ),
          );
          void busy.worker.terminate();
        }, timeout);
      }
      const request: RenderRequest = {
        id: job.id,
        path: job.path,
        options: job.options,
      };
      slot.worker.postMessage(request);
    }
  }

  private spawn(): Slot {
    const worker = startModuleThread(import.meta.url, "render-worker");
    const slot: Slot = { worker, job: undefined, timer: undefined };
    this.slots.add(slot);
    worker.on("message", (reply: RenderReply) => {
      const job = slot.job;
      if (job === undefined || job.id !== reply.id) {
        return;
      }
      this.finish(slot);
      if (reply.ok) {
        job.resolve(reply.outcome);
      } else {
        job.reject(revive(reply.error, job.file));
      }
      this.dispatch();
    });
    worker.on("error", (error) => {
      this.retire(
        slot,
        new PreviewThreadError(
          `${slot.job?.file ?? "a preview thread"}: the rendering thread failed: ${error.message}`,
          { file: slot.job?.file },
        ),
      );
    });
    worker.on("exit", (code) => {
      this.retire(
        slot,
        new PreviewThreadError(
          `${slot.job?.file ?? "a preview thread"}: the rendering thread exited (code ${code})`,
          { file: slot.job?.file, exitCode: code },
        ),
      );
    });
    return slot;
  }

  private finish(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.job = undefined;
    // An idle thread must not keep the process alive.
    slot.worker.unref();
  }

  /** Takes a thread out of the pool, failing its file; a new one starts if work waits. */
  private retire(slot: Slot, error: PreviewThreadError): void {
    if (!this.slots.delete(slot)) {
      return;
    }
    const job = slot.job;
    clearTimeout(slot.timer);
    slot.job = undefined;
    job?.reject(error);
    this.dispatch();
  }
}

function checkCallOptions(options: PreviewCallOptions): void {
  checkPreviewOptions(options);
  const timeout = options.timeoutMs;
  if (timeout !== undefined && !(timeout > 0)) {
    throw new UsageError(
      `a preview timeout is a positive number of milliseconds; got ${timeout}`,
    );
  }
}

function renderOptions(options: PreviewOptions): RenderOptions {
  const { width, height, letterbox, gapRule } = options;
  return { width, height, letterbox, gapRule };
}

function revive(error: ThreadError, file: string): Error {
  if (error.problem !== undefined) {
    return fitsErrorFor(
      {
        problem: error.problem,
        message: error.message,
        context: error.context,
      },
      file,
    );
  }
  const revived = new FitsfleetError(
    error.code ?? "preview-failed",
    EXIT.failed,
    error.message,
    { context: { file } },
  );
  if (error.stack !== undefined) {
    revived.stack = error.stack;
  }
  return revived;
}
