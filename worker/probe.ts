/**
 * `worker ingest --startup-probe`: what a worker does before its first
 * batch, then an exit. The CLI loads the worker's modules (BullMQ, pg, the
 * FITS and preview code) as a real start does; this opens the database and
 * Redis connections it would open, each once. `rebuild plan` times it
 * (lib/run/plan.ts localStartup) to price a local fleet's start-up.
 */
import { withClient } from "../lib/db/connect.js";
import { openRedis } from "../lib/rebuild/queue.js";

export interface StartupProbeResult {
  /** Whether a database was configured and answered. */
  database: boolean;
  redis: boolean;
}

export async function probeWorkerStartup(urls: {
  databaseUrl?: string;
  redisUrl?: string;
}): Promise<StartupProbeResult> {
  // Both at once, as a worker's pool and queue connections come up together.
  const [database, redis] = await Promise.all([
    urls.databaseUrl === undefined
      ? false
      : withClient(
          urls.databaseUrl,
          (c) => c.query("SELECT 1").then(() => true),
          { applicationName: "fitsfleet worker startup probe" },
        ),
    urls.redisUrl === undefined
      ? false
      : openRedis(urls.redisUrl, { timeoutMs: 10_000 }).then(async (r) => {
          try {
            await r.ping();
            return true;
          } finally {
            r.disconnect();
          }
        }),
  ]);
  return { database, redis };
}
