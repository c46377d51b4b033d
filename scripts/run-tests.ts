/**
 * The test entry point (`npm run test:only [files…]`). It starts one throwaway
 * PostgreSQL + Redis stack for the whole run with the same code as `fitsfleet
 * stack up`, builds a template database holding the schema, runs the test files
 * with node's test runner, and removes the stack again whatever happens.
 * Each test file clones its own database from the template (test/helpers/db.ts).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

import { withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { packageRoot } from "../lib/paths.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";

export const TEMPLATE_DATABASE = "fitsfleet_template";

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      return testFiles(path);
    }
    return name.endsWith(".test.ts") ? [path] : [];
  });
}

const root = packageRoot();
// Arguments may be test files or folders of them; none means every test.
const requested = process.argv.slice(2);
const files = (requested.length > 0 ? requested : ["test"])
  .flatMap((arg) =>
    statSync(join(root, arg)).isDirectory()
      ? testFiles(join(root, arg)).map((f) => relative(root, f))
      : [arg],
  )
  .sort();
if (files.length === 0) {
  console.error(`no test files in ${requested.join(" ")}`);
  process.exit(2);
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

  code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--test",
        "--test-reporter=spec",
        "--test-concurrency=2",
        // A hang fails its test instead of stalling CI.
        "--test-timeout=180000",
        ...files,
      ],
      {
        cwd: root,
        stdio: "inherit",
        env: {
          ...process.env,
          FFTEST_ADMIN_URL: urls.adminUrl,
          FFTEST_REDIS_URL: urls.redisUrl,
          FFTEST_TEMPLATE: TEMPLATE_DATABASE,
        },
      },
    );
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => child.kill(signal));
    }
    child.on("exit", (exitCode, signal) =>
      resolve(exitCode ?? (signal === null ? 1 : 128)),
    );
  });
} finally {
  await stackDown(stackDir, { purge: true });
}
process.exitCode = code;
