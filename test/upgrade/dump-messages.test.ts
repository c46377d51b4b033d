/**
 * What `upgrade` says about dumps it cannot use, as an operator sees it (the
 * CLI's exit code and stderr): a data-only dump, made as the reference's
 * promotion checklist makes them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import { passwordlessUrl } from "../../lib/db/client-programs.js";
import { withClient } from "../../lib/db/connect.js";
import { run } from "../../lib/exec.js";
import { packageRoot } from "../../lib/paths.js";
import { postgresProgram } from "../../lib/stack/binaries.js";
import {
  createPreviousVersionDatabase,
  PREVIOUS_VERSION_TABLES,
} from "../../lib/upgrade/previous-version.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase } from "../helpers/db.js";
import { tempDir } from "../helpers/tmp.js";

const MAPPING = join(packageRoot(), "mappings", "fitsstorage-v2-to-v3.json");

async function previousVersion(t: TestContext): Promise<string> {
  const db = await testDatabase(t, { empty: true });
  await withClient(db.url, (c) =>
    createPreviousVersionDatabase(c, { usagelogRows: 3000, seed: 11 }),
  );
  return db.url;
}

const upgrade = (command: string, target: string, from: string) =>
  runCli([
    "--database-url",
    target,
    "upgrade",
    command,
    "--from",
    from,
    "--mapping",
    MAPPING,
    "--preset",
    "archive,summit",
  ]);

describe("upgrade: what a dump it cannot use is", () => {
  it("a data-only dump is named as such, with what to give instead", async (t) => {
    const source = await previousVersion(t);
    const target = await testDatabase(t);
    const dir = tempDir(t);
    const { url: dbname, password } = passwordlessUrl(source);
    // As docs/ArchivePromotionChecklist.md dumps them: each table and its sequence, rows only.
    const tables = PREVIOUS_VERSION_TABLES.flatMap((x) => [
      "-t",
      x,
      "-t",
      `${x}_id_seq`,
    ]);
    for (const format of ["custom", "plain"]) {
      const dump = join(dir, `promotion.${format}`);
      await run(
        postgresProgram("pg_dump"),
        [
          `--format=${format}`,
          "--data-only",
          `--file=${dump}`,
          ...tables,
          `--dbname=${dbname}`,
        ],
        { env: { ...process.env, PGPASSWORD: password } },
      );
      for (const command of ["plan", "migrate-tables"]) {
        const cli = await upgrade(command, target.url, dump);
        assert.equal(cli.code, 1, cli.stderr);
        assert.match(
          cli.stderr,
          new RegExp(
            `error: ${dump.replaceAll(".", "\\.")}: a data-only dump \\(pg_dump --data-only\\): it holds .* but no table definitions`,
          ),
        );
        assert.match(
          cli.stderr,
          /hint: make a full custom-format dump of the previous database, `pg_dump -Fc -f FILE postgres:\/\/…`.* or read the live database with `--from postgres:\/\/…`/,
        );
        assert.doesNotMatch(cli.stderr, /has no table|mapping/);
      }
    }
  });
});
