/**
 * A worker that starts while its database is down (a restart, a failover)
 * waits for it, with the same capped backoff as batches, for at most the
 * retry time; then it exits with the connection error (exit 4).
 */
import { isTransient } from "../lib/errors.js";
import { sleep } from "../lib/exec.js";
import { retryDelayMs } from "../lib/rebuild/queue.js";
import type { WorkerRuntime } from "./runtime.js";

export async function waitForDatabase(
  rt: WorkerRuntime,
  maxRetryMs: number,
): Promise<void> {
  const first = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      await rt.db.withClient((c) => c.query("SELECT 1"));
      if (attempt > 1) {
        rt.logger.info("database reachable", { worker: rt.name });
      }
      return;
    } catch (error) {
      const left = first + maxRetryMs - Date.now();
      if (!isTransient(error) || left <= 0 || rt.stopping.aborted) {
        throw error;
      }
      if (attempt === 1) {
        rt.logger.warn("database unreachable; waiting for it", {
          worker: rt.name,
          error: (error as Error).message,
        });
      }
      await sleep(Math.min(retryDelayMs(attempt), left), rt.stopping);
    }
  }
}
