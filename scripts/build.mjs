// Compiles the sources to dist/ from scratch and marks the CLI executable.
import { execFileSync } from "node:child_process";
import { chmodSync, rmSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
rmSync("dist", { recursive: true, force: true });
execFileSync(
  process.execPath,
  [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json"],
  {
    stdio: "inherit",
  },
);
chmodSync("dist/cli/main.js", 0o755);
