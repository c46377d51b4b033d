import { existsSync } from "node:fs";

import { Command } from "commander";

import { UsageError } from "../../../lib/errors.js";
import {
  defaultManifestPath,
  type DumpManifest,
  verifyManifest,
  writeManifest,
} from "../../../lib/upgrade/manifest.js";
import { commandContext } from "../../context.js";

export interface ManifestResult {
  dump: string;
  manifest: string;
  action: "written" | "verified";
  files: number;
  bytes: number;
}

/** Writes the manifest of a dump, or with `verify` checks the dump against it. */
export async function dumpManifest(
  dump: string,
  options: { verify?: boolean; output?: string } = {},
): Promise<ManifestResult> {
  if (!existsSync(dump)) {
    throw new UsageError(`${dump}: no such file or directory`);
  }
  const path = options.output ?? defaultManifestPath(dump);
  const manifest: DumpManifest =
    options.verify === true
      ? await verifyManifest(dump, path)
      : await writeManifest(dump, path);
  return {
    dump,
    manifest: path,
    action: options.verify === true ? "verified" : "written",
    files: manifest.files.length,
    bytes: manifest.files.reduce((sum, f) => sum + f.size, 0),
  };
}

export function manifestCommand(): Command {
  return new Command("manifest")
    .description(
      "write a sha256 manifest for a dump you know is good, or check a dump against its manifest (exit 1 on any difference)",
    )
    .argument("<dump>", "pg_dump archive: a custom-format file or a directory")
    .option(
      "--verify",
      "check the dump against the manifest instead of writing one",
    )
    .option("--output <file>", "manifest path (default: <dump>.manifest.json)")
    .action(
      async (
        dump: string,
        options: { verify?: boolean; output?: string },
        command: Command,
      ) => {
        const { output } = commandContext(command);
        const result = await dumpManifest(dump, options);
        output.result(
          result,
          (r) =>
            `${r.action} ${r.manifest}: ${r.files} file(s), ${r.bytes} bytes`,
        );
      },
    );
}
