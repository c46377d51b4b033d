/**
 * Redis that refuses us or is not there: commands end with exit 4 and one
 * clear line within a bounded time, and no password appears in any output.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ExternalServiceError } from "../../lib/errors.js";
import { openRedis } from "../../lib/rebuild/queue.js";
import { freePort } from "../../lib/stack/index.js";
import { testArchive } from "../helpers/archive.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";

function wrongPassword(): { url: string; password: string } {
  const url = new URL(testEnv().redisUrl);
  const password = "not-the-password-4f9a1c";
  url.password = password;
  return { url: url.toString(), password };
}

describe("Redis faults", () => {
  it("a wrong Redis password: `rebuild enqueue` and `worker ingest --empty` exit 4 with one line, and never print it", async (t) => {
    const db = await testDatabase(t);
    const archive = testArchive(t, { dumpsPerInstrument: 1 });
    const { url, password } = wrongPassword();
    const env = {
      FITSFLEET_DATABASE_URL: db.url,
      FITSFLEET_REDIS_URL: url,
      FITSFLEET_STORAGE: archive.root,
    };
    for (const args of [
      ["rebuild", "enqueue"],
      ["worker", "ingest", "--empty", "--name", "w"],
    ]) {
      const result = await runCli(args, env);
      assert.equal(result.code, 4, `${args.join(" ")}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /cannot use Redis at redis:\/\/default:\*\*\*@127\.0\.0\.1:\d+.*password.*refused/,
      );
      assert.match(result.stderr, /check the password in --redis-url/);
      assert.doesNotMatch(result.stdout + result.stderr, new RegExp(password));
      assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
    }
    // Nothing was written to the ledger by the refused enqueue.
    const { withClient } = await import("../../lib/db/connect.js");
    const rows = await withClient(db.url, async (c) =>
      Number(
        (
          await c.query<{ n: string }>(
            "SELECT count(*) AS n FROM fitsfleet.ingest_ledger",
          )
        ).rows[0]!.n,
      ),
    );
    assert.equal(rows, 0);
  });

  it("an unreachable Redis is given up on after the timeout, with the reason", async () => {
    const port = await freePort();
    await assert.rejects(
      openRedis(`redis://default:hunter22secret@127.0.0.1:${port}`, {
        timeoutMs: 1500,
      }),
      (error: unknown) =>
        error instanceof ExternalServiceError &&
        /cannot use Redis at redis:\/\/default:\*\*\*@127\.0\.0\.1:\d+\/?: connection refused/.test(
          error.message,
        ) &&
        !error.message.includes("hunter22secret"),
    );
  });
});
