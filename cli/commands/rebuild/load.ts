/**
 * The libraries the rebuild commands run on, loaded when a command runs:
 * `rebuild … --help` then loads neither the database driver nor BullMQ.
 */
export async function rebuildLibraries() {
  const [connect, ledger, queue] = await Promise.all([
    import("../../../lib/db/connect.js"),
    import("../../../lib/rebuild/ledger.js"),
    import("../../../lib/rebuild/queue.js"),
  ]);
  return {
    withClient: connect.withClient,
    rebuildStatus: ledger.rebuildStatus,
    listFailures: ledger.listFailures,
    retryFailed: ledger.retryFailed,
    reconcile: ledger.reconcile,
    withIngestQueue: queue.withIngestQueue,
  };
}
