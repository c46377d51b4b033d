/**
 * The header and instrument rows (DOMAIN.md §2.4, MAPPING-NOTES §7): derived
 * here, independently, from the reference's own descriptor values in
 * shared/fixtures/expected, then compared with what archiveRows builds from
 * the same header dumps turned into FITS files. Every row of every dump and
 * fixture must also insert into the real schema.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe as suite, it } from "node:test";

import { withClient } from "../../lib/db/connect.js";
import { quoteIdent } from "../../lib/db/sql.js";
import { readFitsFile, readHeaders } from "../../lib/fits/read.js";
import { descriptorTable } from "../../lib/gemini/descriptors.js";
import { descriptorSources } from "../../lib/gemini/null-reasons.js";
import {
  type ArchiveRows,
  archiveRows,
  utDatetimeSecs,
} from "../../lib/gemini/rows.js";
import { ENUMS } from "../../lib/gemini/sql-types.js";
import { testDatabase } from "../helpers/db.js";
import { structureWith } from "../helpers/fits.js";
import { loadHeaderDumps, writeDumpAsFits } from "../helpers/header-dumps.js";
import { sharedPath } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const dumps = loadHeaderDumps();

interface Expected {
  tags: string[];
  descriptors: Record<string, unknown>;
  phu_keywords: Record<string, unknown>;
}

function expectedFor(instrument: string): Record<string, Expected> {
  return JSON.parse(
    readFileSync(
      join(sharedPath("fixtures", "expected"), `${instrument}.json`),
      "utf8",
    ),
  ) as Record<string, Expected>;
}

const inList = (list: readonly string[], v: unknown) =>
  typeof v === "string" && list.includes(v) ? v : null;
const num = (v: unknown) => (typeof v === "number" ? v : null);
const upper = (v: unknown) => (v === null ? null : String(v).toUpperCase());

/** The header columns DOMAIN.md §2.4 derives from descriptor values and tags. */
function headerFromOracle(e: Expected): Record<string, unknown> {
  const v = e.descriptors;
  const tags = new Set(e.tags);
  const spect = tags.has("SPECT");
  const ut = v.ut_datetime as string | null;
  const airmass = num(v.airmass);
  const elevation = num(v.elevation);
  const obstype = tags.has("RONCHI")
    ? "RONCHI"
    : tags.has("PINHOLE")
      ? "PINHOLE"
      : inList(ENUMS.obstype, v.observation_type);
  let mode = "imaging";
  if (spect) {
    mode = tags.has("LS")
      ? "LS"
      : tags.has("MOS")
        ? "MOS"
        : tags.has("IFU")
          ? "IFS"
          : "spectroscopy";
  }
  const release = e.phu_keywords.RELEASE;
  return {
    program_id: upper(v.program_id),
    observation_id: upper(v.observation_id),
    data_label: upper(v.data_label) ?? "",
    telescope: v.telescope,
    instrument: v.instrument,
    ut_datetime: ut,
    ut_datetime_secs:
      ut === null
        ? null
        : Math.trunc((Date.parse(`${ut}Z`) - Date.UTC(2000, 0, 1)) / 1000),
    local_time: v.local_time,
    observation_type: obstype,
    observation_class: inList(ENUMS.obsclass, v.observation_class),
    object: v.object,
    ra:
      tags.has("AZEL_TARGET") ||
      num(v.ra) === null ||
      (v.ra as number) < 0 ||
      (v.ra as number) > 360
        ? null
        : v.ra,
    dec:
      tags.has("AZEL_TARGET") ||
      num(v.dec) === null ||
      Math.abs(v.dec as number) > 90
        ? null
        : v.dec,
    azimuth: v.azimuth,
    elevation: v.elevation,
    cass_rotator_pa: v.cass_rotator_pa,
    airmass:
      airmass === null || (airmass >= 1 && airmass <= 50)
        ? airmass
        : elevation === null
          ? null
          : 1 / Math.cos(((90 - elevation) * Math.PI) / 180),
    filter_name:
      typeof v.filter_name === "string"
        ? v.filter_name.replace(/%/g, "").replace(/ /g, "_")
        : v.filter_name,
    exposure_time:
      num(v.exposure_time) !== null &&
      (v.exposure_time as number) >= 0 &&
      (v.exposure_time as number) < 10_000
        ? v.exposure_time
        : null,
    disperser:
      typeof v.disperser === "string"
        ? v.disperser.replace(/\//g, "_")
        : v.disperser,
    camera: v.camera,
    central_wavelength: spect ? v.central_wavelength : null,
    wavelength_band: v.wavelength_band,
    focal_plane_mask: v.focal_plane_mask,
    // The oracle's pupil_mask is not pretty (gemini-descriptors.test.ts).
    pupil_mask:
      typeof v.pupil_mask === "string"
        ? v.pupil_mask.replace(/_G\d{4}.*$/, "")
        : v.pupil_mask,
    detector_binning:
      num(v.detector_x_bin) === null || num(v.detector_y_bin) === null
        ? null
        : `${String(v.detector_x_bin)}x${String(v.detector_y_bin)}`,
    detector_roi_setting: v.detector_roi_setting,
    detector_gain_setting:
      v.gain_setting === null ? null : String(v.gain_setting),
    detector_readspeed_setting: inList(
      ENUMS.detector_readspeed_setting,
      v.read_speed_setting,
    ),
    detector_welldepth_setting: inList(
      ENUMS.detector_welldepth_setting,
      v.well_depth_setting,
    ),
    detector_readmode_setting: tags.has("GMOS")
      ? tags.has("NODANDSHUFFLE")
        ? "NodAndShuffle"
        : "Classic"
      : v.read_mode === null
        ? null
        : String(v.read_mode).replace(/ /g, "_"),
    coadds: v.coadds,
    spectroscopy: spect,
    mode,
    raw_iq: v.raw_iq,
    raw_cc: v.raw_cc,
    raw_wv: v.raw_wv,
    raw_bg: v.raw_bg,
    requested_iq: v.requested_iq,
    requested_cc: v.requested_cc,
    requested_wv: v.requested_wv,
    requested_bg: v.requested_bg,
    qa_state:
      obstype === "MASK"
        ? "Pass"
        : (inList(ENUMS.qa_state, v.qa_state) ?? "Undefined"),
    release:
      typeof release === "string" && /^\d{4}-\d\d-\d\d$/.test(release)
        ? release
        : null,
    types: `{${[...tags]
      .sort()
      .map((t) => `'${t}'`)
      .join(", ")}}`,
  };
}

/** The instrument-row columns the oracle's descriptor values determine. */
function instrumentFromOracle(
  instrument: string,
  e: Expected,
): Record<string, unknown> {
  const v = e.descriptors;
  const tags = new Set(e.tags);
  switch (instrument) {
    case "GMOS": {
      const names = v.array_name as (string | null)[] | null;
      const blockOk =
        num(v.detector_x_bin) !== null &&
        names !== null &&
        !names.includes(null) &&
        typeof v.amp_read_area === "string";
      return {
        detector_x_bin: v.detector_x_bin,
        detector_y_bin: v.detector_y_bin,
        array_name: blockOk ? names.join("+") : null,
        amp_read_area: blockOk ? v.amp_read_area : null,
        gain_setting: blockOk ? inList(["low", "high"], v.gain_setting) : null,
        read_speed_setting: inList(["slow", "fast"], v.read_speed_setting),
        focal_plane_mask: v.focal_plane_mask,
        nodandshuffle: tags.has("NODANDSHUFFLE"),
        nod_count: tags.has("NODANDSHUFFLE")
          ? ((v.nod_count as number[] | null)?.[0] ?? null)
          : null,
        prepared: tags.has("PREPARED"),
        grating_order: null,
      };
    }
    case "NIRI":
      return {
        read_mode: inList(ENUMS.niri_read_mode, v.read_mode),
        well_depth_setting: inList(
          ENUMS.niri_well_depth_setting,
          v.well_depth_setting,
        ),
        data_section: inList(ENUMS.niri_data_section, v.data_section) ?? "None",
      };
    case "F2":
      return {
        read_mode: v.read_mode,
        focal_plane_mask: v.focal_plane_mask,
      };
    case "GNIRS":
      return {
        read_mode: inList(ENUMS.gnirs_read_mode, v.read_mode),
        well_depth_setting: inList(
          ENUMS.gnirs_well_depth_setting,
          v.well_depth_setting,
        ),
        array_name: (v.array_name as (string | null)[] | null)?.[0] ?? null,
      };
    default:
      return {};
  }
}

function same(got: unknown, want: unknown): boolean {
  if (typeof got === "number" && typeof want === "number") {
    return Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want));
  }
  return got === want;
}

const INSTRUMENT_TABLE: Record<string, string> = {
  GMOS: "gmos",
  NIRI: "niri",
  F2: "f2",
  GNIRS: "gnirs",
};

suite("header and instrument rows", () => {
  for (const instrument of ["GMOS", "NIRI", "F2", "GNIRS"]) {
    it(`${instrument}: every column the reference's values determine`, (t) => {
      const dir = tempDir(t);
      const mismatches: string[] = [];
      let compared = 0;
      for (const [name, e] of Object.entries(expectedFor(instrument))) {
        const dump = dumps.find(
          (x) => x.instrument === instrument && x.name === name,
        );
        assert.ok(dump, `no dump for ${name}`);
        const path = join(dir, dump.fitsName);
        writeDumpAsFits(dump, path);
        const rows = archiveRows(readHeaders(path), `${dump.fitsName}.bz2`);
        const check = (
          where: string,
          got: Record<string, unknown>,
          want: Record<string, unknown>,
        ) => {
          for (const [column, value] of Object.entries(want)) {
            compared++;
            if (!same(got[column], value)) {
              mismatches.push(
                `${name} ${where}.${column}: got ${JSON.stringify(got[column])}, expected ${JSON.stringify(value)}`,
              );
            }
          }
        };
        check("header", rows.header, headerFromOracle(e));
        // NIRI/N20170523S0331 is GNIRS data, so its instrument row is gnirs.
        const actual =
          e.descriptors.instrument === "GNIRS" ? "GNIRS" : instrument;
        const row = rows.instrument[0];
        if (e.descriptors.instrument === null) {
          continue;
        }
        assert.equal(row?.table, INSTRUMENT_TABLE[actual], name);
        check(
          row?.table ?? "?",
          row?.values ?? {},
          instrumentFromOracle(actual, e),
        );
      }
      assert.deepEqual(mismatches, []);
      assert.ok(compared > 500, `only ${compared} values compared`);
    });
  }

  it("a NULL ra, dec or airmass has its reason in every dump (AZ/EL targets, AIRMASS below 1)", (t) => {
    const dir = tempDir(t);
    const reasons = new Map<string, string>();
    for (const dump of dumps) {
      const path = join(dir, dump.fitsName);
      writeDumpAsFits(dump, path);
      const rows = archiveRows(readHeaders(path), `${dump.fitsName}.bz2`);
      for (const column of ["ra", "dec", "airmass"]) {
        const warning = rows.warnings.find(
          (w) => w.column === `header.${column}`,
        );
        if (rows.header[column] === null) {
          assert.ok(
            warning,
            `${dump.name}: header.${column} is NULL, no reason`,
          );
          reasons.set(`${dump.name} ${column}`, warning.message);
        }
      }
    }
    // FRAME = 'AZEL_TOPO' (NIRI, F2, GMOS, GNIRS) and AIRMASS = -9999 or 0.
    for (const [key, reason] of [
      [
        "N20151129S0307.fits.header ra",
        /^an AZ\/EL target \(FRAME = AZEL_TOPO\)/,
      ],
      ["S20141130S0001.fits.header dec", /^an AZ\/EL target/],
      ["S20090620S0145.fits.header ra", /^an AZ\/EL target/],
      ["S20050601S0411.fits.header dec", /^an AZ\/EL target/],
      [
        "S20050601S0411.fits.header airmass",
        /^AIRMASS = -9999 is below 1, not a plausible airmass$/,
      ],
      ["N20030104S0065.fits.header airmass", /^AIRMASS = 0 is below 1/],
      ["GN2001BQ013-04.fits.header airmass", /^no AIRMASS in the header$/],
      ["GN2001BQ013-04.fits.header ra", /^no RA in the WCS or the header$/],
    ] as const) {
      assert.match(reasons.get(key) ?? "(none)", reason, key);
    }
  });

  it("every NULL column of every dump and fixture has a reason that names a keyword or a rule", async (t) => {
    const dir = tempDir(t);
    const all: [string, ArchiveRows][] = [];
    for (const dump of dumps) {
      const path = join(dir, dump.fitsName);
      writeDumpAsFits(dump, path);
      all.push([
        dump.name,
        archiveRows(readHeaders(path), `${dump.fitsName}.bz2`),
      ]);
    }
    for (const folder of ["gemini", "astropy"]) {
      const root = sharedPath("fixtures", "fits", folder);
      for (const name of readdirSync(root).sort()) {
        const result = await readFitsFile(join(root, name));
        all.push([name, archiveRows(result.structure, name)]);
      }
    }
    const bare: string[] = [];
    let nulls = 0;
    for (const [name, rows] of all) {
      const tables: [string, Record<string, unknown>][] = [
        ["header", rows.header],
        ...rows.instrument.map((r): [string, Record<string, unknown>] => [
          r.table,
          r.values,
        ]),
      ];
      for (const [table, values] of tables) {
        for (const [column, value] of Object.entries(values)) {
          if (value !== null) {
            continue;
          }
          nulls++;
          const reason = rows.reasons[`${table}.${column}`] ?? "";
          if (reason.trim() === "") {
            bare.push(`${name} ${table}.${column}`);
          }
        }
      }
    }
    assert.deepEqual(bare, []);
    // The fixtures hold NULLs of every kind, so this is not vacuous.
    assert.ok(nulls > 2000, `only ${nulls} NULLs`);
  });

  it("a NULL's reason says which keyword is missing, or which rule of the archive leaves it NULL", (t) => {
    const reasons = (name: string) => {
      const dump = dumps.find((d) => d.name === name);
      assert.ok(dump, name);
      const path = join(tempDir(t), dump.fitsName);
      writeDumpAsFits(dump, path);
      return archiveRows(readHeaders(path), `${dump.fitsName}.bz2`).reasons;
    };
    const mask = reasons("GN2001BQ013-04.fits.header");
    for (const [column, reason] of [
      [
        "header.requested_iq",
        /^no REQIQ in the primary header \(a mask definition file, OBSTYPE = 'MASK'/,
      ],
      ["header.gcal_lamp", /^no GCALLAMP or GCALSHUT in the primary header/],
      ["header.phot_standard", /^the archive's rule: .*do_std_obs/],
      ["header.wavelength_band", /^neither imaging nor a spectrum/],
      [
        "header.telescope",
        /^no TELESCOP in the primary header.*does not start with N20 or S20$/,
      ],
      [
        "gmos.detector_x_bin",
        /^the file has no science extensions \(a mask definition file/,
      ],
      [
        "gmos.gain_setting",
        /which stopped at detector_x_bin: the file has no science extensions/,
      ],
      [
        "gmos.nod_count",
        /^not a nod-and-shuffle observation \(no NODANDSHUFFLE tag\)$/,
      ],
      [
        "gmos.grating_order",
        /^the archive's rule: .*no grating_order descriptor/,
      ],
    ] as const) {
      assert.match(mask[column] ?? "(none)", reason, column);
    }
    // NIRI's cached descriptor failure reaches the niri row too, not only the header.
    const niri = reasons("N20070818S0031.fits.header");
    assert.match(
      niri["niri.well_depth_setting"] ?? "(none)",
      /A_VDDUC and A_VDET/,
    );
    const f2 = reasons("S20141130S0001.fits.header");
    assert.match(
      f2["header.detector_gain_setting"] ?? "(none)",
      /^F2 has no gain setting/,
    );
    assert.match(
      f2["header.central_wavelength"] ?? "(none)",
      /^not a spectrum \(no SPECT tag\)|^WAVELENG/,
    );
  });

  it("every descriptor of every instrument class says which keywords it reads", () => {
    const missing: string[] = [];
    for (const cls of [
      undefined,
      "GEMINI",
      "GMOS",
      "NIRI",
      "F2",
      "GNIRS",
    ] as const) {
      for (const name of Object.keys(descriptorTable(cls))) {
        if (descriptorSources(cls, name) === undefined) {
          missing.push(`${cls ?? "non-Gemini"} ${name}`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  it("ut_datetime_secs counts whole seconds from 2000-01-01, truncated toward zero", () => {
    // The reference's own test: N20200127S0023 at 2020-01-27 06:11:21.9.
    assert.equal(utDatetimeSecs("2020-01-27T06:11:21.900000"), 633420681);
    assert.equal(utDatetimeSecs("2000-01-01T00:00:00"), 0);
    assert.equal(utDatetimeSecs("1999-12-31T23:59:59.500000"), 0);
    assert.equal(utDatetimeSecs("1999-12-31T23:59:58.500000"), -1);
  });

  it("a bad value becomes NULL with a warning naming the column, never a throw", () => {
    const rows = archiveRows(
      structureWith([
        "INSTRUME= 'NIRI'",
        "TELESCOP= 'Gemini-North'",
        "OBSERVAT= 'Gemini-North'",
        "GEMPRGID= 'gn-2019b-q-1'",
        "AIRMASS =                 75.0",
        "ELEVATIO=                 60.0",
        "RELEASE = '2020-13-45'",
        "EXPTIME =              12000.0",
        "OBSTYPE = 'SKY'",
        "COADDS  = 'many'",
      ]),
      "N20200101S0001.fits",
    );
    const h = rows.header;
    assert.equal(h.program_id, "GN-2019B-Q-1");
    assert.ok(
      Math.abs((h.airmass as number) - 1 / Math.cos((30 * Math.PI) / 180)) <
        1e-12,
    );
    assert.equal(h.release, null);
    assert.equal(h.exposure_time, null);
    assert.equal(h.observation_type, null);
    assert.equal(h.coadds, null);
    const columns = rows.warnings.map((w) => w.column);
    assert.ok(columns.includes("header.release"), columns.join());
    assert.ok(columns.includes("header.airmass"), columns.join());
    assert.ok(columns.includes("header.coadds"), columns.join());
    assert.match(
      rows.warnings.find((w) => w.column === "header.coadds")?.message ?? "",
      /COADDS/,
    );
  });

  it("a value the column cannot hold is NULL with a warning", () => {
    const rows = archiveRows(
      structureWith([
        "INSTRUME= 'GNIRS'",
        "OBSERVAT= 'Gemini-North'",
        "TELESCOP= 'Gemini-North'",
        "OBSTYPE = 'ARC'",
        "ACQMIR  = 'Out'",
        "GRATWAVE=                123.4",
      ]),
      "N20200101S0001.fits",
    );
    if (rows.header.spectroscopy === true) {
      assert.equal(rows.header.central_wavelength, null);
      assert.ok(
        rows.warnings.some(
          (w) =>
            w.column === "header.central_wavelength" &&
            /numeric\(8,6\)/.test(w.message),
        ),
        JSON.stringify(rows.warnings),
      );
    } else {
      assert.fail(`expected a spectrum: ${String(rows.header.types)}`);
    }
  });

  it("every row of every dump and fixture inserts into the schema", async (t) => {
    const db = await testDatabase(t);
    const dir = tempDir(t);
    const all: [string, ArchiveRows][] = [];
    for (const dump of dumps) {
      const path = join(dir, dump.fitsName);
      writeDumpAsFits(dump, path);
      all.push([dump.name, archiveRows(readHeaders(path), dump.fitsName)]);
    }
    for (const folder of ["gemini", "astropy"]) {
      const root = sharedPath("fixtures", "fits", folder);
      for (const name of readdirSync(root).sort()) {
        const result = await readFitsFile(join(root, name));
        all.push([name, archiveRows(result.structure, name)]);
      }
    }
    const tables = new Map<string, number>();
    await withClient(db.url, async (client) => {
      const { rows: labels } = await client.query<{
        typname: string;
        labels: string[];
      }>(
        `SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
           FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
          GROUP BY t.typname`,
      );
      for (const [name, list] of Object.entries(ENUMS)) {
        assert.deepEqual(
          labels.find((l) => l.typname === name)?.labels,
          [...list],
          `enum ${name}`,
        );
      }
      const { rows: file } = await client.query<{ id: number }>(
        `INSERT INTO file (name) VALUES ('x.fits') RETURNING id`,
      );
      const { rows: disk } = await client.query<{ id: number }>(
        `INSERT INTO diskfile (file_id, filename, path, present, canonical)
         VALUES ($1, 'x.fits', '', true, true) RETURNING id`,
        [file[0]!.id],
      );
      const insert = async (table: string, values: Record<string, unknown>) => {
        const columns = Object.keys(values);
        const { rows } = await client.query<{ id: number }>(
          `INSERT INTO ${quoteIdent(table)} (${columns.map((c) => quoteIdent(c)).join(", ")})
           VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")}) RETURNING id`,
          Object.values(values),
        );
        tables.set(table, (tables.get(table) ?? 0) + 1);
        return rows[0]!.id;
      };
      for (const [name, rows] of all) {
        try {
          const headerId = await insert("header", {
            diskfile_id: disk[0]!.id,
            ...rows.header,
          });
          for (const row of rows.instrument) {
            await insert(row.table, { header_id: headerId, ...row.values });
          }
        } catch (error) {
          assert.fail(`${name}: ${(error as Error).message}`);
        }
      }
      const { rows: count } = await client.query<{ n: string }>(
        "SELECT count(*) AS n FROM header WHERE types IS NOT NULL",
      );
      assert.equal(Number(count[0]!.n), all.length);
    });
    assert.ok((tables.get("gmos") ?? 0) >= 30, JSON.stringify([...tables]));
    assert.ok((tables.get("niri") ?? 0) >= 15);
    assert.ok((tables.get("f2") ?? 0) >= 20);
    assert.ok((tables.get("gnirs") ?? 0) >= 20);
  });
});
