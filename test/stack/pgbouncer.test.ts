import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { withClient } from "../../lib/db/connect.js";
import { processAlive } from "../../lib/exec.js";
import { freePort } from "../../lib/stack/index.js";
import {
  pgbouncerPaths,
  pgbouncerPid,
  pgbouncerUrl,
  startPgbouncer,
  stopPgbouncer,
} from "../../lib/stack/pgbouncer.js";
import {
  clusterPid,
  initCluster,
  startCluster,
  stopCluster,
  SUPERUSER,
} from "../../lib/stack/postgres.js";

describe("pgbouncer in front of a PostgreSQL cluster", () => {
  let dir = "";
  const pgFolder = () => join(dir, "postgres");
  const bouncerFolder = () => join(dir, "pgbouncer");
  const password = randomBytes(18).toString("base64url");
  let options: Parameters<typeof startPgbouncer>[0];
  let pids: number[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "ff-pgbouncer-"));
    // The servers' user (postgres, when we are root) must pass through.
    chmodSync(dir, 0o711);
    const pgPort = await freePort();
    await initCluster(pgFolder(), password, { unsafeFast: true });
    await startCluster(pgFolder(), pgPort);
    options = {
      folder: bouncerFolder(),
      port: await freePort(),
      server: { host: "127.0.0.1", port: pgPort, user: SUPERUSER, password },
      poolMode: "transaction",
      defaultPoolSize: 2,
    };
    pids = [await startPgbouncer(options), clusterPid(pgFolder())!];
  });

  after(async () => {
    await stopPgbouncer(bouncerFolder());
    await stopCluster(pgFolder());
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps its password file private and listens on loopback", async () => {
    const users = pgbouncerPaths(bouncerFolder()).users;
    assert.equal(statSync(users).mode & 0o777, 0o600);
    const rows = await withClient(
      pgbouncerUrl(options, "pgbouncer"),
      async (c) =>
        (await c.query<{ key: string; value: string }>("SHOW CONFIG")).rows,
    );
    const config = new Map(rows.map((r) => [r.key, r.value]));
    assert.equal(config.get("listen_addr"), "127.0.0.1");
    assert.equal(config.get("pool_mode"), "transaction");
  });

  it("runs queries and transactions through the pool", async () => {
    const url = pgbouncerUrl(options, "postgres");
    // More clients than server connections: they take turns.
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        withClient(url, async (c) => {
          await c.query("BEGIN");
          const { rows } = await c.query<{ n: number; server: string }>(
            "SELECT $1::int * 2 AS n, current_setting('port') AS server",
            [i],
          );
          await c.query("COMMIT");
          return rows[0]!;
        }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.n),
      [0, 2, 4, 6, 8, 10],
    );
    assert.ok(results.every((r) => r.server === String(options.server.port)));
  });

  it("stops both servers, leaving no process behind", async () => {
    assert.ok(pids.every((pid) => processAlive(pid)));
    await stopPgbouncer(bouncerFolder());
    await stopCluster(pgFolder());
    assert.equal(pgbouncerPid(bouncerFolder()), undefined);
    assert.equal(clusterPid(pgFolder()), undefined);
    assert.deepEqual(
      pids.filter((pid) => processAlive(pid)),
      [],
    );
  });
});
