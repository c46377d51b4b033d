/**
 * Program ids and the header row's program flags (FitsStorage v3
 * GeminiProgram, Header.populate_fits), the normalisation of telescope,
 * instrument, observation type and class, and the GMOS spectrophotometric
 * STANDARD tag (DRAGONS get_specphot_name).
 *
 * Separations quoted below were computed with astropy 8.0.1 (SkyCoord
 * apply_space_motion and separation) on the same catalogue.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Header } from "../../lib/fits/header.js";
import {
  geminiInstrument,
  geminiObservationClass,
  geminiObservationType,
  geminiTelescope,
  headerObservationType,
  headerTelescope,
  isSiteMonitoring,
} from "../../lib/gemini/normalise.js";
import {
  headerProgramFlags,
  parseProgramId,
  type ProgramInfo,
} from "../../lib/gemini/program.js";
import {
  SPECPHOT_STANDARDS,
  specphotName,
  specphotSeparations,
} from "../../lib/gemini/specphot-standards.js";
import { computeTags, type TagFileContext } from "../../lib/gemini/tags.js";
import { headerWith } from "../helpers/fits.js";
import { loadHeaderDumps } from "../helpers/header-dumps.js";

type Kind =
  | "Q"
  | "C"
  | "SV"
  | "QS"
  | "DD"
  | "LP"
  | "FT"
  | "DS"
  | "PW"
  | "ENG"
  | "CAL"
  | "COM"
  | "MON";

const FLAG: Record<Kind, keyof ProgramInfo> = {
  Q: "isQ",
  C: "isC",
  SV: "isSv",
  QS: "isQs",
  DD: "isDd",
  LP: "isLp",
  FT: "isFt",
  DS: "isDs",
  PW: "isPw",
  ENG: "isEng",
  CAL: "isCal",
  COM: "isCom",
  MON: "isMon",
};

/** [id, kind (the one flag that is true), semester, date] for valid ids. */
const VALID: [string, Kind, string | null, string | null][] = [
  // Old science format GN-yyyyS-TYPE-n
  ["GN-2019B-Q-1", "Q", "2019B", null],
  ["GN-2019B-FT-111", "FT", "2019B", null], // upstream test_header.py's NIRI file
  ["GS-2024A-Q-410", "Q", "2024A", null],
  ["GN-2019B-C-7", "C", "2019B", null],
  ["GN-2011A-SV-12", "SV", "2011A", null],
  ["GS-2033B-QS-1234", "QS", "2033B", null],
  ["GN-2000A-DD-3", "DD", "2000A", null],
  ["GS-2013A-LP-1", "LP", "2013A", null],
  ["GS-2020A-DS-1", "DS", "2020A", null],
  // New (2024 GPP) science format G-yyyyS-n-T
  ["G-2024A-1234-Q", "Q", "2024A", null],
  ["G-2020B-1234-C", "C", "2020B", null],
  ["G-2024B-0001-V", "SV", "2024B", null],
  ["G-2025A-12-S", "DS", "2025A", null],
  ["G-2025A-12-D", "DD", "2025A", null],
  ["G-2025A-12-L", "LP", "2025A", null],
  ["G-2020A-14-F", "FT", "2020A", null],
  ["G-2025A-12-P", "PW", "2025A", null],
  // Engineering and calibration, old
  ["GN-ENG20200101", "ENG", null, "20200101"],
  ["GN-CAL20120123", "CAL", null, "20120123"],
  ["GS-CAL20000131", "CAL", null, "20000131"],
  ["CAL20031122", "CAL", null, "20031122"],
  ["ENG20221101", "ENG", null, "20221101"],
  ["GN-2020A-CAL-191", "CAL", "2020A", null],
  ["GN-2011A-ENG-191", "ENG", "2011A", null],
  // Engineering, calibration, commissioning, monitoring, new
  ["G-2024A-CAL-GMOS_N-20", "CAL", "2024A", null],
  ["G-2024A-ENG-GMOS-N-1", "ENG", "2024A", null],
  ["G-2001A-COM-IGRINS-2-20", "COM", "2001A", null],
  ["G-2099B-COM-SCORPIO-1", "COM", "2099B", null],
  ["G-2001A-MON-F_2-20", "MON", "2001A", null],
  ["G-2024B-ENG-GPI+X-3", "ENG", "2024B", null],
];

const INVALID: string[] = [
  "gn-2019b-q-1", // the regexes are case-sensitive
  "GN-2019b-Q-1",
  "GN-2019C-Q-1", // semesters are A or B
  "GN-1999B-Q-1", // years are 20xx
  "GX-2019B-Q-1",
  "GN-2019B-X-1",
  "GN-2019B-Q-",
  "GN-2019B-ENG-x-1",
  "GS-2024A-Q-410-36", // an observation id is not a program id
  "G-2011A-Q-12", // old type codes need the site
  "GN-2020A-1234-Q", // new numbering needs G-
  "G-2024A-1234-Z",
  "G-2024A-1234-QQ",
  "GN-2001A-CAL-GMOS_N-20",
  "G-2024A-ENG-1", // new CAL/ENG ids name the instrument
  "G-2001B-FOO-GMOS_N-20",
  "GX-CAL20000131",
  "G-CAL20120123",
  "GN-ENG19441231",
  "GN-CAL20204101", // months [01]x
  "GN-CAL2020010",
  "Eng20221101",
  "CAL200312",
  "GN-2020A-foo-191",
  "ENG",
  "",
  "   ",
];

describe("program ids (GeminiProgram)", () => {
  for (const [id, kind, semester, date] of VALID) {
    it(`${id}: valid, ${kind}`, () => {
      const p = parseProgramId(id);
      assert.equal(p.valid, true);
      assert.equal(p.programId, id);
      for (const [k, flag] of Object.entries(FLAG)) {
        assert.equal(p[flag], k === kind, `${flag}`);
      }
      assert.equal(p.semester, semester);
      assert.equal(p.date, date);
    });
  }

  it("invalid ids are engineering, with every other flag off", () => {
    for (const id of INVALID) {
      const p = parseProgramId(id);
      assert.equal(p.valid, false, id);
      assert.equal(p.programId, null, id);
      assert.equal(p.isEng, true, id);
      for (const flag of Object.values(FLAG).filter((f) => f !== "isEng")) {
        assert.equal(p[flag], false, `${id} ${flag}`);
      }
      assert.equal(p.semester, null);
    }
  });

  it("strips Python whitespace first, and Python's \\d is any Unicode digit", () => {
    assert.equal(parseProgramId("  GN-2019B-Q-1 \n").programId, "GN-2019B-Q-1");
    assert.equal(parseProgramId("\u00a0GN-2019B-Q-1\u3000").valid, true);
    assert.equal(parseProgramId("\x1cGN-2019B-Q-1\x85").valid, true);
    // U+FEFF is trimmed by JavaScript but is not whitespace to Python.
    assert.equal(parseProgramId("\ufeffGN-2019B-Q-1").valid, false);
    assert.equal(parseProgramId("GN-2019B-Q-\u0661\u0662").valid, true);
    assert.equal(
      parseProgramId("G-2024A-ENG-\u00e9t\u00e9-1").isEng,
      true,
      "\\w is Unicode too",
    );
  });
});

describe("header program flags (Header.populate_fits)", () => {
  const none = { siteMonitoring: false, engData: undefined };
  const cases: [
    string | null,
    { siteMonitoring: boolean; engData: unknown },
    [boolean | null, boolean | null, boolean | null],
  ][] = [
    ["GN-2019B-Q-1", none, [false, false, false]],
    // The file parser upper-cases GEMPRGID before GeminiProgram sees it.
    ["gn-2019b-q-1", none, [false, false, false]],
    ["GN-2011A-SV-12", none, [false, true, false]],
    ["G-2024B-0001-V", none, [false, true, false]],
    ["GN-CAL20200101", none, [false, false, true]],
    ["G-2024A-CAL-GMOS_N-20", none, [false, false, true]],
    ["GN-ENG20200101", none, [true, false, false]],
    ["G-2099B-COM-SCORPIO-1", none, [false, false, false]],
    ["GN-2019B-MYTEST", none, [true, false, false]],
    ["", none, [true, false, false]],
    // No program id: engineering unless site monitoring; calibration_program not set.
    [null, none, [true, false, null]],
    [null, { siteMonitoring: true, engData: undefined }, [false, false, null]],
    // PHU ENG_DATA overrides engineering with Python's bool().
    [
      "GN-2019B-Q-1",
      { siteMonitoring: false, engData: true },
      [true, false, false],
    ],
    [
      "GN-ENG20200101",
      { siteMonitoring: false, engData: false },
      [false, false, false],
    ],
    [null, { siteMonitoring: true, engData: "F" }, [true, false, null]],
    [
      "GN-2019B-Q-1",
      { siteMonitoring: false, engData: "" },
      [false, false, false],
    ],
    [
      "GN-ENG20200101",
      { siteMonitoring: false, engData: 0 },
      [false, false, false],
    ],
    [
      "GN-2019B-Q-1",
      { siteMonitoring: false, engData: null },
      [true, false, false],
    ],
  ];
  for (const [id, opts, [engineering, sv, cal]] of cases) {
    it(`${JSON.stringify(id)} ${JSON.stringify(opts)}`, () => {
      assert.deepEqual(headerProgramFlags(id, opts), {
        engineering,
        scienceVerification: sv,
        calibrationProgram: cal,
      });
    });
  }
});

describe("normalisation (telescope_instruments.py)", () => {
  it("telescope: case, '-' and '_' ignored; anything else null; file-name fallback", () => {
    for (const v of [
      "Gemini-North",
      "gemini-north",
      "gemini_north",
      "geminiNorth",
    ]) {
      assert.equal(geminiTelescope(v), "Gemini-North", v);
    }
    for (const v of [
      "Gemini-South",
      "GEMINI-SOUTH",
      "gemini_south",
      "Geminisouth",
    ]) {
      assert.equal(geminiTelescope(v), "Gemini-South", v);
    }
    for (const v of [
      "Unknown",
      "",
      "Gemini North",
      "Gemini-N",
      1,
      null,
      undefined,
    ]) {
      assert.equal(geminiTelescope(v), null, String(v));
    }
    assert.equal(
      headerTelescope(null, "N20200127S0023.fits.bz2"),
      "Gemini-North",
    );
    assert.equal(
      headerTelescope("junk", "S20181219S0333.fits"),
      "Gemini-South",
    );
    assert.equal(
      headerTelescope("Gemini-South", "N20200127S0023.fits"),
      "Gemini-South",
    );
    assert.equal(headerTelescope(null, "n20200127s0023.fits"), null);
    assert.equal(headerTelescope(null, "N19991231S0001.fits"), null);
    assert.equal(headerTelescope(null, "img_20200101_1.fits"), null);
  });

  it("instrument: official names, Hokupa'a, GMOS only on request, others passed through with other=True", () => {
    const cases: [unknown, boolean, boolean, string | null][] = [
      ["NIRI", false, false, "NIRI"],
      ["niri", false, false, "NIRI"],
      ["GMOS-N", true, false, "GMOS-N"],
      ["gmos-s", true, false, "GMOS-S"],
      ["F2", true, false, "F2"],
      ["TRECS", true, false, "TReCS"],
      ["Michelle", true, false, "michelle"],
      ["BHROS", true, false, "bHROS"],
      ["Maroon-X", true, false, "MAROON-X"],
      ["GMOS", false, false, null],
      ["GMOS", false, true, "GMOS"],
      ["gmos", true, true, "GMOS"],
      ["FUBAR", false, false, null],
      ["FUBAR", true, false, "FUBAR"],
      ["FLAM", true, false, "FLAM"],
      ["GS_ALLSKYCAMERA", true, false, "GS_ALLSKYCAMERA"],
      ["hokuPAAquIRC", false, false, "Hokupaa+QUIRC"],
      ["Hokupaaa++QUIRC", true, false, "Hokupaa+QUIRC"],
      ["HokupQUIRC", true, false, "HokupQUIRC"],
      ["constructor", false, false, null],
      ["constructor", true, false, "constructor"],
      ["", true, false, ""],
      ["", false, false, null],
      [null, true, false, null],
      [42, true, false, null],
    ];
    for (const [value, other, gmos, expected] of cases) {
      assert.equal(
        geminiInstrument(value, other, gmos),
        expected,
        `${String(value)} other=${other} gmos=${gmos}`,
      );
    }
  });

  it("observation type and class: exact members of the enums, case-sensitive", () => {
    assert.equal(geminiObservationType("DARK"), "DARK");
    assert.equal(geminiObservationType("BPM"), "BPM");
    assert.equal(geminiObservationType("RONCHI"), "RONCHI");
    assert.equal(geminiObservationType("dark"), null);
    assert.equal(geminiObservationType("FUBAR"), null);
    assert.equal(geminiObservationType(""), null);
    assert.equal(geminiObservationType(3), null);
    assert.equal(
      headerObservationType("FLAT", new Set(["PINHOLE"])),
      "PINHOLE",
    );
    assert.equal(
      headerObservationType("FLAT", new Set(["PINHOLE", "RONCHI"])),
      "RONCHI",
    );
    assert.equal(headerObservationType("FLAT", new Set()), "FLAT");
    assert.equal(headerObservationType("flat", new Set(["GNIRS"])), null);
    assert.equal(geminiObservationClass("science"), "science");
    assert.equal(geminiObservationClass("partnerCal"), "partnerCal");
    assert.equal(geminiObservationClass("nightCal"), "nightCal");
    assert.equal(geminiObservationClass("partnercal"), null);
    assert.equal(geminiObservationClass("fubar"), null);
    assert.equal(geminiObservationClass(null), null);
    assert.equal(isSiteMonitoring("GS_ALLSKYCAMERA"), true);
    assert.equal(isSiteMonitoring("GMOS-S"), false);
    assert.equal(isSiteMonitoring(null), false);
  });
});

const card = (keyword: string, value: string | number): string =>
  `${keyword.padEnd(8)}= ${typeof value === "string" ? `'${value}'` : String(value)}`;

/** A raw GMOS-S long-slit spectrum of `object` at (ra, dec), with extra cards. */
function gmosSpectrum(
  object: string | undefined,
  ra: number | undefined,
  dec: number | undefined,
  extra: string[] = [],
): Header {
  return headerWith([
    card("INSTRUME", "GMOS-S"),
    card("OBSERVAT", "Gemini-South"),
    card("OBSTYPE", "OBJECT"),
    ...(object === undefined ? [] : [card("OBJECT", object)]),
    card("MASKTYP", 1),
    card("MASKNAME", "1.0arcsec"),
    card("GRATING", "B600+_G5323"),
    ...(ra === undefined ? [] : [card("RA", ra)]),
    ...(dec === undefined ? [] : [card("DEC", dec)]),
    ...extra,
  ]);
}

const tagsOf = (phu: Header, file?: TagFileContext): string[] => {
  const result = computeTags(phu, file);
  assert.equal(result.error, undefined, result.error);
  return [...result.tags].sort();
};
const isStandard = (phu: Header, file?: TagFileContext) => {
  const tags = tagsOf(phu, file);
  return tags.includes("STANDARD") && tags.includes("CAL");
};

// LTT 4364 (2661.594, −344.847 mas/yr): J2000.0 position, and astropy's positions
// on 2020-06-01T00:00 and after the ten-year default.
const LTT4364_J2000 = [176.4288211081046, -64.84151780300611] as const;
const LTT4364_2020 = [176.46432700402164, -64.84346911917416] as const;
const LTT4364_10Y = [176.44621271134284, -64.84247469569131] as const;
const JUNE_2020 = [card("DATE-OBS", "2020-06-01"), card("UT", "00:00:00")];

describe("GMOS spectrophotometric STANDARD tag (get_specphot_name)", () => {
  it("has the 46 stars of the stored DRAGONS lookup, hilt600 well-formed", () => {
    assert.equal(SPECPHOT_STANDARDS.length, 46);
    assert.equal(new Set(SPECPHOT_STANDARDS.map((s) => s[0])).size, 46);
    assert.deepEqual(
      SPECPHOT_STANDARDS.find((s) => s[0] === "hilt600"),
      ["hilt600", "06 45 13.3726265810 +02 08 14.688016523", -1.169, -0.534],
    );
    // Separation from a star to itself after its own motion is 0; astropy gives 54.790″ from
    // LTT 4364's J2000.0 place to where it is in June 2020.
    const days = (Date.UTC(2020, 5, 1) - Date.UTC(2000, 0, 1, 12)) / 86_400_000;
    const at = (ra: number, dec: number) =>
      specphotSeparations({ ra, dec }, days).find((s) => s.name === "ltt4364")
        ?.arcsec;
    const fromJ2000 = at(...LTT4364_J2000) ?? 0;
    assert.ok(Math.abs(fromJ2000 - 54.79003240508684) < 1e-6, `${fromJ2000}″`);
    const fromItself = at(...LTT4364_2020) ?? 1;
    assert.ok(fromItself < 1e-6, `${fromItself}″`);
    assert.equal(
      specphotName({ ra: 176.4643, dec: -64.8435 }, "x", days),
      "ltt4364",
    );
    assert.equal(
      specphotName({ ra: Number.NaN, dec: -64.8435 }, "x", days),
      undefined,
    );
  });

  it("the real Hz 44 acquisition (N20120105S0344), as a spectrum: 2.03″ off, so only the name rescues it", () => {
    const dump = loadHeaderDumps().find((d) =>
      d.name.startsWith("N20120105S0344"),
    );
    assert.ok(dump, "the N20120105S0344 header dump");
    const cards = (changes: Record<string, string>) =>
      (dump.hdus[0] ?? []).map((c) => {
        const keyword = c.slice(0, 8).trim();
        return keyword in changes ? card(keyword, changes[keyword] ?? "") : c;
      });
    const phu = (changes: Record<string, string>) =>
      headerWith(cards(changes), { minimal: false });
    // As observed (an image through the slit): no STANDARD.
    assert.equal(isStandard(phu({})), false);
    // astropy: 2.0323″ from hz44 moved to 2012-01-05T15:26:27.7; OBJECT is a sentence.
    assert.equal(isStandard(phu({ GRATING: "B600+_G5307" })), false);
    assert.deepEqual(tagsOf(phu({ GRATING: "B600+_G5307", OBJECT: "Hz 44" })), [
      "ACQUISITION",
      "CAL",
      "GEMINI",
      "GMOS",
      "LS",
      "NORTH",
      "RAW",
      "SIDEREAL",
      "SPECT",
      "STANDARD",
      "UNPREPARED",
    ]);
    assert.equal(
      isStandard(phu({ GRATING: "B600+_G5307", OBJECT: "HZ44" })),
      true,
    );
    assert.equal(
      isStandard(phu({ GRATING: "B600+_G5307", OBJECT: "hz 43" })),
      false,
    );
  });

  it("under 2″ any name matches; under 10″ only the star's own name", () => {
    // hz44 at 2012-01-05T15:26:27.7 (astropy); then 5″ and 11″ north of it.
    const [ra, dec] = [200.89665655865204, 36.13319214952816];
    const date = [card("DATE-OBS", "2012-01-05"), card("UT", "15:26:27.7")];
    assert.equal(isStandard(gmosSpectrum("NGC 1", ra, dec, date)), true);
    assert.equal(
      isStandard(gmosSpectrum("NGC 1", ra, dec + 5 / 3600, date)),
      false,
    );
    assert.equal(
      isStandard(gmosSpectrum("Hz 44", ra, dec + 5 / 3600, date)),
      true,
    );
    assert.equal(
      isStandard(gmosSpectrum("Hz 44", ra, dec + 11 / 3600, date)),
      false,
    );
    assert.equal(
      isStandard(gmosSpectrum("Hz 44", ra + 0.01, dec, date)),
      false,
    );
  });

  it("moves the catalogue stars by their proper motion to the observation date", () => {
    assert.equal(
      isStandard(gmosSpectrum("x", ...LTT4364_2020, JUNE_2020)),
      true,
    );
    // 54.79″ away from where the star was in J2000.0.
    assert.equal(
      isStandard(gmosSpectrum("LTT 4364", ...LTT4364_J2000, JUNE_2020)),
      false,
    );
    // The hilt600 entry (the one that is malformed in another stored copy) matches.
    assert.equal(
      isStandard(
        gmosSpectrum("Hiltner 600", 101.30571435089169, 2.137411089046897, [
          card("DATE-OBS", "2015-03-01"),
          card("UT", "01:00:00"),
        ]),
      ),
      true,
    );
  });

  it("without an observation time the stars move ten years; the file-name date counts", () => {
    const phu = gmosSpectrum("x", ...LTT4364_10Y);
    assert.equal(isStandard(phu), true);
    assert.equal(isStandard(gmosSpectrum("x", ...LTT4364_2020)), false);
    // With the file's context, ut_datetime falls back to the file name's date (00:00).
    const file = { sci: [new Header()], fileName: "S20200601S0001.fits" };
    assert.equal(isStandard(gmosSpectrum("x", ...LTT4364_2020), file), true);
    assert.equal(isStandard(phu, file), false);
  });

  it("applies the header's proper motion (PMRA s/yr, PMDEC ″/yr) from EPOCH to the target", () => {
    // Header pm equal to the star's: astropy puts the target 0.016″ from the star in 2020.
    const pm = [card("PMRA", 0.4173836328719129), card("PMDEC", -0.344847)];
    assert.equal(
      isStandard(gmosSpectrum("x", ...LTT4364_J2000, [...JUNE_2020, ...pm])),
      true,
    );
    // From EPOCH 2010 the target moves only ten years: 26.8″ short.
    assert.equal(
      isStandard(
        gmosSpectrum("x", ...LTT4364_J2000, [
          ...JUNE_2020,
          ...pm,
          card("EPOCH", 2010.0),
        ]),
      ),
      false,
    );
    // A non-numeric EPOCH is a TypeError upstream: no match, no failure.
    assert.equal(
      isStandard(
        gmosSpectrum("x", ...LTT4364_J2000, [
          ...JUNE_2020,
          ...pm,
          card("EPOCH", "J2000"),
        ]),
      ),
      false,
    );
  });

  it("only spectra of OBSTYPE OBJECT with a position; what breaks upstream breaks here", () => {
    const at = [...LTT4364_2020] as const;
    const phu = (extra: string[]) =>
      gmosSpectrum("x", ...at, [...JUNE_2020, ...extra]);
    // An image (MASKTYP 0 or MIRROR) is not a spectrum.
    const edit = (keyword: string, value: string | number) =>
      headerWith(
        phuCards("x", at).map((c) =>
          c.startsWith(keyword) ? card(keyword, value) : c,
        ),
      );
    assert.equal(isStandard(edit("MASKTYP", 0)), false);
    assert.equal(isStandard(edit("GRATING", "MIRROR")), false);
    assert.equal(isStandard(edit("MASKNAME", "None")), false);
    assert.equal(isStandard(phu([])), true);
    // Not OBJECT: a flat at a star's position is just a flat.
    const flat = computeTags(edit("OBSTYPE", "FLAT"));
    assert.deepEqual(
      [flat.tags.has("FLAT"), flat.tags.has("STANDARD")],
      [true, false],
    );
    // No RA, or an impossible Dec: no match (TypeError / ValueError upstream).
    assert.equal(
      isStandard(gmosSpectrum("x", undefined, at[1], JUNE_2020)),
      false,
    );
    assert.equal(isStandard(gmosSpectrum("x", at[0], 91, JUNE_2020)), false);
    // Sexagesimal RA/DEC text is read.
    assert.equal(
      isStandard(
        gmosSpectrum("x", undefined, undefined, [
          card("RA", "11:45:51.438"),
          card("DEC", "-64:50:36.489"),
          ...JUNE_2020,
        ]),
      ),
      true,
    );
    // No OBJECT on an OBJECT spectrum, or a proper motion without any date: the reference raises.
    assert.match(
      computeTags(gmosSpectrum(undefined, ...at, JUNE_2020)).error ?? "",
      /OBJECT is missing/,
    );
    assert.match(
      computeTags(gmosSpectrum("x", ...at, [card("PMDEC", 0.1)])).error ?? "",
      /PMDEC is set but the observation time is unknown/,
    );
    // ...but a zero proper motion needs no date.
    assert.equal(
      computeTags(gmosSpectrum("x", ...at, [card("PMRA", 0)])).error,
      undefined,
    );
  });
});

/** The cards of gmosSpectrum in June 2020, for edits. */
function phuCards(
  object: string,
  [ra, dec]: readonly [number, number],
): string[] {
  return [
    card("INSTRUME", "GMOS-S"),
    card("OBSERVAT", "Gemini-South"),
    card("OBSTYPE", "OBJECT"),
    card("OBJECT", object),
    card("MASKTYP", 1),
    card("MASKNAME", "1.0arcsec"),
    card("GRATING", "B600+_G5323"),
    card("RA", ra),
    card("DEC", dec),
    ...JUNE_2020,
  ];
}
