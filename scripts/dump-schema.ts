/**
 * Regenerates test/schema.sql, the committed normalised dump of the schema
 * that `db init` creates. test/db/schema-dump.test.ts fails when the two
 * differ, so every schema change shows up in review as a diff of SQL.
 *
 * Usage: npm run db:dump   (starts and removes its own throwaway stack)
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { withClient } from "../lib/db/connect.js";
import { dumpSchema } from "../lib/db/dump.js";
import { runMigrations } from "../lib/db/migrate.js";
import { packageRoot } from "../lib/paths.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";

const dir = mkdtempSync(join(tmpdir(), "fitsfleet-dump-"));
try {
  const { state } = await stackUp(dir, { unsafeFast: true });
  const url = stackUrls(state).databaseUrl;
  await withClient(url, (client) => runMigrations(client));
  const target = join(packageRoot(), "test", "schema.sql");
  writeFileSync(target, await dumpSchema(url));
  process.stdout.write(`wrote ${target}\n`);
} finally {
  await stackDown(dir, { purge: true });
}
