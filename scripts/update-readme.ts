/** Regenerates the README's Commands section from the real `--help` (npm run docs). */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { withUsage } from "../cli/usage.js";
import { packageRoot } from "../lib/paths.js";

const file = join(packageRoot(), "README.md");
const before = readFileSync(file, "utf8");
const after = await withUsage(before);
writeFileSync(file, after);
console.log(after === before ? "README.md is up to date" : "README.md updated");
