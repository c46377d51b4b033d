/**
 * The archive schema that `db init` creates must match the upstream FitsStorage
 * v3 DDL table for table and column for column (names, types, nullability,
 * defaults, enum values and order, keys, indexes).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { TABLE_PRESETS } from "../../lib/archive-tables.js";
import { withClient } from "../../lib/db/connect.js";
import {
  compareSchemas,
  describeDdl,
  describeSchema,
  type SchemaInfo,
} from "../../lib/db/introspect.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { REFERENCE_SCHEMA } from "../helpers/shared.js";

const REQUIRED = [
  ...TABLE_PRESETS.ingest,
  ...TABLE_PRESETS.archive,
  ...TABLE_PRESETS.summit,
];

let reference: Promise<SchemaInfo> | undefined;
function referenceSchema(): Promise<SchemaInfo> {
  reference ??= describeDdl(
    testEnv().adminUrl,
    readFileSync(REFERENCE_SCHEMA, "utf8"),
    REFERENCE_SCHEMA,
  );
  return reference;
}

describe("archive schema against the FitsStorage v3 reference", () => {
  it("has every required table, identical to the reference", async (t) => {
    const db = await testDatabase(t);
    const ours = await withClient(db.url, (c) => describeSchema(c));
    const ref = await referenceSchema();
    for (const table of REQUIRED) {
      assert.ok(ref.tables[table], `reference lacks ${table}`);
      assert.ok(ours.tables[table], `db init did not create ${table}`);
    }
    assert.deepEqual(compareSchemas(ref, ours, { tables: REQUIRED }), []);
    // The comparison really looked at columns, indexes and enum types.
    assert.equal(ours.tables.header?.columns.length, 62);
    assert.ok(
      ours.tables.header?.indexes.ix_header_ut_datetime_desc_nullslast?.includes(
        "DESC NULLS LAST",
      ),
    );
    assert.deepEqual(ours.enums.procmode, [
      "Failed",
      "Raw",
      "Quick-Look",
      "Science-Quality",
      "Quality-Assessment",
    ]);
  });

  it("differs from the whole reference only by the geometry columns create_tables() adds", async (t) => {
    const db = await testDatabase(t);
    const ours = await withClient(db.url, (c) => describeSchema(c));
    const diffs = compareSchemas(await referenceSchema(), ours);
    assert.deepEqual(
      diffs.map((d) => d.detail),
      [
        "footprint.area (polygon) is not in the reference",
        "photstandard.coords (point) is not in the reference",
      ],
    );
  });

  it("notices a changed type, a dropped index, a missing table and a reordered enum", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, async (c) => {
      await c.query(
        "ALTER TABLE header ALTER COLUMN airmass TYPE numeric(10, 4)",
      );
      await c.query("DROP INDEX ix_diskfile_present");
      await c.query("DROP TABLE qametriczp");
      await c.query("ALTER TYPE qa_state RENAME VALUE 'Pass' TO 'Passed'");
    });
    const ours = await withClient(db.url, (c) => describeSchema(c));
    const details = compareSchemas(await referenceSchema(), ours, {
      tables: REQUIRED,
    }).map((d) => d.detail);
    assert.ok(
      details.includes(
        "header.airmass: type numeric(10,4), reference numeric(8,6)",
      ),
      details.join("\n"),
    );
    assert.ok(
      details.some((d) =>
        d.startsWith("index ix_diskfile_present on diskfile is missing"),
      ),
      details.join("\n"),
    );
    assert.ok(
      details.includes("table qametriczp is missing"),
      details.join("\n"),
    );
    assert.ok(
      details.some((d) =>
        d.startsWith(
          "enum type qa_state has values (Fail, CHECK, Undefined, Usable, Passed)",
        ),
      ),
      details.join("\n"),
    );
  });
});
