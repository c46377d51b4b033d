import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { orderedMap, Semaphore } from "../../lib/concurrency.js";

/** Resolves after the other pending callbacks have had their turns. */
const turns = (n: number) =>
  new Promise<void>((resolve) => {
    let left = n;
    const step = () => (--left <= 0 ? resolve() : setImmediate(step));
    setImmediate(step);
  });

describe("orderedMap", () => {
  it("yields in input order while later items finish first, with at most `limit` in flight", async () => {
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    const results: number[] = [];
    for await (const r of orderedMap([5, 1, 4, 2, 3, 0], 3, async (n) => {
      started.push(n);
      inFlight++;
      most = Math.max(most, inFlight);
      await turns(n);
      inFlight--;
      return n * 10;
    })) {
      results.push(r);
    }
    assert.deepEqual(results, [50, 10, 40, 20, 30, 0]);
    assert.equal(most, 3);
    assert.deepEqual(started, [5, 1, 4, 2, 3, 0]);
  });

  it("starts the next item before the consumer works on a result", async () => {
    const started: number[] = [];
    for await (const r of orderedMap([1, 2, 3], 2, async (n) => {
      started.push(n);
      return n;
    })) {
      if (r === 1) {
        assert.deepEqual(started, [1, 2, 3]);
      }
    }
  });

  it("passes a failure on in its turn, after the calls in flight have ended", async () => {
    const finished: number[] = [];
    const seen: number[] = [];
    await assert.rejects(
      async () => {
        for await (const r of orderedMap([1, 2, 3, 4], 3, async (n) => {
          await turns(n * 2);
          if (n === 2) {
            throw new Error("file 2 is broken");
          }
          finished.push(n);
          return n;
        })) {
          seen.push(r);
        }
      },
      { message: "file 2 is broken" },
    );
    assert.deepEqual(seen, [1]);
    // 3 and 4 were in flight when 2 failed: they ended before the error reached us.
    assert.deepEqual(finished.sort(), [1, 3, 4]);
  });

  it("handles no items and a limit below one", async () => {
    const none: number[] = [];
    for await (const r of orderedMap([], 4, async (n: number) => n)) {
      none.push(r);
    }
    assert.deepEqual(none, []);
    const one: number[] = [];
    for await (const r of orderedMap([7, 8], 0, async (n) => n)) {
      one.push(r);
    }
    assert.deepEqual(one, [7, 8]);
  });
});

describe("Semaphore", () => {
  it("lets `limit` holders in at once, the rest in the order they asked", async () => {
    const gate = new Semaphore(2);
    const order: string[] = [];
    let inside = 0;
    let most = 0;
    await Promise.all(
      ["a", "b", "c", "d", "e"].map(async (name, i) => {
        const release = await gate.acquire();
        order.push(name);
        inside++;
        most = Math.max(most, inside);
        await turns(5 - i);
        inside--;
        release();
        release(); // a second release changes nothing
      }),
    );
    assert.equal(most, 2);
    assert.deepEqual(order, ["a", "b", "c", "d", "e"]);
    // Every place came back: two more enter at once.
    const [x, y] = await Promise.all([gate.acquire(), gate.acquire()]);
    x();
    y();
  });
});
