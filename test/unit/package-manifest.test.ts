/**
 * npm (11.16 and later) warns at every install about dependencies whose
 * install scripts package.json's `allowScripts` does not cover, and npm 12
 * skips them: every package the lockfile marks as having one must be listed.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";

import { packageRoot } from "../../lib/paths.js";

const read = (name: string): unknown =>
  JSON.parse(readFileSync(join(packageRoot(), name), "utf8"));

it("allowScripts covers every dependency with an install script", () => {
  const lock = read("package-lock.json") as {
    packages: Record<string, { hasInstallScript?: boolean }>;
  };
  const { allowScripts = {} } = read("package.json") as {
    allowScripts?: Record<string, boolean>;
  };
  const withScripts = Object.entries(lock.packages)
    .filter(([, entry]) => entry.hasInstallScript === true)
    .map(([path]) => path.slice(path.lastIndexOf("node_modules/") + 13));
  assert.ok(withScripts.length > 0, "the lockfile lists no install scripts");
  const uncovered = withScripts.filter(
    (name) =>
      allowScripts[name] !== true &&
      !Object.keys(allowScripts).some(
        (key) => key.startsWith(`${name}@`) && allowScripts[key] === true,
      ),
  );
  assert.deepEqual(uncovered, [], "run `npm install-scripts approve <pkg>`");
});
