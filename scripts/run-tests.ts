/**
 * The test entry point (`npm run test:only [files…]`). It starts one throwaway
 * PostgreSQL + Redis stack for the whole run with the same code as `fitsfleet
 * stack up`, builds a template database holding the schema, runs the test files
 * with node's test runner, and removes the stack again whatever happens.
 * Each test file clones its own database from the template (test/helpers/db.ts).
 *
 * Each file runs in a test runner of its own, two at a time, in its own
 * process group, with its own temporary folder (TMPDIR) and time limit. A file
 * that is cancelled or killed never runs its `after` hooks, so whatever it
 * started (an s3rver, a cluster, a worker) and the folders it made would
 * outlive it; here they end with the file: its process group is killed, and
 * so is every process that still carries the file's tag in its environment
 * (which reaches those that left the group, such as a daemonised
 * PostgreSQL), and its folder is removed. Anything found is reported.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

import { withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { packageRoot } from "../lib/paths.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";

export const TEMPLATE_DATABASE = "fitsfleet_template";

/** Test files run at once (the standard machine has 2 cores). */
const CONCURRENCY = 2;

/**
 * Time limits per file, first match wins. Files that start servers, clusters
 * and CLI subprocesses took over 180 s on a 2-core machine at a load average
 * of 6 (everything runs about three times slower there), so they get room
 * for that (the harness's own test starts two runs of this script); the rest
 * keep a limit that still stops a hang early.
 */
const TIME_LIMITS: [RegExp, number][] = [
  [
    /^test\/(ami|aws|cli|dashboard|drills|fleet|preview|rebuild|run|stack|storage|summit|upgrade)\//,
    900,
  ],
  [/^test\/unit\/test-harness\.test\.ts$/, 900],
  // Runs the reference's Python over a generated archive as well as ours.
  [/^test\/cal\/oracle\.test\.ts$/, 600],
  [/./, 180],
];

/**
 * FFTEST_TIME_SCALE multiplies every limit: more on a machine slower or
 * busier than that, less to see a cancellation (the harness's own test).
 */
const TIME_SCALE = Number(process.env.FFTEST_TIME_SCALE ?? "1");
if (!(TIME_SCALE > 0)) {
  console.error(
    `FFTEST_TIME_SCALE must be a positive number; got ${process.env.FFTEST_TIME_SCALE}`,
  );
  process.exit(2);
}

/** After the runner's own limit, how long before the file's group is killed regardless. */
const GRACE_SECONDS = 60;

/** The environment variable that marks every process a test file starts. */
const TAG = "FFTEST_FILE_TAG";

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      return testFiles(path);
    }
    return name.endsWith(".test.ts") ? [path] : [];
  });
}

/** Seconds. */
function timeLimit(file: string): number {
  const base = TIME_LIMITS.find(([re]) => re.test(file))?.[1] ?? 180;
  return Math.max(1, Math.round(base * TIME_SCALE));
}

interface Leftover {
  pid: number;
  command: string;
}

/**
 * Processes in process group `group` or whose environment holds `tag`
 * (Linux /proc). Ours alone: the environment of others' processes is not
 * readable, and they are skipped.
 */
function leftovers(group: number, tag: string): Leftover[] {
  const found: Leftover[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) {
      continue;
    }
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      // "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
      const close = stat.lastIndexOf(")");
      const [state, , pgrp] = stat.slice(close + 2).split(" ");
      if (state === "Z") {
        continue; // already dead, waiting to be reaped
      }
      let ours = Number(pgrp) === group;
      if (!ours) {
        const environ = readFileSync(`/proc/${pid}/environ`, "latin1");
        ours = environ.split("\0").includes(`${TAG}=${tag}`);
      }
      if (ours) {
        const command = readFileSync(`/proc/${pid}/cmdline`, "latin1")
          .split("\0")
          .join(" ")
          .trim();
        found.push({ pid, command: command.slice(0, 160) });
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

interface FileResult {
  file: string;
  ok: boolean;
  seconds: number;
  timedOut: boolean;
  left: Leftover[];
  /** Tests passed, failed (or cancelled) and skipped, from the file's runner. */
  passed: number;
  failedTests: number;
  skipped: number;
}

/** Running files' process groups, for a signal to the runner to reach. */
const running = new Set<number>();
let interrupted = false;

async function runFile(
  file: string,
  root: string,
  runDir: string,
  index: number,
  env: NodeJS.ProcessEnv,
): Promise<FileResult> {
  const limit = timeLimit(file);
  // Like /tmp: tests start PostgreSQL as the postgres user inside it.
  const folder = join(runDir, String(index));
  mkdirSync(folder);
  chmodSync(folder, 0o1777);
  const tag = randomUUID();
  console.log(`▶ ${file} (limit ${limit} s)`);
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--test",
      "--test-reporter=spec",
      `--test-timeout=${limit * 1000}`,
      file,
    ],
    {
      cwd: root,
      // Its own process group, so that the group outlives it as a handle on
      // whatever it started.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...env,
        TMPDIR: folder,
        [TAG]: tag,
        ...(process.stdout.isTTY && { FORCE_COLOR: "1" }),
      },
    },
  );
  const group = child.pid;
  const output: Buffer[] = [];
  child.stdout.on("data", (d: Buffer) => output.push(d));
  child.stderr.on("data", (d: Buffer) => output.push(d));
  let timedOut = false;
  const backstop =
    group === undefined
      ? undefined
      : setTimeout(
          () => {
            timedOut = true;
            kill(-group);
          },
          (limit + GRACE_SECONDS) * 1000,
        );
  if (group !== undefined) {
    running.add(group);
  }
  const ok = await new Promise<boolean>((done) => {
    child.once("error", (error) => {
      output.push(Buffer.from(`${String(error)}\n`));
      done(false);
    });
    child.once("close", (code) => done(code === 0));
  });
  clearTimeout(backstop);
  let left: Leftover[] = [];
  if (group !== undefined) {
    running.delete(group);
    left = leftovers(group, tag);
    // A server stopped by an `after` hook may still be on its way out.
    for (let wait = 0; left.length > 0 && wait < 20; wait++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      left = leftovers(group, tag);
    }
    for (const { pid } of left) {
      kill(pid);
    }
    kill(-group);
  }
  rmSync(folder, { recursive: true, force: true });
  process.stdout.write(Buffer.concat(output));
  const seconds = (performance.now() - started) / 1000;
  const notes = [
    `${seconds.toFixed(1)} s of ${limit} s`,
    ...(timedOut ? ["killed at the time limit"] : []),
    ...(left.length > 0
      ? [
          `left ${left.length} process(es) running, killed: ${left
            .map((l) => `${l.pid} ${l.command}`)
            .join("; ")}`,
        ]
      : []),
  ];
  console.log(`${ok && !timedOut ? "✔" : "✖"} ${file} (${notes.join(", ")})`);
  // The runner's own closing lines of this file, for the total over all files.
  const text = Buffer.concat(output).toString();
  const count = (label: string) =>
    Number(new RegExp(`^ℹ ${label} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  return {
    file,
    ok: ok && !timedOut,
    seconds,
    timedOut,
    left,
    passed: count("pass"),
    failedTests: count("fail") + count("cancelled"),
    skipped: count("skipped"),
  };
}

async function runAll(
  files: string[],
  root: string,
  env: NodeJS.ProcessEnv,
): Promise<FileResult[]> {
  const runDir = mkdtempSync(join(tmpdir(), "fft-"));
  chmodSync(runDir, 0o755);
  const results: FileResult[] = [];
  let next = 0;
  try {
    const lane = async () => {
      while (next < files.length && !interrupted) {
        const index = next++;
        results.push(await runFile(files[index]!, root, runDir, index, env));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
  return results;
}

const root = packageRoot();
// Arguments may be test files or folders of them; none means every test.
const requested = process.argv.slice(2);
const files = (requested.length > 0 ? requested : ["test"])
  .flatMap((arg) =>
    statSync(resolve(root, arg)).isDirectory()
      ? testFiles(resolve(root, arg)).map((f) => relative(root, f))
      : [relative(root, resolve(root, arg))],
  )
  .sort();
if (files.length === 0) {
  console.error(`no test files in ${requested.join(" ")}`);
  process.exit(2);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    for (const group of running) {
      try {
        process.kill(-group, signal);
      } catch {
        // already gone
      }
    }
  });
}

const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-test-"));
let code = 1;
try {
  const { state } = await stackUp(stackDir, { unsafeFast: true });
  const urls = stackUrls(state);
  await withClient(urls.adminUrl, (client) =>
    client.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`),
  );
  const templateUrl = new URL(urls.adminUrl);
  templateUrl.pathname = `/${TEMPLATE_DATABASE}`;
  await withClient(templateUrl.toString(), (client) => runMigrations(client));

  const started = performance.now();
  // Set when this runner is itself started from a test (the harness's own
  // test); node's runner would then skip the files and report success.
  const { NODE_TEST_CONTEXT: _nested, ...inherited } = process.env;
  const results = await runAll(files, root, {
    ...inherited,
    FFTEST_ADMIN_URL: urls.adminUrl,
    FFTEST_REDIS_URL: urls.redisUrl,
    FFTEST_TEMPLATE: TEMPLATE_DATABASE,
  });
  const failed = results.filter((r) => !r.ok);
  const slowest = [...results]
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, 5)
    .map((r) => `${r.file} ${r.seconds.toFixed(0)} s`);
  console.log(
    `\n${results.length} of ${files.length} test files run in ${((performance.now() - started) / 1000).toFixed(0)} s, ${failed.length} failed${failed.length > 0 ? `: ${failed.map((r) => r.file).join(", ")}` : ""}`,
  );
  console.log(`slowest: ${slowest.join(", ")}`);
  const sum = (key: "passed" | "failedTests" | "skipped") =>
    results.reduce((n, r) => n + r[key], 0);
  // One closing line over every file, in the form CI reads; a file that
  // died before its runner summed up counts as a failed test.
  const died = results.filter((r) => !r.ok && r.failedTests === 0).length;
  const leaky = results.filter((r) => r.left.length > 0);
  if (leaky.length > 0) {
    console.log(
      `left processes behind (killed): ${leaky.map((r) => r.file).join(", ")}`,
    );
  }
  console.log(
    `tests: ${sum("passed")} passed, ${sum("failedTests") + died} failed, ${sum("skipped")} skipped`,
  );
  code = interrupted
    ? 130
    : failed.length === 0 && results.length === files.length
      ? 0
      : 1;
} finally {
  await stackDown(stackDir, { purge: true });
}
process.exitCode = code;
