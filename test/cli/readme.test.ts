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

it("every table row in the README has as many cells as its header (a `|` in a cell splits it)", () => {
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, "")
      .split(/(?<!\\)\|/).length;
  let header: number | undefined;
  const wrong: string[] = [];
  for (const line of readme.split("\n")) {
    if (!line.trimStart().startsWith("|")) {
      header = undefined;
      continue;
    }
    header ??= cells(line);
    if (cells(line) !== header) {
      wrong.push(line.trim().slice(0, 80));
    }
  }
  assert.deepEqual(wrong, []);
});
