/**
 * Start-up: `--version`, the root `--help` and the help of the db, stack and
 * fits commands must not import the heavy modules (cli/program.ts, start-up). Not timed: the test looks at which
 * modules a real run of the built CLI loads.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

import { Help } from "commander";

import { buildProgram, TOP_COMMANDS } from "../../cli/program.js";
import { packageRoot } from "../../lib/paths.js";
import { CLI, runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

const RECORDER = join(packageRoot(), "test", "helpers", "import-recorder.mjs");

/** A module is heavy when it costs tens of milliseconds or more to import. */
const HEAVY: readonly [string, RegExp][] = [
  ["the AWS SDK", /\/node_modules\/@aws-sdk\//],
  ["BullMQ", /\/node_modules\/bullmq\//],
  ["ioredis", /\/node_modules\/ioredis\//],
  ["sharp", /\/node_modules\/sharp\//],
  ["pg", /\/node_modules\/pg\//],
  ["pg-copy-streams", /\/node_modules\/pg-copy-streams\//],
  ["zod", /\/node_modules\/zod\//],
  ["the astro tables", /\/dist\/lib\/astro\/[^/]+-data\.js$/],
  ["the WebAssembly kernel", /\/dist\/lib\/preview\/float-kernel-wasm\.js$/],
];

async function loadedBy(
  t: Parameters<typeof tempDir>[0],
  args: readonly string[],
): Promise<string[]> {
  const log = join(tempDir(t, "ff-imports-"), "imports.txt");
  // A command that fails (no database configured) has still loaded what it runs on.
  await promisify(execFile)(
    process.execPath,
    ["--import", RECORDER, CLI, ...args],
    {
      env: {
        ...process.env,
        FF_IMPORT_LOG: log,
        FITSFLEET_STACK_DIR: join(tmpdir(), "ff-no-stack-here"),
      },
    },
  ).catch(() => undefined);
  return readFileSync(log, "utf8").split("\n").filter(Boolean);
}

const heavyIn = (urls: readonly string[]) =>
  HEAVY.filter(([, pattern]) => urls.some((u) => pattern.test(u))).map(
    ([name]) => name,
  );

describe("start-up", () => {
  for (const args of [["--version"], ["--help"], ["help"]]) {
    it(`\`fitsfleet ${args.join(" ")}\` loads none of the heavy modules`, async (t) => {
      const urls = await loadedBy(t, args);
      assert.ok(
        urls.some((u) => u.endsWith("/dist/cli/main.js")),
        "the recorder saw nothing",
      );
      assert.deepEqual(heavyIn(urls), []);
    });
  }

  // A group's commands import their implementation in their actions, so a
  // help reads the command tree and nothing behind it.
  for (const args of [
    ["db", "--help"],
    ["db", "init", "--help"],
    ["db", "status", "--help"],
    ["db", "diff", "--help"],
    ["stack", "--help"],
    ["stack", "up", "--help"],
    ["stack", "status", "--help"],
    ["stack", "down", "--help"],
    ["fits", "--help"],
    ["fits", "inspect", "--help"],
    ["rebuild", "--help"],
    ["rebuild", "enqueue", "--help"],
    ["rebuild", "status", "--help"],
    ["rebuild", "reconcile", "--help"],
    ["worker", "--help"],
    ["worker", "ingest", "--help"],
    ["worker", "preview", "--help"],
    ["ami", "--help"],
    ["ami", "bake", "--help"],
    ["ami", "list", "--help"],
    ["ami", "prune", "--help"],
  ]) {
    it(`\`fitsfleet ${args.join(" ")}\` loads none of the heavy modules`, async (t) => {
      const urls = await loadedBy(t, args);
      assert.ok(
        urls.some((u) => u.endsWith(`/dist/cli/commands/${args[0]}/index.js`)),
        "the recorder did not see the command group",
      );
      assert.deepEqual(heavyIn(urls), []);
    });
  }

  it("a command's modules are loaded when it runs (the recorder sees them)", async (t) => {
    // It fails for want of a database, after loading what it runs on.
    const urls = await loadedBy(t, ["rebuild", "status"]);
    assert.ok(heavyIn(urls).includes("BullMQ"), heavyIn(urls).join(", "));
  });

  it("the root help's placeholders describe the commands as loading them does", async () => {
    const help = new Help();
    for (const top of TOP_COMMANDS) {
      const command = await top.load();
      assert.equal(command.name(), top.name);
      assert.equal(command.description(), top.description, top.name);
      assert.equal(help.subcommandTerm(command), top.term, top.name);
    }
    const { code, stdout } = await runCli(["--help"]);
    assert.equal(code, 0);
    const full = await buildProgram();
    full.configureHelp({ ...full.configureHelp(), helpWidth: 80 });
    assert.equal(
      stdout.slice(0, full.helpInformation().length),
      full.helpInformation(),
    );
  });
});
