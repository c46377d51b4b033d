/**
 * `upgrade migrate-tables` end to end: the previous-version (v2) fixture from
 * a custom-format dump, a directory-format dump and a live database into a
 * fresh v3 schema, checked against the source with SQL of its own (not the
 * command's fingerprints); then every kind of bad input, each leaving the
 * target exactly as it was.
 */
import assert from "node:assert/strict";
import {
  closeSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join, relative } from "node:path";
import { describe, it, type TestContext } from "node:test";

import { PutObjectCommand } from "@aws-sdk/client-s3";

import {
  createPreviousVersionDatabase,
  dumpDatabase,
  EDGE_TEXTS,
  type PreviousVersionSummary,
} from "../../fixtures/previous-version.js";
import { TABLE_PRESETS } from "../../lib/archive-tables.js";
import { passwordlessUrl } from "../../lib/db/client-programs.js";
import { connect, withClient } from "../../lib/db/connect.js";
import type { FitsfleetError } from "../../lib/errors.js";
import { run, sleep } from "../../lib/exec.js";
import { createLogger } from "../../lib/logger.js";
import { packageRoot } from "../../lib/paths.js";
import { postgresProgram } from "../../lib/programs.js";
import { writeManifest } from "../../lib/upgrade/manifest.js";
import {
  runMigrateTables,
  upgradePlan,
  type UpgradeSelection,
} from "../../lib/upgrade/steps.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { testS3 } from "../helpers/s3.js";
import { tempDir } from "../helpers/tmp.js";

const MAPPING = join(packageRoot(), "mappings", "fitsstorage-v2-to-v3.json");
const ARCHIVE = TABLE_PRESETS.archive;
const logger = createLogger({ level: "error" });

async function previousVersion(
  t: TestContext,
): Promise<{ url: string; summary: PreviousVersionSummary }> {
  const db = await testDatabase(t, { empty: true });
  const summary = await withClient(db.url, (c) =>
    createPreviousVersionDatabase(c, { usagelogRows: 3000, seed: 7 }),
  );
  return { url: db.url, summary };
}

function flags(
  from: string,
  extra: Partial<UpgradeSelection> = {},
): UpgradeSelection {
  return {
    from,
    preset: ["archive,summit"],
    table: [],
    excludeTable: [],
    mapping: MAPPING,
    ...extra,
  };
}

const v2Name = (table: string) => (table === "users" ? "archiveuser" : table);

/** Columns both versions have, so one SQL digest can compare a v2 table with its v3 successor. */
async function commonColumns(
  sourceUrl: string,
  targetUrl: string,
  table: string,
): Promise<string[]> {
  const names = async (url: string, t: string) =>
    withClient(url, async (c) => {
      const { rows } = await c.query<{ c: string }>(
        `SELECT column_name AS c FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
        [t],
      );
      return rows.map((r) => r.c);
    });
  const source = await names(sourceUrl, v2Name(table));
  const target = new Set(await names(targetUrl, table));
  return source.filter((c) => target.has(c));
}

/** count and md5 of the rows (as row text, by id) over `columns`. */
async function digest(
  url: string,
  table: string,
  columns: string[],
): Promise<string> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ d: string }>(
      `SELECT count(*) || ':' || coalesce(md5(string_agg(row(${columns.map((x) => `"${x}"`).join(", ")})::text, E'\\n' ORDER BY id)), '-') AS d
         FROM "${table}"`,
    );
    return rows[0]!.d;
  });
}

async function tableCounts(url: string): Promise<Record<string, number>> {
  return withClient(url, async (c) => {
    const counts: Record<string, number> = {};
    for (const t of [...ARCHIVE, ...TABLE_PRESETS.summit]) {
      const { rows } = await c.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${t}"`,
      );
      counts[t] = Number(rows[0]!.n);
    }
    return counts;
  });
}

async function assertMigrated(
  sourceUrl: string,
  targetUrl: string,
  summary: PreviousVersionSummary,
): Promise<void> {
  for (const table of [...ARCHIVE, "qareport", "qametriciq", "qametriczp"]) {
    const columns = await commonColumns(sourceUrl, targetUrl, table);
    assert.equal(
      await digest(targetUrl, table, columns),
      await digest(sourceUrl, v2Name(table), columns),
      `${table}: rows differ from the source`,
    );
  }
  await withClient(targetUrl, async (c) => {
    // Every sequence is past both the source's position and max(id): the next insert cannot collide.
    for (const [v2, s] of Object.entries(summary.tables)) {
      const table = v2 === "archiveuser" ? "users" : v2;
      const sequence = s.sequences[0];
      if (sequence === undefined) {
        continue;
      }
      const { rows } = await c.query<{ next: string }>(
        `SELECT nextval(pg_get_serial_sequence($1, 'id'))::text AS next`,
        [table],
      );
      const next = Number(rows[0]!.next);
      const position = sequence.isCalled
        ? sequence.lastValue
        : sequence.lastValue - 1;
      assert.equal(
        next,
        Math.max(position, s.maxId ?? 0) + 1,
        `${table}: nextval after the upgrade`,
      );
    }
    const { rows } = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM users WHERE fullname = $1 OR email = $1 OR fullname = $2",
      [EDGE_TEXTS.quotes, EDGE_TEXTS.backslashes],
    );
    assert.ok(Number(rows[0]!.n) > 0, "edge-case texts carried over");
  });
}

describe("upgrade migrate-tables", () => {
  it("carries the v2 tables from a custom dump, a directory dump and a live database", async (t) => {
    const { url: source, summary } = await previousVersion(t);
    const dir = tempDir(t);
    const custom = join(dir, "v2.dump");
    const directory = join(dir, "v2.dir");
    await dumpDatabase(source, custom, "custom");
    await dumpDatabase(source, directory, "directory");
    await writeManifest(custom);
    await writeManifest(directory);
    for (const from of [custom, directory, source]) {
      const target = await testDatabase(t);
      const progress: string[] = [];
      const report = await runMigrateTables(flags(from), target.url, {
        logger,
        onProgress: (p) => progress.push(`${p.table}:${p.phase}`),
      });
      assert.ok(report.ok, from);
      assert.equal(report.tables.length, 14);
      assert.equal(
        report.manifest !== null,
        from !== source,
        "the manifest beside a dump is verified",
      );
      // Users before their programs and logs; usagelog before the logs that point at it.
      const order = report.tables.map((x) => x.table);
      assert.ok(order.indexOf("users") < order.indexOf("usagelog"));
      assert.ok(order.indexOf("usagelog") < order.indexOf("querylog"));
      assert.ok(order.indexOf("qareport") < order.indexOf("qametriciq"));
      assert.ok(progress.includes("usagelog:done"));
      await assertMigrated(source, target.url, summary);
    }
  });

  it("reads a custom and a directory dump from S3, with the manifest stored beside them", async (t) => {
    const { url: source, summary } = await previousVersion(t);
    const s3 = await testS3(t);
    const dir = tempDir(t);
    const custom = join(dir, "v2.dump");
    const directory = join(dir, "v2.dir");
    await dumpDatabase(source, custom, "custom");
    await dumpDatabase(source, directory, "directory");
    await writeManifest(custom);
    await writeManifest(directory);
    const upload = async (path: string, key: string) =>
      s3.client.send(
        new PutObjectCommand({
          Bucket: s3.bucket,
          Key: key,
          Body: readFileSync(path),
        }),
      );
    await upload(custom, "backups/v2.dump");
    await upload(`${custom}.manifest.json`, "backups/v2.dump.manifest.json");
    for (const file of readdirSync(directory)) {
      await upload(
        join(directory, file),
        `backups/v2.dir/${relative(directory, join(directory, file))}`,
      );
    }
    await upload(`${directory}.manifest.json`, "backups/v2.dir.manifest.json");

    const target = await testDatabase(t);
    const report = await runMigrateTables(
      flags(`s3://${s3.bucket}/backups/v2.dump`),
      target.url,
      { logger, s3Endpoint: s3.endpoint },
    );
    assert.ok(report.ok);
    assert.match(report.manifest ?? "", /v2\.dump\.manifest\.json$/);
    await assertMigrated(source, target.url, summary);

    // The CLI, as an operator runs it, with the endpoint from the environment.
    const second = await testDatabase(t);
    const cli = await runCli(
      [
        "--database-url",
        second.url,
        "upgrade",
        "migrate-tables",
        "--from",
        `s3://${s3.bucket}/backups/v2.dir`,
        "--mapping",
        MAPPING,
        "--preset",
        "archive,summit",
      ],
      s3.env,
    );
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /verified against .*v2\.dir\.manifest\.json/);
    await assertMigrated(source, second.url, summary);

    const missing = await runCli(
      [
        "--database-url",
        second.url,
        "upgrade",
        "plan",
        "--from",
        `s3://${s3.bucket}/backups/nothing.dump`,
      ],
      s3.env,
    );
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(
      missing.stderr,
      /no such object or prefix in s3:\/\/archive\/backups/,
    );
  });

  it("plans without writing, lists every problem at once, and refuses to run a plan with problems (exit 3)", async (t) => {
    const { url: source, summary } = await previousVersion(t);
    const target = await testDatabase(t);
    const plan = await upgradePlan(flags(source), target.url, { logger });
    assert.deepEqual(plan.problems, []);
    const users = plan.tables.find((x) => x.target === "users")!;
    assert.equal(users.source, "archiveuser");
    assert.equal(users.rows, summary.tables.archiveuser.rows);
    assert.deepEqual(
      users.columns.filter((c) => c.kind === "null").map((c) => c.target),
      [
        "noirlab_id",
        "file_permission_admin",
        "instrument_team",
        "last_login",
        "last_login_by",
      ],
    );
    const usagelog = plan.tables.find((x) => x.target === "usagelog")!;
    assert.equal(
      usagelog.columns.find((c) => c.target === "id")?.kind,
      "widen",
    );
    const glacier = plan.tables.find((x) => x.target === "glacier")!;
    assert.equal(glacier.sequences[0]?.sourceSequence, "public.glacier_id_seq");
    assert.deepEqual(
      plan.tables.find((x) => x.target === "fileuploadlog")?.dropped,
      ["invoke_status", "invoke_pid", "ingestqueue_id"],
    );
    assert.deepEqual(
      await tableCounts(target.url),
      Object.fromEntries(
        Object.keys(await tableCounts(target.url)).map((k) => [k, 0]),
      ),
    );

    // Without the mapping: the rename and the dropped columns are all reported, and nothing runs.
    const cli = await runCli([
      "--database-url",
      target.url,
      "--json",
      "upgrade",
      "migrate-tables",
      "--from",
      source,
      "--preset",
      "archive",
    ]);
    assert.equal(cli.code, 3, cli.stderr);
    const error = JSON.parse(cli.stderr.trim().split("\n").pop()!) as {
      error: { message: string; context: { problems: string[] } };
    };
    const problems = error.error.context.problems;
    assert.equal(problems.length, 4, problems.join("\n"));
    assert.match(problems[0]!, /no table users \(it has archiveuser/);
    assert.ok(
      problems
        .slice(1)
        .every((p) =>
          /fileuploadlog\.(invoke_status|invoke_pid|ingestqueue_id)/.test(p),
        ),
    );
    assert.equal((await tableCounts(target.url)).users, 0);
  });

  it("applies expressions and casts from a mapping file through a staging table, and verifies the rest", async (t) => {
    const { url: source, summary } = await previousVersion(t);
    const target = await testDatabase(t);
    const mapping = join(tempDir(t), "mapping.json");
    writeFileSync(
      mapping,
      JSON.stringify({
        tables: {
          users: {
            from: "archiveuser",
            columns: {
              instrument_team: {
                expr: "CASE WHEN gemini_staff THEN 'staff' END",
              },
              last_login_by: { expr: "upper(username)" },
            },
          },
          fileuploadlog: {
            drop: ["invoke_status", "invoke_pid", "ingestqueue_id"],
            columns: { path: { expr: "'uploads/' || filename" } },
          },
          glacier: { columns: { md5: { from: "md5", cast: true } } },
        },
      }),
    );
    const report = await runMigrateTables(
      flags(source, { mapping }),
      target.url,
      { logger },
    );
    assert.ok(report.ok);
    const users = report.tables.find((x) => x.table === "users")!;
    assert.ok(!users.fingerprintColumns.includes("instrument_team"));
    assert.ok(users.fingerprintColumns.includes("username"));
    assert.equal(users.rows, summary.tables.archiveuser.rows);
    const count = (url: string, sql: string) =>
      withClient(url, async (c) =>
        Number((await c.query<{ n: string }>(sql)).rows[0]!.n),
      );
    assert.equal(
      await count(
        target.url,
        "SELECT count(*) AS n FROM users WHERE instrument_team = 'staff'",
      ),
      await count(
        source,
        "SELECT count(*) AS n FROM archiveuser WHERE gemini_staff",
      ),
    );
    assert.equal(
      await count(
        target.url,
        "SELECT count(*) AS n FROM users WHERE last_login_by IS DISTINCT FROM upper(username)",
      ),
      0,
    );
    assert.equal(
      await count(
        target.url,
        "SELECT count(*) AS n FROM fileuploadlog WHERE path IS DISTINCT FROM 'uploads/' || filename",
      ),
      0,
    );
    await assertMigrated(source, target.url, summary);
  });

  it("refuses a non-empty target unless --truncate-target, and then replaces its rows", async (t) => {
    const { url: source, summary } = await previousVersion(t);
    const target = await testDatabase(t);
    await withClient(target.url, (c) =>
      c.query("INSERT INTO users (username) VALUES ('already-here')"),
    );
    await assert.rejects(
      runMigrateTables(flags(source), target.url, { logger }),
      (e: FitsfleetError) =>
        e.exitCode === 3 && /not empty: users \(1 rows\)/.test(e.message),
    );
    assert.equal((await tableCounts(target.url)).usagelog, 0);
    const report = await runMigrateTables(flags(source), target.url, {
      logger,
      truncateTarget: true,
    });
    assert.ok(report.ok);
    await assertMigrated(source, target.url, summary);
  });

  it("a row a writer commits after the plan is never lost: the check runs under the locks, and the command refuses", async (t) => {
    const { url: source } = await previousVersion(t);
    const target = await testDatabase(t);
    await assert.rejects(
      runMigrateTables(flags(source), target.url, {
        logger,
        // Where the old code had checked emptiness and not yet locked anything.
        beforeTransaction: () =>
          withClient(target.url, async (c) => {
            await c.query(
              "INSERT INTO users (username) VALUES ('committed-in-the-window')",
            );
          }),
      }),
      (e: FitsfleetError) =>
        e.exitCode === 3 &&
        /the target tables are not empty: users \(1 rows\); nothing was written/.test(
          e.message,
        ),
    );
    const after = await tableCounts(target.url);
    assert.equal(after.users, 1, "the writer's row survived");
    assert.equal(after.usagelog, 0);
  });

  it("waits for a writer in flight, then sees its row and refuses", async (t) => {
    const { url: source } = await previousVersion(t);
    const target = await testDatabase(t);
    const writer = await connect(target.url);
    t.after(() => writer.end().catch(() => undefined));
    await writer.query("BEGIN");
    await writer.query("INSERT INTO usagelog (utdatetime) VALUES (now())");
    const migration = runMigrateTables(flags(source), target.url, { logger });
    migration.catch(() => undefined);
    // The writer commits only once the command is queued behind its lock, so
    // the order is forced: lock requested, writer commits, command proceeds.
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
    await writer.query("COMMIT");
    await assert.rejects(
      migration,
      (e: FitsfleetError) =>
        e.exitCode === 3 &&
        /the target tables are not empty: usagelog \(1 rows\)/.test(e.message),
    );
    assert.equal((await tableCounts(target.url)).usagelog, 1);
  });

  it("a truncated dump, a damaged dump, a wrong manifest, a foreign dump and a lost connection leave the target unchanged", async (t) => {
    const { url: source } = await previousVersion(t);
    const dir = tempDir(t);
    const good = join(dir, "good.dump");
    await dumpDatabase(source, good, "custom");
    const target = await testDatabase(t);
    const before = await tableCounts(target.url);
    const attempt = async (
      from: string,
      extra: Partial<UpgradeSelection> = {},
    ) => {
      try {
        await runMigrateTables(flags(from, extra), target.url, { logger });
      } catch (error) {
        assert.deepEqual(await tableCounts(target.url), before, from);
        return error as FitsfleetError;
      }
      assert.fail(`${from} was accepted`);
    };

    // Cut at 90%: pg_restore --list still reads it, the data does not.
    const bytes = readFileSync(good);
    const truncated = join(dir, "truncated.dump");
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.9)));
    const cut = await attempt(truncated);
    assert.match(cut.message, /truncated\.dump/);
    assert.match(
      cut.message,
      /cannot read the data of table|ends early|damaged|truncated/,
    );

    // A byte changed after the manifest was written: the manifest catches it before anything is read.
    const damaged = join(dir, "damaged.dump");
    writeFileSync(damaged, bytes);
    await writeManifest(damaged);
    const fd = openSync(damaged, "r+");
    writeSync(fd, Buffer.from("X"), 0, 1, Math.floor(bytes.length / 2));
    closeSync(fd);
    const mismatch = await attempt(damaged);
    assert.match(mismatch.message, /does not match its manifest/);
    assert.match(mismatch.message, /sha256 differs/);

    const short = join(dir, "short.dump");
    writeFileSync(short, bytes);
    await writeManifest(short);
    ftruncateSync(openSync(short, "r+"), bytes.length - 10);
    assert.match((await attempt(short)).message, /bytes, the manifest says/);

    // Not a dump at all.
    const notes = join(dir, "notes.dump");
    writeFileSync(notes, "not a dump\n");
    assert.match(
      (await attempt(notes)).message,
      /not a readable pg_dump archive/,
    );

    // A dump of some other database: the preserved tables are not there.
    const other = await testDatabase(t, { empty: true });
    await withClient(other.url, (c) =>
      c.query("CREATE TABLE things (id serial primary key)"),
    );
    const foreign = join(dir, "foreign.dump");
    await dumpDatabase(other.url, foreign, "custom");
    const wrong = await attempt(foreign);
    assert.equal(wrong.exitCode, 3);
    assert.match(wrong.message, /has no table archiveuser/);
    assert.match(wrong.message, /has no table usagelog/);

    // pg_dump -t leaves out the sequence glacier's id uses but does not own.
    const partial = join(dir, "partial.dump");
    const { url: dbname, password } = passwordlessUrl(source);
    await run(
      postgresProgram("pg_dump"),
      [
        "--format=custom",
        `--file=${partial}`,
        "-t",
        "glacier",
        `--dbname=${dbname}`,
      ],
      { env: { ...process.env, PGPASSWORD: password } },
    );
    const unowned = await attempt(partial, {
      preset: [],
      table: ["glacier"],
      mapping: undefined,
    });
    assert.match(unowned.message, /glacier_id_seq.*holds no value/);

    // The target's connection dies in the middle of usagelog. The kill is
    // asynchronous and may land while a later table is copying (one too small
    // to report progress, even): the error must name usagelog or a table
    // whose copy had not yet started when the kill was sent.
    const copiedBefore = new Set<string>();
    let killSent = false;
    const killed = await (async () => {
      try {
        await runMigrateTables(flags(good), target.url, {
          logger,
          onProgress: (p) => {
            if (p.phase !== "copy") {
              return;
            }
            if (p.table !== "usagelog" && !killSent) {
              copiedBefore.add(p.table);
            }
            if (p.table === "usagelog") {
              killSent = true;
              void withClient(testEnv().adminUrl, (c) =>
                c.query(
                  "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fitsfleet upgrade (target)'",
                ),
              );
            }
          },
        });
      } catch (error) {
        return error as FitsfleetError;
      }
      assert.fail("the copy survived a killed connection");
    })();
    assert.equal(killed.exitCode, 4, killed.message);
    const lost =
      /lost the connection to the target database while copying (\w+) into (\w+): .*rolled back and the target is unchanged/.exec(
        killed.message,
      );
    assert.ok(lost, killed.message);
    // Progress names the target table: the second name.
    assert.ok(killSent, "usagelog's copy reported progress");
    assert.ok(!copiedBefore.has(lost[2] as string), killed.message);
    assert.deepEqual(await tableCounts(target.url), before);
    assert.ok(statSync(good).size > 0);
  });
});
