import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { loadMigrations } from "../../lib/db/migrate.js";
import { folderWith } from "../helpers/tmp.js";

describe("loadMigrations", () => {
  it("reads the shipped migrations in order with checksums", () => {
    const migrations = loadMigrations();
    assert.ok(migrations.length >= 1);
    assert.deepEqual(
      migrations.map((m) => m.version),
      migrations.map((_, i) => i + 1),
    );
    assert.equal(migrations[0]?.name, "archive_schema");
    assert.match(migrations[0]?.sha256 ?? "", /^[0-9a-f]{64}$/);
    assert.ok(migrations.every((m) => m.transactional));
  });

  it("rejects gaps, duplicates and badly named files", (t) => {
    assert.throws(
      () =>
        loadMigrations(folderWith(t, { "0001_a.sql": "", "0003_c.sql": "" })),
      /expected version 0002/,
    );
    assert.throws(
      () =>
        loadMigrations(folderWith(t, { "0001_a.sql": "", "0001_b.sql": "" })),
      /expected version 0002/,
    );
    assert.throws(
      () => loadMigrations(folderWith(t, { "1_a.sql": "" })),
      /not named NNNN_name\.sql/,
    );
  });

  it("recognises the no-transaction header only on the first line", (t) => {
    const migrations = loadMigrations(
      folderWith(t, {
        "0001_a.sql":
          "--! no-transaction\nCREATE INDEX CONCURRENTLY x ON t (c);",
        "0002_b.sql": "SELECT 1;\n--! no-transaction",
      }),
    );
    assert.deepEqual(
      migrations.map((m) => m.transactional),
      [false, true],
    );
  });
});
