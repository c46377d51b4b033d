/**
 * The rebuild's defaults, in a module that loads nothing else, so that the
 * CLI can show them in its help without loading BullMQ or the database
 * driver.
 */

export const DEFAULT_INGEST_QUEUE = "fitsfleet-ingest";

/** Files per job: large enough that Redis holds little per file, small enough that a lost batch is cheap to redo. */
export const DEFAULT_BATCH_SIZE = 200;

/** How long a batch is retried after its first transient failure (--max-retry-time). */
export const DEFAULT_MAX_RETRY_MS = 15 * 60_000;
