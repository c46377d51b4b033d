/**
 * Every advisory-lock key fitsfleet takes, in one place, so that two
 * purposes never share a key by accident. Keys are bigints (as text, for
 * pg's parameter handling) or, for per-row locks, a class in the two-int
 * form `pg_advisory_xact_lock(class, id)`.
 */

/** `db init`: one migration runner at a time. */
export const MIGRATION_LOCK_KEY = "7379557503411709285";

/** `upgrade migrate-tables`: one load into a database at a time. */
export const MIGRATE_TABLES_LOCK_KEY = "7379557503411709286";

/** Seed of `hashtextextended(name, seed)`: two deliveries of one file name take turns. */
export const FILE_NAME_LOCK_SEED = "7379557503";

/** Class of the per-diskfile lock on `preview` rows (that table has no unique key to upsert on). */
export const PREVIEW_ROWS_LOCK_CLASS = 7379557;

/** Class of the session lock a fleet's launcher holds (`pg_advisory_lock(class, hashtext(name))`): `fleet sweep` leaves a launching fleet alone while it is held. */
export const FLEET_LAUNCH_LOCK_CLASS = 7379558;

/**
 * Class of the shared transaction lock an append to a run's event log holds
 * (`pg_advisory_xact_lock_shared(class, hashtext(run))`): appends never wait
 * for each other, but a reader finds in pg_locks which transactions may
 * still commit events of that run (lib/run/events.ts).
 */
export const RUN_APPEND_LOCK_CLASS = 7379559;

/** Class of the per-frame lock (`pg_advisory_xact_lock(class, obs_hid)`) held while a frame's `calcache` rows are evaluated and rewritten. */
export const CALCACHE_FRAME_LOCK_CLASS = 7379560;

/** Class of the session lock a rollcall holds on its scope (`pg_advisory_lock(class, hashtext(scope))`): one run of a scope at a time. */
export const ROLLCALL_LOCK_CLASS = 7379561;

/** `summit seed-historic`: one seeding of a database at a time. */
export const SUMMIT_SEED_LOCK_KEY = "7379557503411709287";

/** `rebuild run`: the session lock of the one run acting on a database (its holder's application_name names the run). */
export const RUN_LOCK_KEY = "7379557503411709288";

/** `rebuild calcache`: one rebuild of the cache at a time (a session lock). */
export const CALCACHE_REBUILD_LOCK_KEY = "7379557503411709290";

/**
 * The calcache writers' gate: `worker calcache` holds it shared for each
 * batch's transaction (`pg_try_advisory_xact_lock_shared`), `rebuild
 * calcache` exclusively for its whole run (a session lock, taken blocking so
 * that it waits for the batches in flight). So no worker writes a frame's
 * rows while a rebuild computes rows it will put in place of them.
 */
export const CALCACHE_WRITERS_GATE_KEY = "7379557503411709291";
