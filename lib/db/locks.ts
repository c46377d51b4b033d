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

/** `rebuild run`: the session lock of the one run acting on a database (its holder's application_name names the run). */
export const RUN_LOCK_KEY = "7379557503411709287";
