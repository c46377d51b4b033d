/**
 * `upgrade migrate-tables` against the hand-run baseline, `pg_restore
 * --data-only --single-transaction -L list` (the TABLE DATA and SEQUENCE SET
 * entries of the same tables), into the same fresh schema, in the same run.
 *
 * pg_restore cannot map the v2 → v3 differences (archiveuser → users, dropped
 * columns), so the like-for-like race uses a dump of the same data already in
 * v3 form: a v2 fixture is generated, migrated once into v3 by fitsfleet, and
 * that database is dumped. Both contenders then load that dump into fresh
 * databases made by `db init`. The v2 → v3 run from the v2 dump is timed as
 * well, since that is what an upgrade really does.
 *
 * Peak memory is the child process's high-water RSS (VmHWM), polled.
 *
 * Usage: node --import tsx bench/upgrade-migrate.ts [usagelog-rows=2000000] [--fast]
 *   --fast runs the throwaway PostgreSQL with fsync off (quicker, less real).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  createPreviousVersionDatabase,
  dumpDatabase,
} from "../fixtures/previous-version.js";
import { TABLE_PRESETS } from "../lib/archive-tables.js";
import { passwordlessUrl } from "../lib/db/client-programs.js";
import { withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { packageRoot } from "../lib/paths.js";
import { postgresProgram } from "../lib/programs.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";

const args = process.argv.slice(2);
const rows = Number(args.find((a) => /^\d+$/.test(a)) ?? 2_000_000);
const fast = args.includes("--fast");
const dir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-upgrade-"));
// Its own temporary folder: PostgreSQL's user cannot pass through the 0700 one above.
const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-stack-"));
const root = packageRoot();
const cli = join(root, "dist", "cli", "main.js");
const mapping = join(root, "mappings", "fitsstorage-v2-to-v3.json");
// In foreign-key order, which the baseline's restore list must follow.
const TABLES: string[] = [...TABLE_PRESETS.archive, ...TABLE_PRESETS.summit];

interface Measured {
  seconds: number;
  peakMiB: number;
}

/** Runs a program, polling its peak RSS; fails loudly on a non-zero exit. */
function measure(
  program: string,
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(program, argv, {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    let peakKiB = 0;
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const poll = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        peakKiB = Math.max(peakKiB, Number(hwm?.[1] ?? 0));
      } catch {
        // exited between polls
      }
    }, 50);
    child.on("close", (code) => {
      clearInterval(poll);
      if (code !== 0) {
        reject(new Error(`${program} exited ${code}: ${stderr}`));
        return;
      }
      resolve({
        seconds: (performance.now() - started) / 1000,
        peakMiB: peakKiB / 1024,
      });
    });
  });
}

function dbUrl(admin: string, name: string): string {
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

async function freshTarget(admin: string, name: string): Promise<string> {
  await withClient(admin, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = dbUrl(admin, name);
  await withClient(url, (c) => runMigrations(c));
  return url;
}

async function pgRestoreList(dump: string): Promise<string> {
  const { stdout } = await new Promise<{ stdout: string }>(
    (resolve, reject) => {
      const child = spawn(postgresProgram("pg_restore"), ["--list", dump]);
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.on("close", (code) =>
        code === 0
          ? resolve({ stdout: out })
          : reject(new Error("pg_restore --list failed")),
      );
    },
  );
  // The data and sequence values of the preserved tables, as the runbook's -L list would hold them.
  const lines = stdout.split("\n").filter((line) => {
    const data = / TABLE DATA public (\S+) /.exec(line);
    const seq = / SEQUENCE SET public (\S+)_id_seq /.exec(line);
    return (
      (data !== null && TABLES.includes(data[1]!)) ||
      (seq !== null && TABLES.includes(seq[1]!))
    );
  });
  // In foreign-key order (TABLES is), as the runbook must: pg_restore follows the list's order.
  const rank = (line: string) => {
    const name =
      / (?:TABLE DATA|SEQUENCE SET) public (\S+?)(?:_id_seq)? /.exec(
        line,
      )?.[1] ?? "";
    return (line.includes("SEQUENCE SET") ? 100 : 0) + TABLES.indexOf(name);
  };
  lines.sort((a, b) => rank(a) - rank(b));
  const list = join(dir, "restore.list");
  writeFileSync(list, `${lines.join("\n")}\n`);
  return list;
}

try {
  const { state } = await stackUp(stackDir, { unsafeFast: fast });
  const { adminUrl } = stackUrls(state);
  // The target URL goes in the environment: a command line is visible to every user.
  const cliEnv = (url: string) => ({
    ...process.env,
    FITSFLEET_LOG_LEVEL: "error",
    FITSFLEET_DATABASE_URL: url,
  });

  const t = performance.now();
  await withClient(adminUrl, (c) => c.query("CREATE DATABASE v2"));
  await withClient(dbUrl(adminUrl, "v2"), (c) =>
    createPreviousVersionDatabase(c, { usagelogRows: rows }),
  );
  console.log(
    `v2 fixture with ${rows.toLocaleString("en-US")} usagelog rows: ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  const v2Dump = join(dir, "v2.dump");
  await dumpDatabase(dbUrl(adminUrl, "v2"), v2Dump, "custom");

  /** `fitsfleet upgrade migrate-tables` as an operator runs it, into `target`. */
  const fitsfleet = (target: string, from: string, withMapping: boolean) =>
    measure(
      process.execPath,
      [
        cli,
        "upgrade",
        "migrate-tables",
        "--from",
        from,
        ...(withMapping ? ["--mapping", mapping] : []),
        "--preset",
        "archive,summit",
      ],
      cliEnv(target),
    );

  // The same data in v3 form, dumped: what both contenders load.
  const v3 = await freshTarget(adminUrl, "v3");
  await fitsfleet(v3, v2Dump, true);
  const v3Dump = join(dir, "v3.dump");
  await dumpDatabase(v3, v3Dump, "custom");
  const list = await pgRestoreList(v3Dump);

  const results: { name: string; m: Measured }[] = [];
  const rounds = 2;
  for (let round = 0; round < rounds; round++) {
    const baselineTarget = await freshTarget(adminUrl, `baseline_${round}`);
    const { url: conn, password } = passwordlessUrl(baselineTarget);
    results.push({
      name: "pg_restore",
      m: await measure(
        postgresProgram("pg_restore"),
        [
          "--data-only",
          "--single-transaction",
          "--use-list",
          list,
          "--dbname",
          conn,
          v3Dump,
        ],
        { ...process.env, PGPASSWORD: password },
      ),
    });
    const ours = await freshTarget(adminUrl, `fitsfleet_${round}`);
    results.push({
      name: "fitsfleet",
      m: await fitsfleet(ours, v3Dump, false),
    });
  }
  const upgrade = await fitsfleet(
    await freshTarget(adminUrl, "upgrade"),
    v2Dump,
    true,
  );

  const best = (name: string) =>
    results
      .filter((r) => r.name === name)
      .reduce((a, b) => (a.m.seconds <= b.m.seconds ? a : b)).m;
  const baseline = best("pg_restore");
  const ours = best("fitsfleet");
  const peak = Math.max(
    ...results.filter((r) => r.name === "fitsfleet").map((r) => r.m.peakMiB),
    upgrade.peakMiB,
  );
  console.log(
    `\nv3 dump, 14 tables, best of ${rounds} (PostgreSQL fsync ${fast ? "off" : "on"}):`,
  );
  console.log(
    `  pg_restore --data-only --single-transaction -L: ${baseline.seconds.toFixed(1)} s (no verification)`,
  );
  console.log(
    `  fitsfleet upgrade migrate-tables:               ${ours.seconds.toFixed(1)} s (with verification and sequences)`,
  );
  console.log(
    `  ratio: ${(baseline.seconds / ours.seconds).toFixed(2)}x (target >= 1.2x)`,
  );
  console.log(
    `v2 -> v3 upgrade from the v2 dump (mapping applied): ${upgrade.seconds.toFixed(1)} s`,
  );
  console.log(
    `fitsfleet peak RSS: ${peak.toFixed(0)} MiB (target < 300 MiB); pg_restore: ${baseline.peakMiB.toFixed(0)} MiB`,
  );
  for (const r of results) {
    console.log(
      `  run ${r.name}: ${r.m.seconds.toFixed(2)} s, ${r.m.peakMiB.toFixed(0)} MiB`,
    );
  }
} finally {
  await stackDown(stackDir, { purge: true }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
