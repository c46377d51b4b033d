/**
 * The folder and file names a storage accepts, the same on disk and on S3:
 * relative folders without "." or ".." parts, names without "/".
 */
import { UsageError } from "../errors.js";

/** `a/b` from "a/b", "/a/b/" or ""; refuses "..", "." and empty segments. */
export function normaliseStoragePath(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, "");
  if (trimmed === "") {
    return "";
  }
  for (const segment of trimmed.split("/")) {
    if (
      segment === "" ||
      segment === "." ||
      segment === ".." ||
      /\0/.test(segment)
    ) {
      throw new UsageError(
        `invalid storage path ${JSON.stringify(path)}: give a folder relative to the storage root, without "." or ".." parts`,
      );
    }
  }
  return trimmed;
}

export function checkName(name: string): string {
  if (name === "" || name === "." || name === ".." || /[/\0]/.test(name)) {
    throw new UsageError(
      `invalid file name ${JSON.stringify(name)}: a name has no "/" and is not "." or ".."`,
    );
  }
  return name;
}
