/**
 * Runs the built CLI (`dist/cli/main.js`, what the `fitsfleet` bin points at) as
 * a subprocess, with an environment free of the developer's FITSFLEET_*
 * settings and a stack folder of its own, so a running personal stack is never
 * picked up by accident.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { packageRoot } from "../../lib/paths.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const CLI = join(packageRoot(), "dist", "cli", "main.js");

export function runCli(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  options: { timeoutMs?: number } = {},
): Promise<CliResult> {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  }
  const base: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (
      !key.startsWith("FITSFLEET_") &&
      !key.startsWith("FFTEST_") &&
      key !== "DATABASE_URL" &&
      key !== "REDIS_URL" &&
      key !== "DEBUG"
    ) {
      base[key] = value;
    }
  }
  // A folder that does not exist: no stack runs there unless the test starts one.
  base.FITSFLEET_STACK_DIR = join(tmpdir(), `ff-no-stack-${randomUUID()}`);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...base, ...env }, timeout: options.timeoutMs ?? 60_000 },
      (error, stdout, stderr) => {
        const code =
          error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
