/**
 * Per-test databases. `scripts/run-tests.ts` starts the stack and builds the
 * template; here each caller gets its own database cloned from it (or an empty
 * one), dropped again when the test ends.
 */
import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";

import { withClient } from "../../lib/db/connect.js";

export interface TestEnv {
  adminUrl: string;
  redisUrl: string;
  template: string;
}

export function testEnv(): TestEnv {
  const adminUrl = process.env.FFTEST_ADMIN_URL;
  const redisUrl = process.env.FFTEST_REDIS_URL;
  const template = process.env.FFTEST_TEMPLATE;
  if (
    adminUrl === undefined ||
    redisUrl === undefined ||
    template === undefined
  ) {
    throw new Error(
      "run the tests with `npm run test:only [files…]`, which starts the throwaway stack they need",
    );
  }
  return { adminUrl, redisUrl, template };
}

export function databaseUrl(name: string): string {
  const url = new URL(testEnv().adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export interface TestDatabase {
  name: string;
  url: string;
}

/**
 * A fresh database for one test: a clone of the template (schema applied) by
 * default, or empty with `{ empty: true }`. Dropped when the test finishes.
 */
export async function testDatabase(
  t: TestContext,
  options: { empty?: boolean } = {},
): Promise<TestDatabase> {
  const env = testEnv();
  const name = `t_${randomBytes(6).toString("hex")}`;
  const template = options.empty === true ? "template0" : env.template;
  await withClient(env.adminUrl, (c) =>
    c.query(`CREATE DATABASE ${name} TEMPLATE ${template}`),
  );
  t.after(() =>
    withClient(env.adminUrl, (c) =>
      c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    ),
  );
  return { name, url: databaseUrl(name) };
}
