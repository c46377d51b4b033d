import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";

import type { FileReport } from "../../cli/commands/fits/inspect.js";
import { runCli } from "../helpers/cli.js";
import { loadHeaderDumps, writeDumpAsFits } from "../helpers/header-dumps.js";
import { sharedPath } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

it("fits inspect reports HDUs and checksums, and names each damaged file (exit 1)", async (t) => {
  const gmos = sharedPath(
    "fixtures",
    "fits",
    "gemini",
    "gmos-s_illum_HAM_44_12amp_v1.fits.bz2",
  );
  const notFits = join(tempDir(t), "notes.fits");
  writeFileSync(notFits, "observing log, not FITS\n");

  const good = await runCli(["--json", "fits", "inspect", gmos]);
  assert.equal(good.code, 0, good.stderr);
  const [report] = JSON.parse(good.stdout) as FileReport[];
  assert.ok(report?.ok);
  assert.equal(report.hdus.length, 13);
  assert.deepEqual(report.hdus[1]?.axes, [128, 1056]);
  assert.equal(report.hdus[1]?.extname, "SCI");
  assert.equal(report.tags?.instrumentClass, "GMOS");
  assert.equal(report.descriptors?.values.instrument, "GMOS-S");
  assert.match(
    String(report.descriptors?.values.ut_datetime),
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/,
  );
  // The rows an ingest would write: one gmos row with the 12 amplifiers joined.
  assert.equal(report.rows?.header.instrument, "GMOS-S");
  assert.equal(report.rows?.header.telescope, "Gemini-South");
  assert.equal(report.rows?.instrument[0]?.table, "gmos");
  assert.equal(
    String(report.rows?.instrument[0]?.values.array_name).split("+").length,
    12,
  );
  assert.ok(
    report.tags.tags.includes("GMOS") && report.tags.tags.includes("SOUTH"),
    report.tags.tags.join(" "),
  );
  assert.equal(
    report.fileMd5,
    execFileSync("md5sum", [gmos], { encoding: "utf8" }).split(" ")[0],
  );
  assert.equal(
    report.dataMd5,
    execFileSync("sh", ["-c", `bzip2 -dc '${gmos}' | md5sum`], {
      encoding: "utf8",
    }).split(" ")[0],
  );

  const mixed = await runCli([
    "fits",
    "inspect",
    "--cards",
    gmos,
    notFits,
    "/nonexistent.fits",
  ]);
  assert.equal(mixed.code, 1);
  assert.match(mixed.stdout, /hdu\s+type\s+extname\s+bitpix/);
  assert.match(mixed.stdout, /^ {2}tags \(GMOS\): .*GEMINI.*GMOS/m);
  assert.match(mixed.stdout, /^ {2}instrument\s+GMOS-S$/m);
  assert.match(mixed.stdout, /^ {2}gmos column\s+value$/m);
  assert.match(mixed.stdout, /^ {2}detector_binning\s+4x4$/m);
  assert.match(
    mixed.stdout,
    /^ {2}SIMPLE {2}= {20}T/m,
    "--cards prints the card images",
  );
  assert.match(
    mixed.stdout,
    new RegExp(
      `${notFits}\\n  error: .*not a FITS file: it does not start with SIMPLE =`,
    ),
  );
  assert.match(
    mixed.stdout,
    /\/nonexistent\.fits: cannot read: no such file$/m,
  );
  assert.match(mixed.stderr, /error: 2 of 3 file\(s\) could not be read/);
});

it("fits inspect says in words why a file cannot be read", async (t) => {
  const dir = tempDir(t);
  const locked = join(dir, "locked.fits");
  writeFileSync(locked, "x");
  chmodSync(locked, 0o000);
  const cases: [string, string][] = [
    [join(dir, "missing.fits"), "no such file"],
    [join(locked, "inside.fits"), "a folder in its path is a file"],
  ];
  // root reads a file whatever its mode
  if (process.getuid?.() !== 0) {
    cases.push([locked, "permission denied"]);
  }
  for (const [file, words] of cases) {
    const { code, stdout } = await runCli(["fits", "inspect", file]);
    assert.equal(code, 1);
    assert.equal(stdout, `${file}\n  error: ${file}: cannot read: ${words}\n`);
  }
});

it("fits inspect of a directory inspects the .fits and .fits.bz2 files under it, at any depth", async (t) => {
  const gmos = sharedPath(
    "fixtures",
    "fits",
    "gemini",
    "gmos-s_illum_HAM_44_12amp_v1.fits.bz2",
  );
  const dir = tempDir(t);
  mkdirSync(join(dir, "2021", "deep"), { recursive: true });
  copyFileSync(gmos, join(dir, "2021", "deep", "S20210101S0001.fits.bz2"));
  copyFileSync(gmos, join(dir, "A.fits.bz2"));
  writeFileSync(join(dir, "2021", "broken.fits"), "not FITS\n");
  writeFileSync(join(dir, "notes.txt"), "not looked at\n");
  mkdirSync(join(dir, "empty"));

  const { code, stdout, stderr } = await runCli([
    "--json",
    "fits",
    "inspect",
    dir,
  ]);
  assert.equal(code, 1, stderr);
  const reports = JSON.parse(stdout) as FileReport[];
  assert.deepEqual(
    reports.map((r) => [r.file, r.ok]),
    [
      [join(dir, "2021", "broken.fits"), false],
      [join(dir, "2021", "deep", "S20210101S0001.fits.bz2"), true],
      [join(dir, "A.fits.bz2"), true],
    ],
  );
  assert.match(stderr, /1 of 3 file\(s\) could not be read/);

  const empty = await runCli(["fits", "inspect", join(dir, "empty")]);
  assert.equal(empty.code, 1);
  assert.match(
    empty.stdout,
    /empty: a directory without \.fits or \.fits\.bz2 files/,
  );
});

it("fits inspect gives the reason for a NULL ra, dec and airmass (an AZ/EL target with AIRMASS -9999)", async (t) => {
  const dump = loadHeaderDumps().find(
    (d) => d.name === "S20050601S0411.fits.header",
  );
  assert.ok(dump);
  const path = join(tempDir(t), dump.fitsName);
  writeDumpAsFits(dump, path);
  const { code, stdout, stderr } = await runCli(["fits", "inspect", path]);
  assert.equal(code, 0, stderr);
  assert.match(
    stdout,
    /^ {2}ra +NULL \(an AZ\/EL target \(FRAME = AZEL_TOPO\)/m,
  );
  assert.match(stdout, /^ {2}dec +NULL \(an AZ\/EL target/m);
  assert.match(
    stdout,
    /^ {2}airmass +NULL \(AIRMASS = -9999 is below 1, not a plausible airmass\)$/m,
  );
});

it("fits inspect gives a reason for every NULL of the GMOS mask definition file", async (t) => {
  const dump = loadHeaderDumps().find(
    (d) => d.name === "GN2001BQ013-04.fits.header",
  );
  assert.ok(dump);
  const path = join(tempDir(t), dump.fitsName);
  writeDumpAsFits(dump, path);
  const { code, stdout, stderr } = await runCli(["fits", "inspect", path]);
  assert.equal(code, 0, stderr);
  assert.match(
    stdout,
    /^ {2}requested_iq +NULL \(no REQIQ in the primary header \(a mask definition file, OBSTYPE = 'MASK'/m,
  );
  assert.match(
    stdout,
    /^ {2}gcal_lamp +NULL \(no GCALLAMP or GCALSHUT in the primary header/m,
  );
  assert.match(stdout, /^ {2}phot_standard +NULL \(the archive's rule: /m);
  assert.match(
    stdout,
    /^ {2}array_name +NULL \(the archive fills detector_x_bin, .* which stopped at detector_x_bin: the file has no science extensions/m,
  );
  const bare = stdout.split("\n").filter((l) => /^ {2}\S+ +NULL$/.test(l));
  assert.deepEqual(bare, [], "every NULL has a reason");
});
