/**
 * `fitsfleet cal show` through the real CLI: a frame's cached associations
 * with each calibration's file, type, time and Δt; --live computed now and
 * set against the cache, differences marked; a path or a .bz2 name finds
 * the same frame; a skipped or unsupported frame says why; a file not in
 * the database is an error with exit 1.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";

import type { CalShowResult } from "../../cli/commands/cal/show.js";
import { type AnyClient, withClient } from "../../lib/db/connect.js";
import { generateCalArchive, ingestFrame } from "../helpers/cal-archive.js";
import { runCli } from "../helpers/cli.js";
import { databaseUrl, testEnv } from "../helpers/db.js";
import { queueAll, worker } from "./worker-helpers.js";

let url = "";
const name = `t_${randomBytes(6).toString("hex")}`;

function show(...args: string[]) {
  return runCli(["--database-url", url, "cal", "show", ...args]);
}

async function showJson(...args: string[]): Promise<CalShowResult> {
  const r = await runCli([
    "--database-url",
    url,
    "--json",
    "cal",
    "show",
    ...args,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as CalShowResult;
}

async function cached(c: AnyClient, obsHid: number) {
  const { rows } = await c.query<{
    caltype: string;
    rank: number;
    cal_hid: number;
    filename: string;
    delta: number;
  }>(
    `SELECT c.caltype::text AS caltype, c.rank, c.cal_hid, d.filename,
            extract(epoch FROM b.ut_datetime - s.ut_datetime)::float8 AS delta
       FROM calcache c JOIN header b ON b.id = c.cal_hid JOIN diskfile d ON d.id = b.diskfile_id
       JOIN header s ON s.id = c.obs_hid
      WHERE c.obs_hid = $1 ORDER BY c.caltype, c.rank, c.id`,
    [obsHid],
  );
  return rows;
}

describe("cal show", () => {
  let frame = { id: 0, filename: "" };

  after(() =>
    withClient(testEnv().adminUrl, (c) =>
      c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    ),
  );

  before(async () => {
    // One database for the file: the tests below only read it, except the
    // last, which changes one frame's rows.
    const env = testEnv();
    await withClient(env.adminUrl, (c) =>
      c.query(`CREATE DATABASE ${name} TEMPLATE ${env.template}`),
    );
    url = databaseUrl(name);
    await withClient(url, async (c) => {
      await generateCalArchive(c, 20190615, 25);
      await queueAll(c);
    });
    await worker(url, "show");
    frame = await withClient(url, async (c) => {
      const { rows } = await c.query<{ id: number; filename: string }>(
        `SELECT c.obs_hid AS id, d.filename FROM calcache c
           JOIN header h ON h.id = c.obs_hid JOIN diskfile d ON d.id = h.diskfile_id
          WHERE d.canonical AND h.ut_datetime IS NOT NULL
          GROUP BY c.obs_hid, d.filename ORDER BY count(DISTINCT c.caltype) DESC, c.obs_hid LIMIT 1`,
      );
      return rows[0]!;
    });
  });

  it("prints the cached associations by type and rank, with file, time and Δt", async () => {
    const expected = await withClient(url, (c) => cached(c, frame.id));
    assert.ok(expected.length >= 2, "a frame with several associations");
    const result = await showJson(frame.filename);
    assert.equal(result.source, "cache");
    assert.equal(result.frame.headerId, frame.id);
    assert.equal(result.outcome, "associated");
    assert.deepEqual(
      result.associations.map((a) => [
        a.caltype,
        a.rank,
        a.calHid,
        a.filename,
        a.deltaSeconds,
      ]),
      expected.map((e) => [e.caltype, e.rank, e.cal_hid, e.filename, e.delta]),
    );
    const human = await show(frame.filename);
    assert.equal(human.code, 0, human.stderr);
    for (const e of expected) {
      assert.match(
        human.stdout,
        new RegExp(`${e.caltype}\\s+${e.rank}\\s+${e.filename}`),
      );
    }
    assert.match(human.stdout, /Δt/);
    assert.match(
      human.stdout,
      new RegExp(`from the cache \\(${expected.length} row`),
    );
  });

  it("finds the frame from a path and from its .bz2 name", async () => {
    for (const name of [
      `/data/archive/2019/${frame.filename}`,
      `${frame.filename}.bz2`,
    ]) {
      const result = await showJson(name);
      assert.equal(result.frame.headerId, frame.id, name);
    }
  });

  it("--live agrees with a cache the worker wrote", async () => {
    const result = await showJson("--live", frame.filename);
    assert.equal(result.source, "live");
    assert.equal(result.differences, 0);
    const human = await show("--live", frame.filename);
    assert.match(human.stdout, /live and cached agree/);
  });

  it("says why a frame has none: skipped, unsupported, or waiting in the queue", async () => {
    const skipped = await withClient(url, async (c) => {
      const { rows } = await c.query<{ filename: string }>(
        `SELECT d.filename FROM header h JOIN diskfile d ON d.id = h.diskfile_id
          WHERE h.ut_datetime IS NULL AND h.instrument IS NOT NULL ORDER BY h.id LIMIT 1`,
      );
      await c.query("BEGIN");
      await ingestFrame(c, {
        name: "N20190615S0777.fits",
        table: "gmos",
        header: {
          instrument: "NIFS",
          observation_type: "OBJECT",
          ut_datetime: "2019-06-15T01:00:00",
          qa_state: "Pass",
        },
        inst: null,
        tags: ["SPECT"],
      });
      await c.query("COMMIT");
      return rows[0]?.filename;
    });
    assert.ok(
      skipped !== undefined,
      "the archive has a frame with no ut_datetime",
    );
    const s = await show(skipped);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /skipped: no ut_datetime/);
    const u = await show("N20190615S0777.fits");
    assert.equal(u.code, 0, u.stderr);
    assert.match(
      u.stdout,
      /unsupported: fitsfleet has no calibration rules for NIFS yet/,
    );
    assert.match(u.stdout, /calcachequeue entry \d+: waiting/);
  });

  it("a file not in the database: exit 1, naming it", async () => {
    const r = await show("N19990101S0001.fits");
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /N19990101S0001\.fits: no such file with a header in the database/,
    );
    const json = await runCli([
      "--database-url",
      url,
      "--json",
      "cal",
      "show",
      "nosuch.fits",
    ]);
    assert.equal(json.code, 1);
    assert.match(json.stderr, /nosuch\.fits/);
  });

  it("worker calcache: a bad flag is exit 2 naming it; --json prints the summary", async () => {
    const bad = await runCli([
      "--database-url",
      url,
      "worker",
      "calcache",
      "--batch-size",
      "0",
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--batch-size/);
    const run = await runCli([
      "--database-url",
      url,
      "--json",
      "worker",
      "calcache",
      "--empty",
      "--name",
      "cli",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as {
      name: string;
      outcomes: Record<string, number>;
    };
    assert.equal(summary.name, "cli");
    // The NIFS frame queued above: no rules yet, so its entry is failed.
    assert.equal(summary.outcomes.unsupported, 1);
    const after = await show("N20190615S0777.fits");
    assert.match(
      after.stdout,
      /failed at .*: fitsfleet has no calibration rules for NIFS yet/,
    );
  });

  it("--live marks where the cache differs", async () => {
    const { removed, planted } = await withClient(url, async (c) => {
      const rows = await cached(c, frame.id);
      const first = rows.find((r) => r.caltype !== "processed_bpm")!;
      await c.query(
        "DELETE FROM calcache WHERE obs_hid = $1 AND caltype = $2 AND rank = 0",
        [frame.id, first.caltype],
      );
      // A calibration the rules would not give this frame: another instrument's.
      const { rows: other } = await c.query<{ id: number }>(
        `SELECT min(id) AS id FROM header
          WHERE instrument IS DISTINCT FROM (SELECT instrument FROM header WHERE id = $1)`,
        [frame.id],
      );
      await c.query(
        "INSERT INTO calcache (obs_hid, cal_hid, caltype, rank) VALUES ($1, $2, $3, 99)",
        [frame.id, other[0]!.id, first.caltype],
      );
      return { removed: first, planted: other[0]!.id };
    });
    const result = await showJson("--live", frame.filename);
    assert.ok((result.differences ?? 0) >= 2, JSON.stringify(result));
    const marks = new Map(
      result.associations
        .filter((a) => a.difference !== undefined)
        .map((a) => [`${a.caltype} ${a.calHid}`, a.difference]),
    );
    assert.equal(
      marks.get(`${removed.caltype} ${removed.cal_hid}`),
      "live only",
    );
    assert.equal(marks.get(`${removed.caltype} ${planted}`), "cached only");
    const human = await show("--live", frame.filename);
    assert.match(human.stdout, /live only/);
    assert.match(human.stdout, /cached only/);
    assert.match(human.stdout, /difference\(s\) between live and cached/);
    // From the cache, the planted row is shown as it is.
    const fromCache = await showJson(frame.filename);
    assert.ok(
      fromCache.associations.some((a) => a.calHid === planted && a.rank === 99),
    );
  });
});
