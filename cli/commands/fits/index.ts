/**
 * The `fits` commands' names, options and help. The action imports the FITS
 * and Gemini modules (with the astrometry tables) only when it runs, so that
 * `fits inspect --help` stays fast (cli/program.ts, start-up).
 */
import { Command } from "commander";

import type { InspectFlags } from "./inspect.js";

export function fitsCommand(): Command {
  return new Command("fits")
    .description("read FITS files as the ingest does")
    .addCommand(
      new Command("inspect")
        .description(
          "show a FITS file's HDUs, cards and checksums (plain or .bz2; exit 1 if any file is damaged)",
        )
        .argument(
          "<files...>",
          "FITS files (.fits or .fits.bz2), or directories: the .fits and .fits.bz2 files under them, at any depth",
        )
        .option("--cards", "print every header card")
        .option(
          "--descriptors",
          "also print the descriptor values the rows are made from",
        )
        .option(
          "--headers-only",
          "skip data units instead of reading them (no checksums; uncompressed files)",
        )
        .action(
          async (files: string[], flags: InspectFlags, command: Command) =>
            (await import("./inspect.js")).inspectAction(files, flags, command),
        ),
    );
}
