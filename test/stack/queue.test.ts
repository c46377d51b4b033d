import assert from "node:assert/strict";
import { it } from "node:test";

import { Worker } from "bullmq";

import { testQueue, testRedis } from "../helpers/queue.js";

it("the test stack's Redis runs BullMQ jobs, each test on a queue of its own", async (t) => {
  const queue = testQueue(t);
  const other = testQueue(t);
  assert.notEqual(queue.name, other.name);
  await queue.add("square", { n: 12 });
  const results: number[] = [];
  const worker = new Worker<{ n: number }>(
    queue.name,
    (job) => {
      results.push(job.data.n * job.data.n);
      return Promise.resolve();
    },
    { connection: testRedis(t) },
  );
  await new Promise<void>((resolve, reject) => {
    worker.on("completed", () => resolve());
    worker.on("failed", (_job, error) => reject(error));
  });
  await worker.close();
  assert.deepEqual(results, [144]);
  assert.equal(await other.count(), 0);
});
