import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";

import { withUsage } from "../../cli/usage.js";
import { packageRoot } from "../../lib/paths.js";

const readme = readFileSync(join(packageRoot(), "README.md"), "utf8");

it("the README's Commands section is the real --help (run `npm run docs` to refresh it)", async () => {
  assert.equal(readme, await withUsage(readme));
});

it("the README opens with the two fresh-machine commands", () => {
  const quickStart = readme.slice(
    0,
    readme.indexOf("## ", readme.indexOf("## Quick start") + 3),
  );
  assert.match(quickStart, /\.\/scripts\/setup\.sh && npm run demo/);
  assert.match(quickStart, /\.\/scripts\/setup\.sh && npm test/);
});
