/**
 * Ctrl-C and SIGTERM. By default they stop the command at once (exit 130).
 * A command that can stop cleanly (a worker finishing the batches in hand)
 * registers a handler: the first signal asks it to stop, a second one stops
 * the process at once.
 */
const handlers = new Set<() => void>();

/** Registers a clean stop for the next interrupt; returns the unregister function. */
export function onInterrupt(handler: () => void): () => void {
  handlers.add(handler);
  return () => handlers.delete(handler);
}

/** Runs and clears the registered handlers; false when there were none. */
export function interruptGracefully(): boolean {
  if (handlers.size === 0) {
    return false;
  }
  const pending = [...handlers];
  handlers.clear();
  for (const handler of pending) {
    handler();
  }
  return true;
}
