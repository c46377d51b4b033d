/**
 * `rebuild dashboard --open` hands the browser a one-time link, not the
 * token: the opener's command line (which every local user can read) holds
 * no part of the token; the link sets the cookie and redirects once, is dead
 * after that or after its lifetime, and a second use is reported.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import {
  openDashboard,
  startRebuildDashboard,
} from "../../cli/commands/rebuild/dashboard.js";
import { captureLogger } from "../../lib/logger.js";
import { CLI } from "../helpers/cli.js";
import { testDatabase } from "../helpers/db.js";
import { tempDir } from "../helpers/tmp.js";

/** A stand-in for xdg-open that writes the arguments it was started with, one a line. */
function recordingOpener(t: TestContext): { program: string; argv: string } {
  const dir = tempDir(t, "ff-opener-");
  const argv = join(dir, "argv");
  const program = join(dir, "opener.sh");
  writeFileSync(
    program,
    `#!/bin/sh\nprintf '%s\\n' "$0" "$@" > '${argv}.tmp' && mv '${argv}.tmp' '${argv}'\n`,
  );
  chmodSync(program, 0o700);
  return { program, argv };
}

/** The opener's arguments once it has run (a generous bound, not a timing claim). */
async function recorded(argvFile: string): Promise<string[]> {
  const bound = Date.now() + 30_000;
  while (!existsSync(argvFile)) {
    assert.ok(Date.now() < bound, "the opener never ran");
    await new Promise((r) => setTimeout(r, 50));
  }
  return readFileSync(argvFile, "utf8").trimEnd().split("\n");
}

function cookieOf(response: Response): string {
  return (response.headers.get("set-cookie") ?? "").split(";")[0]!;
}

describe("rebuild dashboard --open", () => {
  it("gives the opener a one-time link without the token; it works once, then is dead and a second use is reported", async (t) => {
    const db = await testDatabase(t);
    const logger = captureLogger("warn");
    const server = await startRebuildDashboard({
      databaseUrl: db.url,
      pollMs: 200,
      logger,
    });
    t.after(() => server.close());
    const opener = recordingOpener(t);

    openDashboard(server, logger, opener.program);
    const argv = await recorded(opener.argv);
    assert.equal(argv.length, 2, `the program and one URL: ${argv.join(" ")}`);
    assert.equal(argv[0], opener.program);
    const link = argv[1]!;
    assert.ok(
      link.startsWith(`${server.url}once/`),
      `a one-time link: ${link}`,
    );
    for (const arg of argv) {
      assert.ok(!arg.includes(server.token), "no token on the command line");
      assert.ok(
        !arg.includes(encodeURIComponent(server.token)),
        "not even encoded",
      );
      assert.doesNotMatch(arg, /token=/);
    }

    // The link alone opens nothing but itself.
    const before = await fetch(new URL("/api/snapshot", server.url));
    assert.equal(before.status, 401);
    await before.body?.cancel();
    // A HEAD (a link preview, a prefetch) does not spend it.
    const head = await fetch(link, { method: "HEAD", redirect: "manual" });
    assert.equal(head.status, 405);

    const first = await fetch(link, { redirect: "manual" });
    assert.equal(first.status, 303);
    assert.equal(first.headers.get("location"), "/");
    const setCookie = first.headers.get("set-cookie") ?? "";
    assert.match(setCookie, new RegExp(`^fitsfleet_dashboard_${server.port}=`));
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    await first.body?.cancel();
    const api = await fetch(new URL("/api/snapshot", server.url), {
      headers: { cookie: cookieOf(first) },
    });
    assert.equal(api.status, 200, "the cookie it set opens the dashboard");
    assert.equal(
      ((await api.json()) as { progress: { total: number } }).progress.total,
      0,
    );
    assert.equal(logger.lines.length, 0, "nothing to report yet");

    const second = await fetch(link, { redirect: "manual" });
    assert.equal(second.status, 404, "used once, dead after");
    assert.equal(second.headers.get("set-cookie"), null);
    assert.match(await second.text(), /used or has expired/);
    assert.equal(logger.lines.length, 1);
    assert.match(logger.lines[0]!, /requested again after its use/);
    assert.ok(!logger.lines[0]!.includes(server.token));
  });

  it("refuses an expired link and one it never made, and each link is its own", async (t) => {
    const db = await testDatabase(t);
    const server = await startRebuildDashboard({
      databaseUrl: db.url,
      pollMs: 200,
    });
    t.after(() => server.close());

    const short = server.oneTimeUrl(1);
    const a = server.oneTimeUrl();
    const b = server.oneTimeUrl();
    assert.notEqual(a, b);
    await new Promise((r) => setTimeout(r, 50));
    const expired = await fetch(short, { redirect: "manual" });
    assert.equal(expired.status, 404, "past its lifetime");
    assert.equal(expired.headers.get("set-cookie"), null);
    await expired.body?.cancel();

    const forged = `${server.url}once/${"A".repeat(43)}`;
    const never = await fetch(forged, { redirect: "manual" });
    assert.equal(never.status, 404, "a link it never made");
    await never.body?.cancel();

    // Spending one leaves the other live.
    const useB = await fetch(b, { redirect: "manual" });
    assert.equal(useB.status, 303);
    await useB.body?.cancel();
    const useA = await fetch(a, { redirect: "manual" });
    assert.equal(useA.status, 303);
    await useA.body?.cancel();
  });

  it("the CLI's --open starts $BROWSER with the one-time link, and prints the token only on its own URL line", async (t) => {
    const db = await testDatabase(t);
    const opener = recordingOpener(t);
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith("FITSFLEET_") && key !== "DATABASE_URL") {
        env[key] = value;
      }
    }
    env.FITSFLEET_STACK_DIR = join(tmpdir(), `ff-no-stack-${randomUUID()}`);
    env.BROWSER = opener.program;
    const child = spawn(
      process.execPath,
      [CLI, "rebuild", "dashboard", "--open", "--database-url", db.url],
      { stdio: ["ignore", "pipe", "pipe"], env },
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

    const argv = await recorded(opener.argv);
    const m = /^dashboard: (http:\/\/\S+)$/m.exec(out);
    assert.ok(m, `the URL line: ${out} ${err}`);
    const token = new URL(m[1]!).searchParams.get("token")!;
    assert.ok(token.length >= 40);
    assert.equal(argv.length, 2);
    assert.ok(!argv.join("\n").includes(token), "no token for the opener");
    const first = await fetch(argv[1]!, { redirect: "manual" });
    assert.equal(first.status, 303);
    await first.body?.cancel();
    const page = await fetch(new URL("/", argv[1]!), {
      headers: { cookie: cookieOf(first) },
    });
    assert.equal(page.status, 200);
    await page.body?.cancel();

    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0, err);
    assert.equal(
      (out + err).split(token).length - 1,
      1,
      "the token appears once: in the URL line",
    );
  });
});
