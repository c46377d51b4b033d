/**
 * The upgrade's scratch folders (`fitsfleet-dump-*`, `fitsfleet-s3-dump-*`)
 * never outlive the command: not after a failed download, not after SIGTERM,
 * and a folder whose process was killed outright is swept by the next start.
 * Each CLI run gets a TMPDIR of its own, so other tests' folders never count.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  createPreviousVersionDatabase,
  dumpDatabase,
} from "../../fixtures/previous-version.js";
import { connect, withClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import { packageRoot } from "../../lib/paths.js";
import { OWNER_FILE, STALE_AFTER_MS } from "../../lib/upgrade/workdir.js";
import { CLI, runCli } from "../helpers/cli.js";
import { testDatabase } from "../helpers/db.js";
import { testS3 } from "../helpers/s3.js";
import { tempDir } from "../helpers/tmp.js";

const MAPPING = join(packageRoot(), "mappings", "fitsstorage-v2-to-v3.json");

const scratch = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.startsWith("fitsfleet-"))
    .sort();

describe("upgrade scratch folders", () => {
  it("a failed S3 download leaves no folder behind", async (t) => {
    const s3 = await testS3(t);
    const tmp = tempDir(t);
    const target = await testDatabase(t);
    const cli = await runCli(
      [
        "--database-url",
        target.url,
        "upgrade",
        "plan",
        "--from",
        `s3://${s3.bucket}/backups/nothing.dump`,
      ],
      { ...s3.env, TMPDIR: tmp },
    );
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /no such object or prefix/);
    assert.deepEqual(scratch(tmp), []);
  });

  it("the next start sweeps a folder whose process is gone, and keeps a live process's and a fresh one", async (t) => {
    const tmp = tempDir(t);
    // A process that has exited: its pid is not alive.
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    assert.ok(gone !== undefined && gone > 0);
    const old = (Date.now() - 2 * STALE_AFTER_MS) / 1000;
    const folder = (name: string, pid: number, mtime?: number) => {
      const path = join(tmp, name);
      mkdirSync(path);
      writeFileSync(join(path, OWNER_FILE), `${pid}\n`);
      writeFileSync(join(path, "schema.list"), "1; 0 0 TABLE public users\n");
      if (mtime !== undefined) {
        utimesSync(path, mtime, mtime);
      }
    };
    folder("fitsfleet-dump-gone", gone, old);
    folder("fitsfleet-s3-dump-gone", gone, old);
    folder("fitsfleet-dump-live", process.pid, old);
    folder("fitsfleet-dump-fresh", gone);
    mkdirSync(join(tmp, "fitsfleet-unrelated"));
    utimesSync(join(tmp, "fitsfleet-unrelated"), old, old);

    const cli = await runCli(
      [
        "--database-url",
        "postgres://nobody@127.0.0.1:9/none",
        "upgrade",
        "plan",
        "--from",
        join(tmp, "missing.dump"),
      ],
      { TMPDIR: tmp },
    );
    assert.equal(cli.code, 2, cli.stderr);
    assert.deepEqual(scratch(tmp), [
      "fitsfleet-dump-fresh",
      "fitsfleet-dump-live",
      "fitsfleet-unrelated",
    ]);
  });

  it("SIGTERM in the middle of migrate-tables removes the dump's scratch folder (exit 130)", async (t) => {
    const previous = await testDatabase(t, { empty: true });
    await withClient(previous.url, (c) =>
      createPreviousVersionDatabase(c, { usagelogRows: 300, seed: 3 }),
    );
    const dump = join(tempDir(t), "v2.dump");
    await dumpDatabase(previous.url, dump, "custom");
    const target = await testDatabase(t);
    const tmp = tempDir(t);

    // A writer in flight holds the command at its lock, after the dump's
    // catalog was read into the scratch folder: a fixed point to stop it at.
    const writer = await connect(target.url);
    t.after(() => writer.end().catch(() => undefined));
    await writer.query("BEGIN");
    await writer.query("INSERT INTO users (username) VALUES ('in-flight')");

    const env: Record<string, string | undefined> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith("FITSFLEET_") && !key.startsWith("FFTEST_")) {
        env[key] = value;
      }
    }
    env.TMPDIR = tmp;
    env.FITSFLEET_STACK_DIR = join(tmpdir(), `ff-no-stack-${randomUUID()}`);
    const child = spawn(
      process.execPath,
      [
        CLI,
        "--database-url",
        target.url,
        "upgrade",
        "migrate-tables",
        "--from",
        dump,
        "--mapping",
        MAPPING,
      ],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => resolve(code)),
    );
    await withClient(target.url, async (c) => {
      for (;;) {
        const { rows } = await c.query(
          `SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'
              AND application_name = 'fitsfleet upgrade (target)'`,
        );
        if (rows.length > 0) {
          return;
        }
        await sleep(20);
      }
    });
    const during = scratch(tmp);
    assert.equal(during.length, 1, during.join(", "));
    assert.match(during[0]!, /^fitsfleet-dump-/);

    child.kill("SIGTERM");
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /interrupted by SIGTERM/);
    assert.deepEqual(scratch(tmp), []);
    await writer.query("ROLLBACK");
  });
});
