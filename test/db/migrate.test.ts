import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it, type TestContext } from "node:test";

import { connect, withClient } from "../../lib/db/connect.js";
import {
  loadMigrations,
  migrationStatus,
  runMigrations,
} from "../../lib/db/migrate.js";
import {
  PreconditionError,
  SchemaNewerThanCodeError,
} from "../../lib/errors.js";
import { testDatabase } from "../helpers/db.js";
import { REFERENCE_SCHEMA } from "../helpers/shared.js";
import { folderWith } from "../helpers/tmp.js";

function migrationsFrom(t: TestContext, files: Record<string, string>) {
  return loadMigrations(folderWith(t, files));
}

async function publicTables(url: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ t: string }>(
      "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    );
    return rows.map((r) => r.t);
  });
}

describe("runMigrations", () => {
  it("creates the archive schema on an empty database and records it in the ledger", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const report = await withClient(db.url, (c) => runMigrations(c));
    assert.deepEqual(
      report.applied.map((m) => m.file),
      loadMigrations().map((m) => m.file),
    );
    const tables = await publicTables(db.url);
    assert.equal(tables.length, 61);
    for (const name of [
      "file",
      "diskfile",
      "header",
      "gmos",
      "users",
      "qametriczp",
      "calcachequeue",
    ]) {
      assert.ok(tables.includes(name), `missing table ${name}`);
    }
    const ledger = await withClient(db.url, (c) =>
      c.query("SELECT version, name, sha256 FROM fitsfleet.schema_migrations"),
    );
    assert.equal(ledger.rowCount, loadMigrations().length);
  });

  it("is a no-op the second time", async (t) => {
    const db = await testDatabase(t);
    const again = await withClient(db.url, (c) => runMigrations(c));
    assert.equal(again.applied.length, 0);
    const status = await withClient(db.url, (c) => migrationStatus(c));
    assert.equal(status.pending, 0);
    assert.ok(
      status.migrations.every(
        (m) => m.state === "applied" && m.appliedAt instanceof Date,
      ),
    );
  });

  it("applies each migration once when several runners start together", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const clients = await Promise.all([
      connect(db.url),
      connect(db.url),
      connect(db.url),
    ]);
    try {
      const reports = await Promise.all(clients.map((c) => runMigrations(c)));
      const total = reports.reduce((n, r) => n + r.applied.length, 0);
      assert.equal(total, loadMigrations().length);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it("leaves the database exactly as it was when a later migration fails", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const migrations = migrationsFrom(t, {
      "0001_ok.sql": "CREATE TABLE kept_if_committed (id int);",
      "0002_broken.sql":
        "CREATE TABLE also_new (id int);\nSELECT no_such_function();",
    });
    await assert.rejects(
      withClient(db.url, (c) => runMigrations(c, migrations)),
      (error: unknown) =>
        error instanceof PreconditionError &&
        /0002_broken\.sql failed \(line 2\): function no_such_function\(\) does not exist/.test(
          error.message,
        ),
    );
    assert.deepEqual(await publicTables(db.url), []);
    const ledger = await withClient(db.url, (c) =>
      c.query("SELECT to_regclass('fitsfleet.schema_migrations') AS t"),
    );
    assert.equal(
      ledger.rows[0].t,
      null,
      "not even the ledger table may remain",
    );
  });

  it("refuses a database whose ledger is newer than the code", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, (c) =>
      c.query(
        "INSERT INTO fitsfleet.schema_migrations (version, name, sha256) VALUES (999, 'future', 'x')",
      ),
    );
    await assert.rejects(
      withClient(db.url, (c) => runMigrations(c)),
      (e: unknown) =>
        e instanceof SchemaNewerThanCodeError && /version 999/.test(e.message),
    );
    await assert.rejects(
      withClient(db.url, (c) => migrationStatus(c)),
      SchemaNewerThanCodeError,
    );
  });

  it("refuses when an applied migration file was edited", async (t) => {
    const db = await testDatabase(t, { empty: true });
    await withClient(db.url, (c) =>
      runMigrations(
        c,
        migrationsFrom(t, { "0001_a.sql": "CREATE TABLE a (id int);" }),
      ),
    );
    const edited = migrationsFrom(t, {
      "0001_a.sql": "CREATE TABLE a (id bigint);",
      "0002_b.sql": "CREATE TABLE b (id int);",
    });
    await assert.rejects(
      withClient(db.url, (c) => runMigrations(c, edited)),
      /0001_a\.sql differs from the one applied/,
    );
    assert.deepEqual(await publicTables(db.url), ["a"]);
  });

  it("runs a no-transaction migration on its own after the batch before it", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const migrations = migrationsFrom(t, {
      "0001_table.sql": "CREATE TABLE big (id int);",
      "0002_index.sql":
        "--! no-transaction\nCREATE INDEX CONCURRENTLY big_id ON big (id);",
      "0003_more.sql": "CREATE TABLE after_index (id int);",
    });
    const report = await withClient(db.url, (c) =>
      runMigrations(c, migrations),
    );
    assert.deepEqual(
      report.applied.map((m) => m.version),
      [1, 2, 3],
    );
    const index = await withClient(db.url, (c) =>
      c.query("SELECT indexname FROM pg_indexes WHERE indexname = 'big_id'"),
    );
    assert.equal(index.rowCount, 1);
    assert.deepEqual(await publicTables(db.url), ["after_index", "big"]);
  });

  it("changes nothing in a dry run", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const report = await withClient(db.url, (c) =>
      runMigrations(c, undefined, { dryRun: true }),
    );
    assert.equal(report.applied.length, loadMigrations().length);
    assert.match(report.applied[0]?.sql ?? "", /CREATE TABLE file/);
    assert.deepEqual(await publicTables(db.url), []);
  });
});

describe("runMigrations on a database it did not make", () => {
  it("refuses an existing archive without a ledger and changes nothing", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const reference = readFileSync(REFERENCE_SCHEMA, "utf8");
    await withClient(db.url, (c) => c.query(reference));
    for (const dryRun of [false, true]) {
      await assert.rejects(
        withClient(db.url, (c) => runMigrations(c, undefined, { dryRun })),
        (e: unknown) =>
          e instanceof PreconditionError &&
          /already holds 61 table\(s\) in schema public \(calcache, calcachequeue/.test(
            e.message,
          ),
      );
    }
    const ledger = await withClient(db.url, (c) =>
      c.query("SELECT to_regclass('fitsfleet.schema_migrations') AS t"),
    );
    assert.equal(ledger.rows[0].t, null);
  });
});
