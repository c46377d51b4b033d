/**
 * `fitsfleet rollcall` with the real CLI against real PostgreSQL, a storage
 * folder and s3rver: missing files marked not present by full path or key,
 * a run SIGKILLed mid-way and resumed from its cursor, --checkmd5 finding
 * planted mismatches (on S3 from the md5 metadata and from the bytes), and
 * dry runs and bad flags writing nothing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import { PutObjectCommand } from "@aws-sdk/client-s3";

import { withClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import type { RollcallReport } from "../../lib/summit/rollcall.js";
import { CLI, runCli } from "../helpers/cli.js";
import { type TestDatabase, testDatabase } from "../helpers/db.js";
import { testS3 } from "../helpers/s3.js";
import { tempDir } from "../helpers/tmp.js";

interface Row {
  id: number;
  path: string;
  filename: string;
}

/**
 * `n` present diskfiles N2020…fits in folders p/0, p/1, p/2, each with
 * file_md5 = md5(filename): a stored file whose bytes are its own name
 * matches.
 */
async function diskfileRows(db: TestDatabase, n: number): Promise<Row[]> {
  return withClient(db.url, async (c) => {
    await c.query(
      `INSERT INTO file (name)
       SELECT 'N2020' || lpad(g::text, 6, '0') || 'S0001.fits' FROM generate_series(1, $1) g`,
      [n],
    );
    await c.query(
      `INSERT INTO diskfile (file_id, filename, path, present, canonical, file_md5, file_size,
                             compressed, data_md5, data_size, lastmod, entrytime)
       SELECT id, name, 'p/' || (id % 3), true, true, md5(name), length(name),
              false, md5(name), length(name), now(), now()
         FROM file ORDER BY id`,
    );
    const { rows } = await c.query<Row>(
      "SELECT id, path, filename FROM diskfile ORDER BY id",
    );
    return rows;
  });
}

const presentIds = (db: TestDatabase) =>
  withClient(db.url, async (c) =>
    (
      await c.query<{ id: number }>(
        "SELECT id FROM diskfile WHERE present ORDER BY id",
      )
    ).rows.map((r) => r.id),
  );

function baseEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("FITSFLEET_") && !k.startsWith("FFTEST_")) {
      env[k] = v;
    }
  }
  env.FITSFLEET_STACK_DIR = join(tmpdir(), `ff-no-stack-${randomUUID()}`);
  return env;
}

/**
 * Starts the real CLI, waits until the run's cursor has moved past `after`
 * rows, and SIGKILLs it; returns the cursor's count at the kill.
 */
async function killMidRun(
  db: TestDatabase,
  args: string[],
  env: Record<string, string>,
  after: number,
): Promise<number> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...baseEnv(), ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => resolve(code)),
  );
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      const checked = await withClient(db.url, async (c) => {
        const { rows } = await c.query<{ checked: string }>(
          "SELECT checked::text FROM fitsfleet.rollcall_runs",
        );
        return rows[0] === undefined ? 0 : Number(rows[0].checked);
      });
      if (checked >= after) {
        break;
      }
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(
          `the rollcall ended (${child.exitCode}) before it could be killed: ${stderr}`,
        );
      }
      await sleep(20);
    }
    child.kill("SIGKILL");
    assert.equal(await exited, null, "killed, not exited");
  } finally {
    child.kill("SIGKILL");
  }
  return withClient(db.url, async (c) =>
    Number(
      (
        await c.query<{ checked: string }>(
          "SELECT checked::text FROM fitsfleet.rollcall_runs",
        )
      ).rows[0]!.checked,
    ),
  );
}

function rollcallArgs(
  db: TestDatabase,
  storage: string,
  extra: string[] = [],
): string[] {
  return [
    "--database-url",
    db.url,
    "--storage",
    storage,
    "--json",
    "rollcall",
    ...extra,
  ];
}

async function rollcallCli(
  db: TestDatabase,
  storage: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<RollcallReport> {
  const result = await runCli(rollcallArgs(db, storage, extra), env, {
    timeoutMs: 120_000,
  });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as RollcallReport;
}

/** Files for rows with id % 4 != 0; the others only under the wrong folder. */
function diskVolume(t: TestContext, rows: Row[]): string {
  const root = tempDir(t, "ff-rollcall-");
  for (const row of rows) {
    const dir =
      row.id % 4 === 0 ? join(root, "elsewhere") : join(root, row.path);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, row.filename), row.filename);
  }
  return root;
}

describe("rollcall", () => {
  it("on disk: marks exactly the files missing at their full path, in batches; killed mid-run and resumed, it ends where one run would", async (t) => {
    const db = await testDatabase(t);
    const rows = await diskfileRows(db, 3000);
    const root = diskVolume(t, rows);
    const expected = rows.filter((r) => r.id % 4 !== 0).map((r) => r.id);

    const dry = await rollcallCli(db, root, ["--dry-run"]);
    assert.equal(dry.checked, 3000);
    assert.equal(dry.missing, 750);
    assert.equal(
      (await presentIds(db)).length,
      3000,
      "a dry run marks nothing",
    );
    assert.equal(
      await withClient(db.url, async (c) =>
        Number(
          (await c.query("SELECT count(*) AS n FROM fitsfleet.rollcall_runs"))
            .rows[0].n,
        ),
      ),
      0,
      "nor keeps a cursor",
    );

    const atKill = await killMidRun(
      db,
      rollcallArgs(db, root, ["--batch-size", "100", "--pause-ms", "60"]),
      {},
      300,
    );
    assert.ok(atKill >= 300 && atKill < 3000, `killed after ${atKill}`);
    const midway = await presentIds(db);
    assert.ok(midway.length < 3000 && midway.length > 750);
    // What the killed run marked is exactly the missing files of its batches.
    const lastId = await withClient(
      db.url,
      async (c) =>
        (
          await c.query<{ last_id: number }>(
            "SELECT last_id FROM fitsfleet.rollcall_runs",
          )
        ).rows[0]!.last_id,
    );
    assert.deepEqual(
      midway,
      rows.filter((r) => r.id > lastId || r.id % 4 !== 0).map((r) => r.id),
    );

    const resumed = await rollcallCli(db, root, ["--batch-size", "100"]);
    assert.equal(resumed.resumed, true);
    assert.equal(resumed.checked, 3000, "over the whole run");
    assert.equal(resumed.checkedNow, 3000 - atKill, "only what was left");
    assert.equal(resumed.missing, 750);
    assert.deepEqual(await presentIds(db), expected);
    // Canonical is left as it was (the reference's rollcall does the same).
    assert.equal(
      await withClient(db.url, async (c) =>
        Number(
          (
            await c.query(
              "SELECT count(*) AS n FROM diskfile WHERE NOT present AND canonical",
            )
          ).rows[0].n,
        ),
      ),
      750,
    );

    // Finished: the same command starts a new run, which finds nothing new.
    const again = await rollcallCli(db, root);
    assert.equal(again.resumed, false);
    assert.equal(again.checked, 2250);
    assert.equal(again.missing, 0);

    const limited = await rollcallCli(db, root, [
      "--limit",
      "10",
      "--file-pre",
      "N20200000",
    ]);
    assert.equal(limited.checked, 10);
    assert.equal(limited.missing, 0);
  });

  it("on S3: by full key (an object under the bare name does not count), killed and resumed", async (t) => {
    const db = await testDatabase(t);
    const rows = await diskfileRows(db, 240);
    const s3 = await testS3(t, "summit");
    for (const row of rows) {
      const key =
        row.id % 4 === 0
          ? `vol/${row.filename}`
          : `vol/${row.path}/${row.filename}`;
      await s3.client.send(
        new PutObjectCommand({
          Bucket: "summit",
          Key: key,
          Body: row.filename,
        }),
      );
    }
    const atKill = await killMidRun(
      db,
      rollcallArgs(db, "s3://summit/vol", [
        "--batch-size",
        "20",
        "--pause-ms",
        "150",
      ]),
      s3.env,
      40,
    );
    assert.ok(atKill >= 40 && atKill < 240, `killed after ${atKill}`);
    const resumed = await rollcallCli(
      db,
      "s3://summit/vol",
      ["--batch-size", "20"],
      s3.env,
    );
    assert.equal(resumed.resumed, true);
    assert.equal(resumed.checked, 240);
    assert.equal(resumed.checkedNow, 240 - atKill);
    assert.equal(resumed.missing, 60);
    assert.deepEqual(
      await presentIds(db),
      rows.filter((r) => r.id % 4 !== 0).map((r) => r.id),
    );
  });

  it("--checkmd5 reports planted mismatches on disk and on S3 (metadata, else the bytes) and changes nothing for them", async (t) => {
    const db = await testDatabase(t);
    const rows = await diskfileRows(db, 12);
    const root = tempDir(t, "ff-rollcall-md5-");
    for (const row of rows) {
      mkdirSync(join(root, row.path), { recursive: true });
      writeFileSync(
        join(root, row.path, row.filename),
        row.id === 3 || row.id === 7 ? "changed since" : row.filename,
      );
    }
    const disk = await rollcallCli(db, root, ["--checkmd5"]);
    assert.equal(disk.missing, 0);
    assert.equal(disk.mismatched, 2);
    assert.deepEqual(
      disk.findings.map((f) => [f.diskfileId, f.kind, f.md5From]),
      [
        [3, "mismatch", "read"],
        [7, "mismatch", "read"],
      ],
    );
    assert.equal((await presentIds(db)).length, 12);

    const s3 = await testS3(t, "md5");
    const { createHash } = await import("node:crypto");
    const md5 = (s: string) => createHash("md5").update(s).digest("hex");
    for (const row of rows) {
      // 2: wrong md5 metadata; 5: no metadata and other bytes; odd ids: no metadata.
      const body = row.id === 5 ? "changed since" : row.filename;
      const metadata =
        row.id === 2
          ? { md5: md5("something else") }
          : row.id % 2 === 0
            ? { md5: md5(body) }
            : undefined;
      await s3.client.send(
        new PutObjectCommand({
          Bucket: "md5",
          Key: `${row.path}/${row.filename}`,
          Body: body,
          ...(metadata === undefined ? {} : { Metadata: metadata }),
        }),
      );
    }
    const onS3 = await rollcallCli(db, "s3://md5", ["--checkmd5"], s3.env);
    assert.equal(onS3.missing, 0);
    assert.deepEqual(
      onS3.findings.map((f) => [f.diskfileId, f.kind, f.md5From]),
      [
        [2, "mismatch", "metadata"],
        [5, "mismatch", "read"],
      ],
    );
    assert.equal(onS3.findings[1]!.foundMd5, md5("changed since"));
  });

  it("refuses bad flags and a missing storage setting", async (t) => {
    const db = await testDatabase(t);
    const root = tempDir(t, "ff-rollcall-bad-");
    for (const extra of [
      ["--limit", "0"],
      ["--concurrency", "many"],
      ["--batch-size", "-5"],
    ]) {
      const r = await runCli(rollcallArgs(db, root, extra));
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(extra[0]!));
    }
    const noStorage = await runCli(["--database-url", db.url, "rollcall"]);
    assert.equal(noStorage.code, 2);
    assert.match(noStorage.stderr, /storage/);
  });
});
