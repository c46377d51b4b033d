import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";

import { dumpSchema } from "../../lib/db/dump.js";
import { packageRoot } from "../../lib/paths.js";
import { testDatabase } from "../helpers/db.js";

it("the committed test/schema.sql matches what db init creates (run `npm run db:dump` after a schema change)", async (t) => {
  const db = await testDatabase(t);
  const committed = readFileSync(
    join(packageRoot(), "test", "schema.sql"),
    "utf8",
  );
  const actual = await dumpSchema(db.url);
  if (actual !== committed) {
    const a = actual.split("\n");
    const c = committed.split("\n");
    const first = a.findIndex((line, i) => line !== c[i]);
    assert.fail(
      `schema drift at line ${first + 1}:\n  committed: ${c[first] ?? "<end>"}\n  database:  ${a[first] ?? "<end>"}\nreview the change, then run \`npm run db:dump\` and commit test/schema.sql`,
    );
  }
});
