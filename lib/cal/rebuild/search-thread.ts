/**
 * The body of a `rebuild calcache` search thread (see search.ts): it works
 * its batches and reports to the parent, which owns the progress, the
 * report and every decision to stop.
 */
import { parentPort, workerData } from "node:worker_threads";

import { searchBatches } from "./search.js";
import {
  errorData,
  type SearchThreadCommand,
  type SearchThreadData,
  type SearchThreadMessage,
} from "./search-protocol.js";

const port = parentPort!;
let stop = false;
let markReady: () => void = () => undefined;
const ready = new Promise<void>((resolve) => {
  markReady = resolve;
});
port.on("message", (command: SearchThreadCommand) => {
  if (command.kind === "stop") {
    stop = true;
  }
  markReady();
});
const post = (message: SearchThreadMessage) => port.postMessage(message);
try {
  await searchBatches(workerData as SearchThreadData, post, ready, () => stop);
  post({ kind: "done" });
} catch (error) {
  post({ kind: "failed", error: errorData(error) });
} finally {
  port.close();
}
