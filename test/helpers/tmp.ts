import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

/** Folders not yet removed by their test's `after` hook. */
const pending = new Set<string>();

function removeAll(): void {
  for (const dir of pending) {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A fresh temporary folder, removed when the test (or suite hook) `t` ends.
 * A cancelled test (a timeout) skips its hooks, so folders still here when
 * the process exits are removed then; a killed process leaves them to
 * scripts/run-tests.ts, which removes each file's TMPDIR.
 */
export function tempDir(
  t: Pick<TestContext, "after">,
  prefix = "ff-test-",
): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (pending.size === 0) {
    process.off("exit", removeAll);
    process.once("exit", removeAll);
  }
  pending.add(dir);
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
    pending.delete(dir);
  });
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
