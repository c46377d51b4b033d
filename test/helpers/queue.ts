/**
 * Queues for tests: every test gets a queue name of its own on the shared test
 * Redis, and the queue is obliterated when the test ends.
 */
import { randomUUID } from "node:crypto";
import type { TestContext } from "node:test";

import { Queue } from "bullmq";
import { Redis } from "ioredis";

import { testEnv } from "./db.js";

export function uniqueQueueName(prefix = "test"): string {
  return `${prefix}-${randomUUID()}`;
}

/** A connection to the test Redis with `maxRetriesPerRequest: null`, as BullMQ workers require. */
export function testRedis(t: Pick<TestContext, "after">): Redis {
  const redis = new Redis(testEnv().redisUrl, { maxRetriesPerRequest: null });
  t.after(() => redis.quit().then(() => undefined));
  return redis;
}

export function testQueue(
  t: Pick<TestContext, "after">,
  prefix?: string,
): Queue {
  const connection = new Redis(testEnv().redisUrl, {
    maxRetriesPerRequest: null,
  });
  const queue = new Queue(uniqueQueueName(prefix), { connection });
  // One hook, in this order: with maxRetriesPerRequest null, a command on a
  // connection that is already closed would wait forever.
  t.after(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await connection.quit();
  });
  return queue;
}
