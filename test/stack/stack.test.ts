import assert from "node:assert/strict";
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { Redis } from "ioredis";

import { connect, withClient } from "../../lib/db/connect.js";
import {
  ExternalServiceError,
  MissingDependencyError,
  PreconditionError,
} from "../../lib/errors.js";
import { processAlive } from "../../lib/exec.js";
import { postgresBinDir } from "../../lib/programs.js";
import {
  runningStackUrls,
  stackDown,
  type StackState,
  stackStatus,
  stackUp,
  stackUrls,
} from "../../lib/stack/index.js";
import { tempDir } from "../helpers/tmp.js";

const mode = (path: string) => statSync(path).mode & 0o777;

describe("embedded stack", () => {
  let dir = "";
  let state: StackState;

  before(async () => {
    // removed by stack down --purge in after()
    dir = mkdtempSync(join(tmpdir(), "ff-stack-"));
    const result = await stackUp(dir);
    assert.equal(result.created, true);
    state = result.state;
  });
  after(() => stackDown(dir, { purge: true }));

  it("runs both servers on loopback ports with private state files", async () => {
    const status = stackStatus(dir);
    assert.equal(status.postgres?.running, true);
    assert.equal(status.redis?.running, true);
    assert.equal(mode(dir), 0o711);
    assert.equal(mode(join(dir, "stack.json")), 0o600);
    assert.equal(mode(join(dir, "pgpass")), 0o600);
    const urls = stackUrls(state);
    assert.match(
      urls.databaseUrl,
      /^postgres:\/\/fitsfleet:[^@]+@127\.0\.0\.1:\d+\/fitsfleet$/,
    );
    const listen = await withClient(urls.databaseUrl, (c) =>
      c.query<{ listen_addresses: string }>("SHOW listen_addresses"),
    );
    assert.equal(listen.rows[0]?.listen_addresses, "127.0.0.1");
  });

  it("configures Redis as BullMQ needs it and requires its password", async () => {
    const redis = new Redis(stackUrls(state).redisUrl, { lazyConnect: true });
    await redis.connect();
    try {
      assert.deepEqual(await redis.config("GET", "maxmemory-policy"), [
        "maxmemory-policy",
        "noeviction",
      ]);
      assert.deepEqual(await redis.config("GET", "appendonly"), [
        "appendonly",
        "yes",
      ]);
      assert.deepEqual(await redis.config("GET", "bind"), [
        "bind",
        "127.0.0.1",
      ]);
    } finally {
      redis.disconnect();
    }
    // Without the password every command is refused.
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = createConnection(
        { host: "127.0.0.1", port: state.redis.port },
        () => socket.write("PING\r\n"),
      );
      socket.once("data", (data) => {
        resolve(data.toString());
        socket.destroy();
      });
      socket.once("error", reject);
    });
    assert.match(reply, /^-NOAUTH/);
  });

  it("rejects a wrong PostgreSQL password with a clear, redacted error", async () => {
    const url = `postgres://fitsfleet:wrong-password-123@127.0.0.1:${state.postgres.port}/fitsfleet`;
    await assert.rejects(connect(url), (e: unknown) => {
      assert.ok(e instanceof ExternalServiceError);
      assert.match(e.message, /password authentication failed/);
      assert.doesNotMatch(e.message, /wrong-password-123/);
      return true;
    });
  });

  it("is idempotent, and restarts on its old data after stack down", async () => {
    const again = await stackUp(dir);
    assert.equal(again.created, false);
    assert.deepEqual(again.started, []);

    await withClient(stackUrls(state).databaseUrl, (c) =>
      c.query(
        "CREATE TABLE survives_restart (id int); INSERT INTO survives_restart VALUES (42)",
      ),
    );
    const pids = stackStatus(dir);
    const down = await stackDown(dir);
    assert.deepEqual(down.stopped.sort(), ["postgres", "redis"]);
    assert.equal(processAlive(pids.postgres?.pid ?? 0), false);
    assert.equal(processAlive(pids.redis?.pid ?? 0), false);
    assert.equal(runningStackUrls(dir), undefined);
    assert.deepEqual(
      (await stackDown(dir)).stopped,
      [],
      "a second stack down is a no-op",
    );

    const restarted = await stackUp(dir);
    assert.deepEqual(restarted.started, ["postgres", "redis"]);
    const rows = await withClient(stackUrls(restarted.state).databaseUrl, (c) =>
      c.query<{ id: number }>("SELECT id FROM survives_restart"),
    );
    assert.deepEqual(rows.rows, [{ id: 42 }]);
    state = restarted.state;
  });

  it("deletes everything with --purge", async (t) => {
    const purgeDir = tempDir(t, "ff-purge-");
    await stackUp(purgeDir);
    const result = await stackDown(purgeDir, { purge: true });
    assert.equal(result.purged, true);
    assert.equal(existsSync(purgeDir), false);
  });
});

describe("stack folder", () => {
  // Only root runs the server as another user; then that user must reach the folder.
  it(
    "refuses, before starting anything, a folder the postgres user cannot enter",
    { skip: process.getuid?.() !== 0 ? "only as root" : false },
    async (t) => {
      const privateParent = tempDir(t, "ff-private-");
      const dir = join(privateParent, "stack");
      await assert.rejects(
        stackUp(dir),
        (e: unknown) =>
          e instanceof PreconditionError &&
          /user postgres and cannot write to/.test(e.message) &&
          /--stack-dir/.test(e.suggestion ?? ""),
      );
      assert.equal(
        existsSync(join(dir, "stack.json")),
        false,
        "no state is left behind",
      );
      assert.equal(existsSync(join(dir, "postgres")), false);
    },
  );
});

describe("server programs", () => {
  it("names the Debian package when PostgreSQL is not installed", (t) => {
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      assert.throws(
        () => postgresBinDir(tempDir(t, "ff-nopg-")),
        (e: unknown) =>
          e instanceof MissingDependencyError &&
          e.program === "initdb" &&
          /apt-get install postgresql/.test(e.suggestion ?? ""),
      );
    } finally {
      process.env.PATH = path;
    }
  });

  it("finds Debian's versioned bin folder when initdb is not on PATH", () => {
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      assert.match(postgresBinDir(), /^\/usr\/lib\/postgresql\/\d+\/bin$/);
    } finally {
      process.env.PATH = path;
    }
  });
});
