/**
 * The synthetic Gemini archive (fixtures/synthetic/archive.ts): every good file
 * reads, and gives the rows a real raw frame of its instrument gives; every
 * broken file fails with the specific error of its damage; the same seed
 * gives the same bytes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  CORRUPTION_KINDS,
  CORRUPTION_PROBLEMS,
  type PlannedFile,
  planSyntheticArchive,
  type SyntheticFile,
  type SyntheticOptions,
  writeSyntheticArchive,
} from "../../fixtures/synthetic/archive.js";
import { FitsFormatError } from "../../lib/fits/errors.js";
import { type FitsReadResult, readFitsFile } from "../../lib/fits/read.js";
import { type ArchiveRows, archiveRows } from "../../lib/gemini/rows.js";
import { tempDir } from "../helpers/tmp.js";

const TABLES: Record<string, string> = {
  "GMOS-N": "gmos",
  "GMOS-S": "gmos",
  NIRI: "niri",
  F2: "f2",
  GNIRS: "gnirs",
};

/**
 * The only warnings the rows may carry: GMOS darks are taken with the
 * telescope offline, RA/DEC and AIRMASS -9999 (as GMOS/N20150929S0013), and
 * dome frames point at the zenith in AZ/EL (as GMOS/N20220915S0113); the
 * header row stores those as NULL, with the reason as a warning.
 */
const EXPECTED_WARNINGS = new Set([
  "header.ra",
  "header.dec",
  "header.airmass",
]);

const md5 = (path: string) =>
  createHash("md5").update(readFileSync(path)).digest("hex");

const sha256 = (parts: readonly (string | Buffer)[]) => {
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(part);
  }
  return hash.digest("hex");
};

/** A planned file as text, field by field, so the digest does not hang on the order its object was built in. */
const planText = (plan: PlannedFile) =>
  JSON.stringify([
    plan.index,
    plan.name,
    plan.relativePath,
    plan.instrument,
    plan.kind,
    plan.compressed,
    plan.corrupt ?? null,
    plan.dataSeed,
    plan.phu,
    plan.extensions.map((e) => [e.bitpix, e.axes, e.level, e.noise, e.cards]),
  ]);

/**
 * Digests of whole planned archives (every header card, data layout and
 * pixel seed, so every byte but the compressor's), recorded from the planner
 * as it was before it was split per instrument (issue 17). A change to the
 * output must come with new digests here, on purpose.
 */
const PLANNED: readonly [SyntheticOptions, string][] = [
  [
    { files: 300, seed: 1, dataScale: "tiny" },
    "7170bdd4f05e727474cd10abc158d25d246bff520b5ec36d4574194aa77adb73",
  ],
  [
    { files: 300, seed: 1, dataScale: "small", layout: "by-night" },
    "5933ea4b04e599ec7bbcc894f585cf44f04765770d52d2cb2f3b9ab8ac62c4c1",
  ],
  [
    { files: 300, seed: 1, dataScale: "full", compressedFraction: 0 },
    "56fd937360028010608b68a556d57e6186c4351e15c8103f7d41d4209cd897b8",
  ],
  [
    { files: 300, seed: 42, dataScale: "tiny", layout: "by-night" },
    "3e17cea3c0f8f3a44ff4b3cd7a2904289fff36ef4b6154f776fda7ab64dc50af",
  ],
  [
    { files: 300, seed: 42, dataScale: "small", compressedFraction: 0 },
    "4fd147bed353c5de22b581949947088093f45302f1ba2082d85181181a79dcf5",
  ],
  [
    { files: 300, seed: 42, dataScale: "full", nights: 1 },
    "101042914bc9699b3fe79935df47879ffbd37f162c38430820dfa80da79735ed",
  ],
  [
    { files: 300, seed: 7, dataScale: "tiny", nights: 9, corrupt: 12 },
    "e8d4bb0330828a79d64386d9600be260db4def06dd39952af45ff4271abdf81c",
  ],
];

/** The bytes (uncompressed files) and records of one small written archive, from the same planner. */
const WRITTEN =
  "d5251f55789e6949442b79068894abcf419c545d798ff9652db7588407b25895";

interface Good {
  file: SyntheticFile;
  read: FitsReadResult;
  rows: ArchiveRows;
}

describe("synthetic archive", () => {
  let files: SyntheticFile[] = [];
  const good: Good[] = [];

  // A suite-level folder: the good and broken files are shared by the tests below.
  const dir = mkdtempSync(join(tmpdir(), "ff-synthetic-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(async () => {
    files = await writeSyntheticArchive(dir, {
      files: 60,
      seed: 11,
      nights: 3,
      corrupt: CORRUPTION_KINDS.length,
    });
    for (const file of files.filter((f) => f.corrupt === undefined)) {
      const read = await readFitsFile(file.path);
      good.push({ file, read, rows: archiveRows(read.structure, file.name) });
    }
  });

  it("writes the files asked for, some compressed, a few broken", () => {
    assert.equal(files.length, 60);
    assert.equal(new Set(files.map((f) => f.name)).size, 60);
    for (const f of files) {
      assert.match(f.name, /^[NS]\d{8}S\d{4}\.fits(\.bz2)?$/);
      assert.ok(f.bytes > 0);
    }
    const compressed = files.filter((f) => f.name.endsWith(".bz2")).length;
    assert.ok(compressed >= 5 && compressed <= 35, `${compressed} compressed`);
    assert.deepEqual(
      files.flatMap((f) => (f.corrupt === undefined ? [] : [f.corrupt])).sort(),
      [...CORRUPTION_KINDS].sort(),
    );
    assert.deepEqual(
      new Set(files.map((f) => f.instrument)).size >= 3,
      true,
      "several instruments",
    );
  });

  it("every good file reads and gives a header row for its instrument", () => {
    assert.equal(good.length, 60 - CORRUPTION_KINDS.length);
    for (const { file, rows } of good) {
      const h = rows.header;
      const where = `${file.name} (${file.instrument} ${file.kind})`;
      assert.equal(h.instrument, file.instrument, where);
      assert.ok(file.instrument in TABLES, where);
      assert.equal(
        h.telescope,
        file.name.startsWith("N") ? "Gemini-North" : "Gemini-South",
        where,
      );
      assert.equal(typeof h.ut_datetime, "string", where);
      assert.equal(typeof h.program_id, "string", where);
      const programId = String(h.program_id);
      const observationId = String(h.observation_id);
      const dataLabel = String(h.data_label);
      assert.ok(observationId.startsWith(`${programId}-`), where);
      assert.match(observationId.slice(programId.length), /^-\d+$/, where);
      assert.ok(dataLabel.startsWith(`${observationId}-`), where);
      assert.match(dataLabel.slice(observationId.length), /^-\d{3}$/, where);
      assert.match(programId, /^G[NS]-(CAL\d{8}|\d{4}[AB]-[A-Z]+-\d+)$/, where);
      assert.equal(programId.slice(1, 2), file.name.slice(0, 1), where);
      // The file-name date is the night's: 14:00 local the day before to 14:00 local.
      const night = file.name.slice(1, 9);
      const labelMs = Date.UTC(
        Number(night.slice(0, 4)),
        Number(night.slice(4, 6)) - 1,
        Number(night.slice(6, 8)),
      );
      const utOffset = file.name.startsWith("N") ? 10 : 3;
      const ut = Date.parse(`${String(h.ut_datetime)}Z`);
      const nightStart = labelMs - 86_400_000 + (14 + utOffset) * 3_600_000;
      assert.ok(
        ut >= nightStart && ut < nightStart + 86_400_000,
        `${where}: ${String(h.ut_datetime)}`,
      );
      if (programId.includes("-CAL")) {
        assert.equal(programId.slice(6), night, where);
      }
      assert.match(String(h.release), /^\d{4}-\d\d-\d\d$/, where);
      assert.deepEqual(
        rows.instrument.map((r) => r.table),
        [TABLES[file.instrument]],
        where,
      );
    }
  });

  it("gives no warnings but the expected ones", () => {
    for (const { file, rows } of good) {
      const columns = rows.warnings.map((w) => w.column);
      assert.ok(
        columns.every((c) => EXPECTED_WARNINGS.has(c)),
        `${file.name}: ${JSON.stringify(rows.warnings)}`,
      );
      const azel = rows.warnings.every((w) =>
        w.message.startsWith("an AZ/EL target"),
      );
      if (columns.length > 0 && !azel) {
        assert.equal(file.kind, "dark", file.name);
      }
    }
  });

  it("covers imaging and spectroscopy, science and calibrations", () => {
    const modes = new Set(good.map((g) => g.rows.header.mode));
    assert.ok(modes.has("imaging"), [...modes].join(","));
    assert.ok(
      [...modes].some((m) => m === "LS" || m === "MOS" || m === "IFS"),
      [...modes].join(","),
    );
    const types = new Set(good.map((g) => g.rows.header.observation_type));
    assert.ok(types.size >= 3, [...types].join(","));
    assert.ok(types.has("OBJECT"));
    const classes = new Set(good.map((g) => g.rows.header.observation_class));
    assert.ok(classes.has("science"));
    assert.ok(classes.size >= 2, [...classes].join(","));
  });

  it("has the real extension structure of each instrument", () => {
    for (const { file, read } of good) {
      const [phu, ...extensions] = read.structure.hdus;
      const where = file.name;
      assert.ok(phu !== undefined && phu.dataSize === 0, where);
      const cards = phu.header.cards.length;
      assert.ok(cards >= 130 && cards <= 300, `${where}: ${cards} PHU cards`);
      for (const ext of extensions) {
        assert.equal(ext.header.string("EXTNAME"), "SCI", where);
        assert.ok(ext.dataSize > 0 && ext.dataSize <= 16 * 1024, where);
      }
      if (file.instrument.startsWith("GMOS")) {
        assert.ok([3, 6, 12].includes(extensions.length), where);
        for (const ext of extensions) {
          assert.equal(ext.bitpix, 16, where);
          for (const keyword of [
            "DETSEC",
            "DATASEC",
            "BIASSEC",
            "CCDSUM",
            "AMPNAME",
          ]) {
            assert.ok(ext.header.has(keyword), `${where}: ${keyword}`);
          }
        }
      } else if (file.instrument === "F2") {
        assert.equal(extensions.length, 1, where);
        assert.deepEqual(extensions[0]?.axes.slice(0, 1), [2048], where);
        assert.equal(extensions[0]?.axes[2], 1, where);
        assert.equal(extensions[0]?.bitpix, 32, where);
      } else {
        assert.equal(extensions.length, 1, where);
        assert.equal(extensions[0]?.axes.length, 2, where);
        assert.equal(extensions[0]?.bitpix, -32, where);
      }
    }
  });

  it("every broken file fails with the error of its damage, naming the file", async () => {
    for (const file of files.filter((f) => f.corrupt !== undefined)) {
      await assert.rejects(readFitsFile(file.path), (error: unknown) => {
        assert.ok(error instanceof FitsFormatError, String(error));
        assert.equal(error.problem, CORRUPTION_PROBLEMS[file.corrupt!]);
        assert.ok(error.message.includes(file.path), error.message);
        return true;
      });
    }
  });

  it("is deterministic: the same seed gives the same bytes, another seed others", async (t) => {
    const options = { files: 12, seed: 5, nights: 1 } as const;
    const [a, b, c] = [tempDir(t), tempDir(t), tempDir(t)];
    const first = await writeSyntheticArchive(a, options);
    const second = await writeSyntheticArchive(b, options);
    const other = await writeSyntheticArchive(c, { ...options, seed: 6 });
    assert.deepEqual(
      second.map((f) => f.name),
      first.map((f) => f.name),
    );
    for (const [i, f] of first.entries()) {
      assert.equal(md5(second[i]!.path), md5(f.path), f.name);
    }
    const hashes = new Set(first.map((f) => md5(f.path)));
    assert.ok(
      other.every((f) => !hashes.has(md5(f.path))),
      "another seed shares no file",
    );
    assert.ok(
      first.some((f) => f.name.endsWith(".bz2")),
      "bz2 compared too",
    );
  });

  it("lays files out by night", async (t) => {
    const dir = tempDir(t);
    const written = await writeSyntheticArchive(dir, {
      files: 8,
      seed: 3,
      nights: 2,
      corrupt: 0,
      layout: "by-night",
    });
    for (const f of written) {
      assert.equal(basename(f.path), f.name);
      assert.equal(basename(dirname(f.path)), f.name.slice(1, 9));
      assert.equal(dirname(dirname(f.path)), dir);
    }
  });

  it("plans the same archives as before, card for card", () => {
    for (const [options, expected] of PLANNED) {
      const digests = [...planSyntheticArchive(options)].map((plan) =>
        sha256([planText(plan)]),
      );
      assert.equal(sha256(digests), expected, JSON.stringify(options));
    }
  });

  it("writes the same bytes as before", async (t) => {
    const dir = tempDir(t);
    const written = await writeSyntheticArchive(dir, {
      files: 120,
      seed: 3,
      nights: 2,
      corrupt: 8,
      compressedFraction: 0.3,
      layout: "by-night",
    });
    // bzip2 and lbzip2 compress differently, so compressed files count by record alone.
    const digests = written.map((f) => {
      const compressed = f.name.endsWith(".bz2");
      const record = JSON.stringify({
        ...f,
        path: relative(dir, f.path),
        bytes: compressed ? undefined : f.bytes,
      });
      return sha256(compressed ? [record] : [record, readFileSync(f.path)]);
    });
    assert.equal(sha256(digests), WRITTEN);
  });
});
