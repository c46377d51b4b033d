import type { AnyClient } from "../../db/connect.js";

/**
 * Works through `items` in order on every client at once, each client
 * taking the next item when it is free. After a failure no new item is
 * started, and every client's current item ends before the first failure
 * is thrown, so none is still writing when the caller cleans up.
 */
export async function eachOn<T>(
  clients: readonly AnyClient[],
  items: readonly T[],
  work: (client: AnyClient, item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const settled = await Promise.allSettled(
    clients.slice(0, Math.max(1, items.length)).map(async (client) => {
      for (;;) {
        if (failed || next >= items.length) {
          return;
        }
        const item = items[next++]!;
        try {
          await work(client, item);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    }),
  );
  const failure = settled.find((s) => s.status === "rejected");
  if (failure !== undefined) {
    throw failure.reason;
  }
}
