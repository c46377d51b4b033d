import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

/** A fresh temporary folder, removed when the test (or suite hook) `t` ends. */
export function tempDir(
  t: Pick<TestContext, "after">,
  prefix = "ff-test-",
): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A temporary folder holding the given files (name → content). */
export function folderWith(
  t: Pick<TestContext, "after">,
  files: Record<string, string>,
): string {
  const dir = tempDir(t);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), content);
  }
  return dir;
}
