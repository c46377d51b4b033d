/**
 * What the test harness promises when a test does not end well: a server
 * started by a helper dies with the process that owns it, and the runner
 * (scripts/run-tests.ts) kills whatever a test file left running and removes
 * its temporary folder.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { packageRoot } from "../../lib/paths.js";
import { tempDir } from "../helpers/tmp.js";

/** Whether `pid` runs (a zombie, dead but not yet reaped, does not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Waits until `pids` are all gone; gives up after a minute so a failure cannot hang the run. */
async function gone(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 600 && pids.some(alive); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return pids.filter(alive);
}

async function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of stream) {
    text += String(chunk);
    if (text.includes("\n")) {
      return text.slice(0, text.indexOf("\n"));
    }
  }
  throw new Error(`the stream ended before a line: ${text}`);
}

describe("test harness", () => {
  it("an s3rver started by the helper dies when its owning process is SIGKILLed", async (t) => {
    const helper = join(packageRoot(), "test", "helpers", "s3.ts");
    const owner = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import { testS3 } from ${JSON.stringify(helper)};
         const s3 = await testS3({ after() {} });
         console.log(s3.pid);
         setInterval(() => undefined, 60_000);`,
      ],
      {
        cwd: packageRoot(),
        stdio: ["ignore", "pipe", "inherit"],
        // The server's folder, which the killed owner cannot remove.
        env: { ...process.env, TMPDIR: tempDir(t) },
      },
    );
    t.after(() => owner.kill("SIGKILL"));
    const server = Number(await firstLine(owner.stdout));
    assert.ok(alive(server), "the server runs while its owner does");
    owner.kill("SIGKILL");
    await once(owner, "exit");
    assert.deepEqual(await gone([server]), [], "the server died too");
  });

  it("the runner kills what a test file leaves running and removes its folder", async (t) => {
    const dir = tempDir(t);
    const record = join(dir, "left.json");
    const file = join(dir, "leaky.test.ts");
    writeFileSync(
      file,
      `import { spawn } from "node:child_process";
       import { writeFileSync, writeFileSync as touch } from "node:fs";
       import { tmpdir } from "node:os";
       import { join } from "node:path";
       import { it } from "node:test";
       it("leaves two processes and a file behind", () => {
         // One in the file's process group, one in a session of its own.
         const inGroup = spawn("sleep", ["300"], { stdio: "ignore" });
         const away = spawn("sleep", ["300"], { stdio: "ignore", detached: true });
         inGroup.unref();
         away.unref();
         touch(join(tmpdir(), "made-by-the-test"), "");
         writeFileSync(${JSON.stringify(record)}, JSON.stringify({
           pids: [inGroup.pid, away.pid],
           tmpdir: tmpdir(),
         }));
       });
      `,
    );
    const runner = spawn(
      process.execPath,
      ["--import", "tsx", join("scripts", "run-tests.ts"), file],
      { cwd: packageRoot(), stdio: ["ignore", "pipe", "pipe"] },
    );
    t.after(() => runner.kill("SIGKILL"));
    let output = "";
    runner.stdout.on("data", (d: Buffer) => (output += d.toString()));
    runner.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const [code] = (await once(runner, "exit")) as [number | null];
    assert.equal(code, 0, output);
    assert.ok(existsSync(record), output);
    const left = JSON.parse(readFileSync(record, "utf8")) as {
      pids: number[];
      tmpdir: string;
    };
    assert.equal(left.pids.length, 2);
    assert.deepEqual(await gone(left.pids), [], "both processes were killed");
    assert.match(output, /left 2 process\(es\) running, killed: .*sleep 300/);
    assert.equal(existsSync(left.tmpdir), false, "the file's folder is gone");
  });

  it("a test file cancelled at its time limit leaves no s3rver and no folder behind", async (t) => {
    const dir = tempDir(t);
    const record = join(dir, "started.json");
    const file = join(dir, "hangs.test.ts");
    const helper = join(packageRoot(), "test", "helpers", "s3.ts");
    writeFileSync(
      file,
      `import { writeFileSync } from "node:fs";
       import { tmpdir } from "node:os";
       import { it } from "node:test";
       import { testS3 } from ${JSON.stringify(helper)};
       it("starts an s3rver, then never ends", async (t) => {
         const s3 = await testS3(t);
         writeFileSync(${JSON.stringify(record)}, JSON.stringify({
           pid: s3.pid,
           tmpdir: tmpdir(),
         }));
         await new Promise(() => undefined);
       });
      `,
    );
    const runner = spawn(
      process.execPath,
      ["--import", "tsx", join("scripts", "run-tests.ts"), file],
      {
        cwd: packageRoot(),
        stdio: ["ignore", "pipe", "pipe"],
        // 30 s instead of 180: room for the server to start on a busy machine.
        env: { ...process.env, FFTEST_TIME_SCALE: String(30 / 180) },
      },
    );
    t.after(() => runner.kill("SIGKILL"));
    let output = "";
    runner.stdout.on("data", (d: Buffer) => (output += d.toString()));
    runner.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const [code] = (await once(runner, "exit")) as [number | null];
    assert.equal(code, 1, output);
    assert.match(output, /timed out after 30000ms/);
    assert.ok(existsSync(record), output);
    const started = JSON.parse(readFileSync(record, "utf8")) as {
      pid: number;
      tmpdir: string;
    };
    assert.deepEqual(await gone([started.pid]), [], "the s3rver died");
    assert.equal(
      existsSync(started.tmpdir),
      false,
      "the file's folder is gone",
    );
  });
});
