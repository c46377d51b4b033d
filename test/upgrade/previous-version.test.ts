import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import type { ClientBase, QueryResultRow } from "pg";

import {
  createPreviousVersionDatabase,
  dumpDatabase,
  EDGE_TEXTS,
  EDGE_TIMESTAMPS,
  PREVIOUS_VERSION_OTHER_TABLES,
  PREVIOUS_VERSION_TABLES,
  type PreviousVersionOptions,
  type PreviousVersionSummary,
  summarisePreviousVersion,
  tableFingerprint,
  UNOWNED_SEQUENCE,
} from "../../fixtures/previous-version.js";
import { passwordlessUrl } from "../../lib/db/client-programs.js";
import { withClient } from "../../lib/db/connect.js";
import { FitsfleetError, PreconditionError } from "../../lib/errors.js";
import { run } from "../../lib/exec.js";
import { postgresProgram } from "../../lib/programs.js";
import { testDatabase } from "../helpers/db.js";
import { tempDir } from "../helpers/tmp.js";

const SMALL: PreviousVersionOptions = { usagelogRows: 3000, seed: 42 };

async function previousVersion(
  t: TestContext,
  options: PreviousVersionOptions = SMALL,
): Promise<{ url: string; summary: PreviousVersionSummary }> {
  const db = await testDatabase(t, { empty: true });
  const summary = await withClient(db.url, (c) =>
    createPreviousVersionDatabase(c, options),
  );
  return { url: db.url, summary };
}

async function one<T extends QueryResultRow>(
  c: ClientBase,
  sql: string,
  params: unknown[] = [],
): Promise<T> {
  const { rows } = await c.query<T>(sql, params);
  assert.equal(rows.length, 1, `expected one row from: ${sql}`);
  return rows[0] as T;
}

async function columns(
  c: ClientBase,
  table: string,
): Promise<Map<string, { type: string; nullable: boolean }>> {
  const { rows } = await c.query<{
    column_name: string;
    data_type: string;
    is_nullable: string;
  }>(
    `SELECT column_name, data_type, is_nullable FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return new Map(
    rows.map((r) => [
      r.column_name,
      { type: r.data_type, nullable: r.is_nullable === "YES" },
    ]),
  );
}

describe("previous-version (v2) fixture", () => {
  it("has the v2 definitions of the preserved tables and the ignored extras", async (t) => {
    const { url } = await previousVersion(t);
    await withClient(url, async (c) => {
      const { rows } = await c.query<{ t: string }>(
        "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
      );
      assert.deepEqual(
        rows.map((r) => r.t),
        [...PREVIOUS_VERSION_TABLES, ...PREVIOUS_VERSION_OTHER_TABLES].sort(),
      );

      const user = await columns(c, "archiveuser");
      for (const v3Only of [
        "noirlab_id",
        "file_permission_admin",
        "instrument_team",
        "last_login",
        "last_login_by",
      ]) {
        assert.ok(!user.has(v3Only), `archiveuser has v3 column ${v3Only}`);
      }
      assert.equal(user.size, 16);
      assert.equal((await columns(c, "usagelog")).get("id")?.type, "integer");
      for (const child of [
        "querylog",
        "downloadlog",
        "filedownloadlog",
        "fileuploadlog",
      ]) {
        assert.equal(
          (await columns(c, child)).get("usagelog_id")?.type,
          "integer",
          child,
        );
      }
      assert.ok(!(await columns(c, "glacier")).has("path"));
      assert.ok(!(await columns(c, "filedownloadlog")).has("inst_team_access"));
      const upload = await columns(c, "fileuploadlog");
      assert.ok(!upload.has("path"));
      assert.equal(upload.get("size")?.type, "integer");
      for (const dropped of ["invoke_status", "invoke_pid", "ingestqueue_id"]) {
        assert.ok(upload.has(dropped), `fileuploadlog lacks ${dropped}`);
      }

      const fks = await c.query<{ conname: string }>(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace ORDER BY 1",
      );
      assert.ok(
        fks.rows.some((r) => r.conname === "usagelog_user_id_fkey") &&
          fks.rows.some((r) => r.conname === "querylog_usagelog_id_fkey") &&
          fks.rows.some((r) => r.conname === "qametriczp_qareport_id_fkey"),
      );
      const ix = await c.query(
        "SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname IN ('ix_archiveuser_username', 'ix_usagelog_ip_address', 'ix_glacier_md5', 'ix_fileuploadlog_filename')",
      );
      assert.equal(ix.rowCount, 4);
    });
  });

  it("stores the edge-case texts, NULLs, timestamps and limits exactly", async (t) => {
    const { url, summary } = await previousVersion(t);
    await withClient(url, async (c) => {
      for (const [key, text] of Object.entries(EDGE_TEXTS)) {
        const row = await one<{
          fullname: string;
          notes: string;
          uri: string;
          selection: string;
          comment: string;
        }>(
          c,
          `SELECT u.fullname, l.notes, l.uri, q.selection, m.comment
             FROM archiveuser u
             JOIN usagelog l ON l.user_id = u.id
             JOIN querylog q ON q.usagelog_id = l.id
             JOIN qareport r ON r.hostname = u.fullname
             JOIN qametriciq m ON m.qareport_id = r.id
            WHERE u.username = $1`,
          [`edge_${key}`],
        );
        assert.equal(row.fullname, text, key);
        assert.equal(row.notes, text, key);
        assert.equal(row.uri, `/searchform/${text}`, key);
        assert.equal(row.selection, text, key);
        assert.equal(row.comment, text, key);
      }
      assert.ok(EDGE_TEXTS.long.length >= 100_000);
      assert.ok(
        EDGE_TEXTS.backslashN === "\\N" && EDGE_TEXTS.tabs.includes("\t"),
      );

      // Empty strings and NULLs side by side.
      const email = await one<{ empty: string; nulls: string }>(
        c,
        "SELECT count(*) FILTER (WHERE email = '') AS empty, count(*) FILTER (WHERE email IS NULL) AS nulls FROM archiveuser",
      );
      assert.ok(Number(email.empty) > 0 && Number(email.nulls) > 0);

      // Every nullable column of every preserved table is NULL somewhere.
      for (const table of PREVIOUS_VERSION_TABLES) {
        for (const [name, col] of await columns(c, table)) {
          if (!col.nullable) {
            continue;
          }
          const { n } = await one<{ n: string }>(
            c,
            `SELECT count(*) AS n FROM ${table} WHERE ${name} IS NULL`,
          );
          assert.ok(Number(n) > 0, `${table}.${name} is never NULL`);
        }
      }

      for (const ts of EDGE_TIMESTAMPS) {
        const { t: stored } = await one<{ t: string }>(
          c,
          `SELECT l.utdatetime::text AS t FROM usagelog l JOIN archiveuser u ON u.id = l.user_id WHERE u.username = $1`,
          [`edge_time_${ts}`],
        );
        assert.equal(stored, ts);
      }
      const limits = await one<{
        fwhm: string;
        dra: string;
        electrons: string;
        bytes: string;
      }>(
        c,
        `SELECT (SELECT max(fwhm)::text FROM qametriciq) AS fwhm,
                (SELECT max(dra)::text FROM qametricpe) AS dra,
                (SELECT max(electrons)::text FROM qametricsb) AS electrons,
                (SELECT max(bytes)::text FROM usagelog) AS bytes`,
      );
      assert.deepEqual(limits, {
        fwhm: "999.999",
        dra: "999999.999",
        electrons: "9999999.99",
        bytes: "9223372036854775807",
      });

      // The summary agrees with the database.
      for (const table of PREVIOUS_VERSION_TABLES) {
        const r = await one<{ rows: string; max: number }>(
          c,
          `SELECT count(*) AS rows, max(id) AS max FROM ${table}`,
        );
        assert.equal(summary.tables[table].rows, Number(r.rows), table);
        assert.equal(summary.tables[table].maxId, r.max, table);
      }
      const s = summary.tables;
      assert.ok(Math.abs(s.querylog.rows / s.usagelog.rows - 0.3) < 0.02);
      assert.ok(
        Math.abs(s.filedownloadlog.rows / s.usagelog.rows - 0.2) < 0.02,
      );
    });
  });

  it("has id gaps, sequences ahead of max(id) and one unowned sequence used by a default", async (t) => {
    const { url, summary } = await previousVersion(t);
    const s = summary.tables;
    for (const table of [
      "archiveuser",
      "userprogram",
      "notification",
      "glacier",
      "usagelog",
      "querylog",
      "downloadlog",
      "filedownloadlog",
      "fileuploadlog",
      "qareport",
      "qametriciq",
    ] as const) {
      const maxId = s[table].maxId ?? 0;
      assert.ok(maxId > s[table].rows, `${table} has no id gap`);
    }
    for (const table of PREVIOUS_VERSION_TABLES) {
      const [seq] = s[table].sequences;
      assert.ok(seq !== undefined, `${table} has no sequence`);
      assert.equal(s[table].sequences.length, 1);
      assert.ok(seq.lastValue >= (s[table].maxId ?? 0), `${seq.name} behind`);
    }
    const seq = (table: keyof typeof s) => s[table].sequences[0];
    assert.deepEqual(seq("usagelog"), {
      name: "usagelog_id_seq",
      lastValue: (s.usagelog.maxId ?? 0) + 1000,
      isCalled: true,
      ownedBy: "usagelog.id",
    });
    assert.equal(seq("archiveuser")?.lastValue, (s.archiveuser.maxId ?? 0) + 7);
    assert.deepEqual(seq("notification"), {
      name: "notification_id_seq",
      lastValue: (s.notification.maxId ?? 0) + 1,
      isCalled: false,
      ownedBy: "notification.id",
    });
    assert.deepEqual(seq("glacier"), {
      name: UNOWNED_SEQUENCE,
      lastValue: s.glacier.maxId,
      isCalled: true,
      ownedBy: null,
    });

    await withClient(url, async (c) => {
      // The column default depends on the sequence (pg_attrdef → pg_class) …
      const used = await one<{ seq: string; def: string }>(
        c,
        `SELECT d.refobjid::regclass::text AS seq, pg_get_expr(ad.adbin, ad.adrelid) AS def
           FROM pg_attrdef ad
           JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
           JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                           AND d.refclassid = 'pg_class'::regclass
           JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
          WHERE ad.adrelid = 'glacier'::regclass AND a.attname = 'id'`,
      );
      assert.deepEqual(used, {
        seq: UNOWNED_SEQUENCE,
        def: `nextval('${UNOWNED_SEQUENCE}'::regclass)`,
      });
      // … but the sequence belongs to no column (no auto/internal dependency).
      const owners = await c.query(
        `SELECT 1 FROM pg_depend
          WHERE classid = 'pg_class'::regclass AND objid = $1::regclass
            AND refclassid = 'pg_class'::regclass AND deptype IN ('a', 'i')`,
        [UNOWNED_SEQUENCE],
      );
      assert.equal(owners.rowCount, 0);
      const serial = await one<{ glacier: string | null; usagelog: string }>(
        c,
        "SELECT pg_get_serial_sequence('glacier', 'id') AS glacier, pg_get_serial_sequence('usagelog', 'id') AS usagelog",
      );
      assert.deepEqual(serial, {
        glacier: null,
        usagelog: "public.usagelog_id_seq",
      });
    });
  });

  it("is deterministic: the same seed gives the same rows, another seed other rows", async (t) => {
    const options = { usagelogRows: 1500, seed: 7 };
    const [a, b, other] = await Promise.all([
      previousVersion(t, options),
      previousVersion(t, options),
      previousVersion(t, { ...options, seed: 8 }),
    ]);
    assert.deepEqual(a.summary, b.summary);
    const prints = (url: string) =>
      withClient(url, async (c) => {
        const out: Record<string, string> = {};
        for (const table of PREVIOUS_VERSION_TABLES) {
          out[table] = await tableFingerprint(c, table);
        }
        return out;
      });
    const [pa, pb, po] = await Promise.all([
      prints(a.url),
      prints(b.url),
      prints(other.url),
    ]);
    assert.deepEqual(pa, pb);
    assert.notEqual(pa.usagelog, po.usagelog);
    assert.notEqual(pa.archiveuser, po.archiveuser);
  });

  it("refuses a database that already has tables", async (t) => {
    const { url } = await previousVersion(t, { usagelogRows: 100 });
    await assert.rejects(
      withClient(url, (c) => createPreviousVersionDatabase(c)),
      PreconditionError,
    );
  });

  it("dumps to custom and directory format archives that pg_restore lists", async (t) => {
    const { url } = await previousVersion(t, { usagelogRows: 500 });
    const dir = tempDir(t);
    const custom = join(dir, "v2.dump");
    const directory = join(dir, "v2.dir");
    await dumpDatabase(url, custom, "custom");
    await dumpDatabase(url, directory, "directory");
    assert.ok(existsSync(join(directory, "toc.dat")));
    for (const archive of [custom, directory]) {
      const { stdout } = await run(postgresProgram("pg_restore"), [
        "--list",
        archive,
      ]);
      for (const table of [
        ...PREVIOUS_VERSION_TABLES,
        ...PREVIOUS_VERSION_OTHER_TABLES,
      ]) {
        assert.match(stdout, new RegExp(`TABLE DATA public ${table} `));
      }
      // The whole-database dump carries the unowned sequence's value too.
      assert.match(
        stdout,
        new RegExp(`SEQUENCE SET public ${UNOWNED_SEQUENCE} `),
      );
      assert.match(stdout, /SEQUENCE SET public usagelog_id_seq /);
      assert.match(stdout, /TYPE public telescope /);
    }

    // A full restore gives back every row and sequence state exactly.
    const target = await testDatabase(t, { empty: true });
    const split = passwordlessUrl(target.url);
    await run(
      postgresProgram("pg_restore"),
      [
        "--no-owner",
        "--single-transaction",
        `--dbname=${split.url}`,
        directory,
      ],
      { env: { ...process.env, PGPASSWORD: split.password } },
    );
    const state = (u: string) =>
      withClient(u, async (c) => {
        const prints: string[] = [];
        for (const table of PREVIOUS_VERSION_TABLES) {
          prints.push(await tableFingerprint(c, table));
        }
        return { prints, summary: await summarisePreviousVersion(c) };
      });
    assert.deepEqual(await state(target.url), await state(url));
  });

  it("keeps the password off pg_dump's command line and out of its errors", async (t) => {
    const split = passwordlessUrl(
      "postgres://archive:p%40ss%3Aw0rd@db.example:5432/fitsdata?sslmode=require",
    );
    assert.deepEqual(split, {
      url: "postgres://archive@db.example:5432/fitsdata?sslmode=require",
      password: "p@ss:w0rd",
    });
    assert.equal(
      passwordlessUrl("postgresql://h/db?password=s3cret-value").password,
      "s3cret-value",
    );

    const db = await testDatabase(t, { empty: true });
    const wrong = new URL(db.url);
    wrong.password = "not-the-password-4711";
    const error = await dumpDatabase(
      wrong.toString(),
      join(tempDir(t), "x.dump"),
      "custom",
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof FitsfleetError, String(error));
    assert.match(error.message, /password authentication failed/);
    assert.ok(!error.message.includes("not-the-password-4711"));
  });
});
