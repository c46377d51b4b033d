/**
 * What `upgrade` says about dumps it cannot use, as an operator sees it (the
 * CLI's exit code and stderr): a data-only dump, made as the reference's
 * promotion checklist makes them, and a dump whose compressed data is
 * damaged, with no manifest to catch it first.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import {
  createPreviousVersionDatabase,
  dumpDatabase,
  PREVIOUS_VERSION_TABLES,
} from "../../fixtures/previous-version.js";
import { passwordlessUrl } from "../../lib/db/client-programs.js";
import { withClient } from "../../lib/db/connect.js";
import { run } from "../../lib/exec.js";
import { packageRoot } from "../../lib/paths.js";
import { postgresProgram } from "../../lib/programs.js";
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

  it("a dump whose compressed data is damaged, without a manifest, is reported as damaged, not truncated", async (t) => {
    const source = await previousVersion(t);
    const dir = tempDir(t);
    const good = join(dir, "good.dump");
    await dumpDatabase(source, good, "custom");
    const bytes = readFileSync(good);
    // usagelog's data block: type 1 (data), then its dump id as pg_dump
    // writes ints (a sign byte, then four bytes little-endian).
    const { stdout } = await run(postgresProgram("pg_restore"), [
      "--list",
      good,
    ]);
    const id = Number(
      /^(\d+); \d+ \d+ TABLE DATA public usagelog /m.exec(stdout)![1],
    );
    const header = Buffer.from([1, 0, 0, 0, 0, 0]);
    header.writeUInt32LE(id, 2);
    const block = bytes.lastIndexOf(header);
    assert.ok(block > 0, "usagelog's data block found");
    for (const offset of [400, 4000]) {
      const damaged = join(dir, `damaged-${offset}.dump`);
      const fd = openSync(damaged, "w");
      writeSync(fd, bytes);
      writeSync(fd, Buffer.alloc(64, 0x58), 0, 64, block + offset);
      closeSync(fd);
      const target = await testDatabase(t);
      const cli = await upgrade("migrate-tables", target.url, damaged);
      assert.equal(cli.code, 1, cli.stderr);
      assert.match(
        cli.stderr,
        new RegExp(
          `error: ${damaged.replaceAll(".", "\\.")}: the dump is damaged: pg_restore could not decompress the data of table usagelog \\(could not uncompress data: [^)]+\\)`,
        ),
      );
      assert.match(
        cli.stderr,
        new RegExp(
          `hint: make the dump again from the previous database \\(pg_dump -Fc\\), or copy it again from a good original; \`fitsfleet upgrade manifest --verify ${damaged.replaceAll(".", "\\.")}\``,
        ),
      );
      assert.doesNotMatch(cli.stderr, /truncated|invalid input syntax/);
      const counts = await withClient(target.url, async (c) =>
        Number(
          (await c.query<{ n: string }>("SELECT count(*) AS n FROM usagelog"))
            .rows[0]!.n,
        ),
      );
      assert.equal(counts, 0, "nothing was written");
    }

    // Cut short, by contrast, is called that.
    const cut = join(dir, "cut.dump");
    const fd = openSync(cut, "w");
    writeSync(fd, bytes, 0, block + 4000);
    closeSync(fd);
    const target = await testDatabase(t);
    const cli = await upgrade("migrate-tables", target.url, cut);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(
      cli.stderr,
      /cut\.dump: the dump ends early: pg_restore could not read the data of table usagelog \(could not read from input file: end of file\); it is truncated/,
    );
  });
});
