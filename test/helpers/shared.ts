/**
 * The project's shared reference material sits beside the repository (CI
 * clones main with shared/ next to it).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";

import { packageRoot } from "../../lib/paths.js";

export function sharedPath(...parts: string[]): string {
  const path = join(packageRoot(), "..", "shared", ...parts);
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: the tests expect shared/ beside the repository`,
    );
  }
  return path;
}

export const REFERENCE_SCHEMA = sharedPath(
  "docs",
  "reference",
  "fitsstorage-v3-schema.sql",
);
