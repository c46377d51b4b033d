/** What the rebuild and worker commands share: the queue's name and where files live. */
import { resolve } from "node:path";

import type { Config } from "../../../lib/config.js";
import { ConfigError } from "../../../lib/errors.js";
import { DEFAULT_INGEST_QUEUE } from "../../../lib/rebuild/defaults.js";

export const QUEUE_OPTION = [
  "--queue <name>",
  "the work queue's name in Redis (one per rebuild you run side by side)",
  DEFAULT_INGEST_QUEUE,
] as const;

/** The configured storage, with a local directory made absolute (workers may run elsewhere). */
export function storageLocation(config: Config): string {
  if (config.storage === undefined) {
    throw new ConfigError([
      "storage: not set; give --storage DIR or --storage s3://bucket/prefix, or set FITSFLEET_STORAGE",
    ]);
  }
  return config.storage.startsWith("s3://")
    ? config.storage.replace(/\/+$/, "")
    : resolve(config.storage);
}
