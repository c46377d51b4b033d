/**
 * `fn` over `items` with at most `limit` calls in flight, yielding results in
 * the order of `items`. The next calls start before a result is handed over,
 * so slow steps (reading a file) overlap the consumer's work (writing rows).
 * When the consumer stops early or a call fails, the calls in flight are
 * awaited before the error or return goes on: nothing keeps running behind
 * the caller's back.
 */
export async function* orderedMap<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const pending: Promise<R>[] = [];
  let next = 0;
  const start = () => {
    const promise = fn(items[next++]!);
    // Observed here; the rejection itself reaches the caller when its turn comes.
    promise.catch(() => undefined);
    pending.push(promise);
  };
  try {
    while (next < items.length && pending.length < Math.max(1, limit)) {
      start();
    }
    while (pending.length > 0) {
      const result = await pending.shift()!;
      if (next < items.length) {
        start();
      }
      yield result;
    }
  } finally {
    await Promise.allSettled(pending);
  }
}

/** At most `limit` holders at once; the others wait in order. */
export class Semaphore {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Resolves with the release function once a place is free. */
  async acquire(): Promise<() => void> {
    if (this.held >= this.limit) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.held++;
    }
    let released = false;
    return () => {
      if (released) {
        return;
      }
      released = true;
      const next = this.waiting.shift();
      if (next === undefined) {
        this.held--;
      } else {
        next(); // the place passes straight on
      }
    };
  }
}
