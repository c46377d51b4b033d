/**
 * The body of a preview rendering thread (see render-thread.ts): renders the
 * files it is sent, one at a time, and posts back the 8-bit picture (its
 * buffer transferred, not copied) or the error. It never loads sharp: encoding
 * stays in the parent, so terminating a stuck thread cannot take a native
 * library down with it.
 */
import { parentPort } from "node:worker_threads";

import { FitsfleetError } from "../errors.js";
import { FitsFormatError } from "../fits/errors.js";
import { type RenderOptions, renderPreview } from "./render.js";
import type {
  RenderReply,
  RenderRequest,
  ThreadError,
} from "./thread-protocol.js";

function describe(error: unknown): ThreadError {
  if (error instanceof FitsFormatError) {
    return {
      name: error.name,
      message: error.message,
      problem: error.problem,
      context: error.context,
    };
  }
  if (error instanceof FitsfleetError) {
    return { name: error.name, message: error.message, code: error.code };
  }
  return error instanceof Error
    ? { name: error.name, message: error.message, stack: error.stack }
    : { name: "Error", message: String(error) };
}

const port = parentPort;
if (port === null) {
  throw new Error("render-worker.ts runs only as a worker thread");
}
port.on("message", (request: RenderRequest) => {
  let reply: RenderReply;
  try {
    const outcome = renderPreview(
      request.path,
      request.options as RenderOptions,
    );
    reply = { id: request.id, ok: true, outcome };
  } catch (error) {
    reply = { id: request.id, ok: false, error: describe(error) };
  }
  const transfer =
    reply.ok && reply.outcome.kind === "image"
      ? [reply.outcome.image.pixels.buffer as ArrayBuffer]
      : [];
  port.postMessage(reply, transfer);
});
