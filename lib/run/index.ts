/** The coordinator's durable state for `rebuild run`: one import for the pipeline and the dashboard. */
export * from "./coordinator.js";
export * from "./events.js";
export * from "./fold.js";
export * from "./lease.js";
export * from "./recover.js";
export * from "./snapshots.js";
export * from "./types.js";
