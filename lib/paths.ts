/**
 * Where the package's own files are. Code runs both from source (tsx) and from
 * `dist/`, so paths are found by walking up to our package.json rather than by
 * counting `..`.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

export function packageRoot(): string {
  if (root !== undefined) {
    return root;
  }
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, "utf8")) as {
        name?: string;
      };
      if (name === "fitsfleet") {
        root = dir;
        return dir;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error("cannot find the fitsfleet package root (package.json)");
    }
    dir = parent;
  }
}

export function packageVersion(): string {
  const { version } = JSON.parse(
    readFileSync(join(packageRoot(), "package.json"), "utf8"),
  ) as {
    version: string;
  };
  return version;
}

export function migrationsDir(): string {
  return join(packageRoot(), "migrations");
}
