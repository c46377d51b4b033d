/**
 * What the fault drills share: a PostgreSQL and Redis of the drill file's
 * own (so that restarting or flushing them touches no other test), a corpus
 * of real FITS files large enough that a fault lands mid-run, worker
 * processes run through the real CLI, and the check that every file was
 * ingested exactly once.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { linkSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

import { withClient } from "../../lib/db/connect.js";
import { runMigrations } from "../../lib/db/migrate.js";
import { sleep } from "../../lib/exec.js";
import { packageRoot } from "../../lib/paths.js";
import { stackDown, stackUp, stackUrls } from "../../lib/stack/index.js";
import { clusterPid, startCluster } from "../../lib/stack/postgres.js";
import { type TestArchive, testArchive } from "../helpers/archive.js";

export interface DrillStack {
  adminUrl: string;
  redisUrl: string;
  /** A fresh database with the schema, on this stack. */
  database(name: string): Promise<string>;
  /** Stops PostgreSQL: `fast` (SIGINT) or `immediate` (SIGQUIT, no checkpoint). */
  stopPostgres(mode: "fast" | "immediate"): Promise<void>;
  startPostgres(): Promise<void>;
}

/** A stack of its own; `cleanup` registers its removal (a file's `after` hook). */
export async function drillStack(
  cleanup: (fn: () => Promise<void>) => void,
): Promise<DrillStack> {
  const dir = mkdtempSync(join(tmpdir(), "ff-drill-stack-"));
  cleanup(async () => {
    await stackDown(dir, { purge: true });
    rmSync(dir, { recursive: true, force: true });
  });
  const { state } = await stackUp(dir, { unsafeFast: true });
  const urls = stackUrls(state);
  const pgFolder = join(dir, "postgres");
  const port = state.postgres.port;
  return {
    adminUrl: urls.adminUrl,
    redisUrl: urls.redisUrl,
    async database(name) {
      await withClient(urls.adminUrl, (c) =>
        c.query(`CREATE DATABASE ${name}`),
      );
      const url = new URL(urls.adminUrl);
      url.pathname = `/${name}`;
      await withClient(url.toString(), (c) => runMigrations(c));
      return url.toString();
    },
    async stopPostgres(mode) {
      const pid = clusterPid(pgFolder);
      assert.ok(pid !== undefined, "PostgreSQL runs");
      process.kill(pid, mode === "fast" ? "SIGINT" : "SIGQUIT");
      while (clusterPid(pgFolder) !== undefined) {
        await sleep(20);
      }
    },
    startPostgres: () => startCluster(pgFolder, port),
  };
}

/**
 * The test archive (fixtures, header dumps, three broken files) plus copies
 * of the good files under further names, so a run takes long enough for a
 * fault to land in the middle of it.
 */
export function drillCorpus(
  t: Pick<TestContext, "after">,
  copies: number,
): TestArchive {
  const archive = testArchive(t as TestContext, { dumpsPerInstrument: 6 });
  const originals = [...archive.good];
  for (let c = 1; c <= copies; c++) {
    const path = `copies/${c}`;
    mkdirSync(join(archive.root, path), { recursive: true });
    originals.forEach((f, i) => {
      const name = `N2098${String(c).padStart(2, "0")}01S${String(i + 1).padStart(4, "0")}.fits${f.name.endsWith(".bz2") ? ".bz2" : ""}`;
      linkSync(
        join(archive.root, f.path, f.name),
        join(archive.root, path, name),
      );
      archive.good.push({ path, name });
    });
  }
  return archive;
}

export interface WorkerProcess {
  child: ChildProcess;
  exit: Promise<{ code: number | null; stderr: string }>;
}

/** `fitsfleet worker ingest --empty …` as its own process. */
export function spawnWorker(
  t: Pick<TestContext, "after">,
  env: { databaseUrl: string; redisUrl: string },
  args: string[],
): WorkerProcess {
  const child = spawn(
    process.execPath,
    [
      join(packageRoot(), "dist", "cli", "main.js"),
      "worker",
      "ingest",
      "--empty",
      ...args,
    ],
    {
      env: {
        ...process.env,
        FITSFLEET_DATABASE_URL: env.databaseUrl,
        FITSFLEET_REDIS_URL: env.redisUrl,
        FITSFLEET_LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  t.after(() => {
    if (child.exitCode === null) {
      child.kill("SIGKILL");
    }
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once("exit", (code) => resolve({ code, stderr })),
  );
  return { child, exit };
}

export async function ledgerCounts(url: string) {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ state: string; n: string }>(
      "SELECT state, count(*) AS n FROM fitsfleet.ingest_ledger GROUP BY state",
    );
    const by = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    return {
      done: by.done ?? 0,
      failed: by.failed ?? 0,
      open: (by.queued ?? 0) + (by.active ?? 0),
    };
  });
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  ms = 180_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(25);
  }
}

/**
 * Every good file exactly once: each done ledger row has one present
 * diskfile (its own), and there are no other diskfiles, headers or work
 * items; every ledger row is done, or failed with a reason.
 */
export async function assertExactlyOnce(
  url: string,
  archive: TestArchive,
  extraFailed = 0,
): Promise<void> {
  await withClient(url, async (c) => {
    const { rows: ledger } = await c.query<{
      state: string;
      n: string;
      reasonless: string;
    }>(
      `SELECT state, count(*) AS n, count(*) FILTER (WHERE error IS NULL) AS reasonless
         FROM fitsfleet.ingest_ledger GROUP BY state ORDER BY state`,
    );
    const by = Object.fromEntries(ledger.map((r) => [r.state, r]));
    assert.deepEqual(
      Object.keys(by).filter((s) => s !== "done" && s !== "failed"),
      [],
      "every ledger row is done or failed",
    );
    assert.equal(
      Number(by.failed?.reasonless ?? 0),
      0,
      "failures have reasons",
    );
    const done = Number(by.done?.n ?? 0);
    assert.equal(done, archive.good.length - extraFailed, "done files");
    assert.equal(
      Number(by.failed?.n ?? 0),
      archive.corrupt.length + extraFailed,
      "failed files",
    );
    const { rows } = await c.query<{
      diskfiles: string;
      present: string;
      headers: string;
      calcache: string;
      mismatched: string;
    }>(
      `SELECT (SELECT count(*) FROM diskfile) AS diskfiles,
              (SELECT count(*) FROM diskfile WHERE present) AS present,
              (SELECT count(*) FROM header) AS headers,
              (SELECT count(*) FROM calcachequeue) AS calcache,
              (SELECT count(*) FROM fitsfleet.ingest_ledger l
                WHERE l.state = 'done' AND 1 <> (
                  SELECT count(*) FROM diskfile d
                   WHERE d.path = l.path AND d.filename = l.filename AND d.present
                     AND d.id = l.diskfile_id)) AS mismatched`,
    );
    const r = rows[0]!;
    assert.deepEqual(
      {
        diskfiles: Number(r.diskfiles),
        present: Number(r.present),
        headers: Number(r.headers),
        calcache: Number(r.calcache),
        mismatched: Number(r.mismatched),
      },
      {
        diskfiles: done,
        present: done,
        headers: done,
        calcache: done,
        mismatched: 0,
      },
    );
  });
}
