/**
 * `fitsfleet rebuild dashboard` as a subprocess: it prints the token's URL
 * once and nowhere else, serves it, refuses what lacks the token, warns
 * when exposed beyond loopback, stops cleanly on SIGTERM and SIGINT, and
 * says clearly when it cannot start.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import { isLoopback, parseListen } from "../../lib/dashboard/server.js";
import { withClient } from "../../lib/db/connect.js";
import { CLI, runCli } from "../helpers/cli.js";
import { testDatabase } from "../helpers/db.js";
import { enqueueFiles, ingest } from "./helpers.js";

/** The CLI's environment without the developer's settings, and no embedded stack to find. */
function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("FITSFLEET_") && key !== "DATABASE_URL") {
      env[key] = value;
    }
  }
  env.FITSFLEET_STACK_DIR = join(tmpdir(), `ff-no-stack-${randomUUID()}`);
  return env;
}

interface Running {
  child: ChildProcess;
  url: URL;
  stdout: () => string;
  stderr: () => string;
}

async function startCli(t: TestContext, args: string[]): Promise<Running> {
  const child = spawn(
    process.execPath,
    [CLI, "rebuild", "dashboard", ...args],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: cliEnv(),
    },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
    }
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const bound = Date.now() + 60_000;
  while (!/\n/.test(out)) {
    if (child.exitCode !== null || Date.now() > bound) {
      assert.fail(`the dashboard did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const line = out.split("\n")[0]!;
  const m = /^dashboard: (http:\/\/\S+)$/.exec(line);
  assert.ok(m, `the first line is the URL: ${line}`);
  return { child, url: new URL(m[1]!), stdout: () => out, stderr: () => err };
}

describe("rebuild dashboard (CLI)", () => {
  it("prints the token's URL once, serves it, and stops cleanly on SIGTERM", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      const ids = await enqueueFiles(c, 5);
      await ingest(c, ids.slice(0, 2), "w");
    });
    const run = await startCli(t, ["--database-url", db.url]);
    assert.equal(run.url.hostname, "127.0.0.1");
    const token = run.url.searchParams.get("token")!;
    assert.ok(token.length >= 40, "a long random token");
    const bare = new URL(run.url);
    bare.search = "";
    assert.equal((await fetch(new URL("/api/snapshot", bare))).status, 401);
    const snap = (await (
      await fetch(new URL(`/api/snapshot?token=${token}`, bare))
    ).json()) as { progress: { counts: { done: number; queued: number } } };
    assert.deepEqual(
      [snap.progress.counts.done, snap.progress.counts.queued],
      [2, 3],
    );
    const page = await fetch(run.url, { redirect: "manual" });
    assert.equal(page.status, 303);
    await page.body?.cancel();
    // A 401 and a 404 later, still nothing else carries the token.
    await (await fetch(new URL("/nowhere", bare))).body?.cancel();
    await (
      await fetch(new URL(`/nowhere?token=${token}`, bare))
    ).body?.cancel();

    run.child.kill("SIGTERM");
    const [code] = (await once(run.child, "exit")) as [number | null];
    assert.equal(code, 0, run.stderr());
    assert.match(run.stderr(), /dashboard stopped/);
    const everything = run.stdout() + run.stderr();
    assert.equal(
      everything.split(token).length - 1,
      1,
      "the token appears once: in the URL line",
    );
    await assert.rejects(fetch(bare), "nothing listens any more");
  });

  it("warns when exposed beyond loopback, stops on SIGINT, and prints JSON with --json", async (t) => {
    const db = await testDatabase(t);
    const child = spawn(
      process.execPath,
      [
        CLI,
        "--json",
        "rebuild",
        "dashboard",
        "--database-url",
        db.url,
        "--listen",
        "0.0.0.0:0",
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: cliEnv() },
    );
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
      }
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const bound = Date.now() + 60_000;
    while (!out.includes("\n")) {
      assert.ok(child.exitCode === null && Date.now() < bound, err);
      await new Promise((r) => setTimeout(r, 50));
    }
    const started = JSON.parse(out.split("\n")[0]!) as {
      url: string;
      host: string;
      port: number;
    };
    assert.equal(started.host, "0.0.0.0");
    assert.ok(started.port > 0);
    assert.match(err, /reachable from other machines/);
    const res = await fetch(started.url, { redirect: "manual" });
    assert.equal(res.status, 303);
    child.kill("SIGINT");
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0, err);
  });

  it("says what is wrong with a bad --listen or an unreachable database", async () => {
    const bad = await runCli([
      "rebuild",
      "dashboard",
      "--database-url",
      "postgresql://nobody@127.0.0.1:1/none",
      "--listen",
      "here",
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--listen here: give HOST:PORT/);
    const down = await runCli([
      "rebuild",
      "dashboard",
      "--database-url",
      "postgresql://nobody:secret-pw@127.0.0.1:1/none",
    ]);
    assert.equal(down.code, 4, down.stderr);
    assert.match(down.stderr, /the dashboard cannot read the database/);
    assert.doesNotMatch(down.stderr, /secret-pw/);
    assert.equal(down.stdout, "", "no URL when it did not start");
  });

  it("parses --listen and tells loopback from the rest", () => {
    assert.deepEqual(parseListen("8080"), { host: "127.0.0.1", port: 8080 });
    assert.deepEqual(parseListen(":0"), { host: "127.0.0.1", port: 0 });
    assert.deepEqual(parseListen("0.0.0.0:80"), { host: "0.0.0.0", port: 80 });
    assert.deepEqual(parseListen("[::1]:9000"), { host: "::1", port: 9000 });
    assert.throws(() => parseListen("host:99999"), /give HOST:PORT/);
    assert.throws(() => parseListen("a:b"), /give HOST:PORT/);
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) {
      assert.equal(isLoopback(h), true, h);
    }
    for (const h of ["0.0.0.0", "::", "10.0.0.5", "192.168.1.1"]) {
      assert.equal(isLoopback(h), false, h);
    }
  });
});
