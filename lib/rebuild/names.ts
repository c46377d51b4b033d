/**
 * The reference's rules for file names (DOMAIN.md §1.4, §2.1): which stored
 * files a rebuild takes, the archive's name for a file, the queue sort key
 * that puts the newest science first, and the --file-re day shortcuts.
 */
import { UsageError } from "../errors.js";

/** FITS files, plain or bzip2-compressed; not temporary or tiled files, not previews. */
export function isIngestable(name: string): boolean {
  return (
    /\.fits(\.bz2)?$/.test(name) &&
    !/tmp|tiled/.test(name) &&
    !name.endsWith(".jpg")
  );
}

/** `file.name`: the stored name without a trailing .bz2. */
export function trimName(filename: string): string {
  return filename.endsWith(".bz2") ? filename.slice(0, -4) : filename;
}

/**
 * `sortkey_from_filename`: 'z' + date + number for standard Gemini names
 * (N20200127S0023…, IGRINS SDCH_20240429_0122…), 'y' for sky-camera images,
 * 'x' for observing logs, 'aaaa' + name for anything else; queues pop it
 * in descending order.
 */
export function sortKey(filename: string): string {
  const standard =
    /^[NS](\d{8})\D(\d{4})/.exec(filename) ??
    /^SDC[SHK]_(\d{8})_(\d{4})/.exec(filename);
  if (standard !== null) {
    return `z${standard[1]!}${standard[2]!}`;
  }
  const skycam = /^img_(\d{8})_/.exec(filename);
  if (skycam !== null) {
    return `y${skycam[1]!}${filename}`;
  }
  const obslog = /^(\d{8})_.*_obslog\.txt$/.exec(filename);
  if (obslog !== null) {
    return `x${obslog[1]!}${filename}`;
  }
  return `aaaa${filename}`;
}

const SHORTCUT_DAYS: Record<string, number> = {
  today: 1,
  twoday: 2,
  fourday: 4,
  tenday: 10,
  twentyday: 20,
};

/**
 * --file-re: a regular expression searched (not anchored) in the file name, or
 * a shortcut (today, twoday, fourday, tenday, twentyday) for the UTC dates of
 * the last 1, 2, 4, 10 or 20 days as YYYYMMDD alternatives.
 */
export function fileRegex(value: string, now = new Date()): RegExp {
  const days = SHORTCUT_DAYS[value];
  if (days !== undefined) {
    const dates = Array.from({ length: days }, (_, i) => {
      const d = new Date(now.getTime() - i * 86_400_000);
      return d.toISOString().slice(0, 10).replaceAll("-", "");
    });
    return new RegExp(dates.join("|"));
  }
  try {
    return new RegExp(value);
  } catch (error) {
    throw new UsageError(
      `--file-re ${JSON.stringify(value)}: not a valid regular expression (${(error as Error).message})`,
      {
        suggestion: `give a regular expression, or one of ${Object.keys(SHORTCUT_DAYS).join(", ")}`,
      },
    );
  }
}
