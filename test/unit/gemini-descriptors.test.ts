/**
 * The generic descriptors for every header dump with expected values: the same
 * values the reference's metadata library (DRAGONS v4.2.2) returned.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe as suite, it } from "node:test";

import { readHeaders } from "../../lib/fits/read.js";
import {
  adaptiveOptics,
  describe,
  descriptorTable,
  gcalLamp,
  geminiFile,
  laserGuideStar,
  parsePercentile,
  wavefrontSensor,
} from "../../lib/gemini/descriptors.js";
import { f2FilterName } from "../../lib/gemini/f2.js";
import { structureWith } from "../helpers/fits.js";
import { loadHeaderDumps, writeDumpAsFits } from "../helpers/header-dumps.js";
import { sharedPath } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const dumps = loadHeaderDumps();
const PRETTY = [
  "filter_name",
  "disperser",
  "camera",
  "focal_plane_mask",
  "pupil_mask",
] as const;

/**
 * The oracle called pupil_mask without pretty=True, which the archive passes
 * (docs/MAPPING-NOTES.md §6.2): its `pupil38_G5207` is the archive's `pupil38`.
 */
const prettyPupil = (value: unknown): unknown =>
  typeof value === "string" ? value.replace(/_G\d{4}.*$/, "") : value;

function same(got: unknown, want: unknown): boolean {
  if (Array.isArray(got) && Array.isArray(want)) {
    return got.length === want.length && got.every((g, i) => same(g, want[i]));
  }
  if (typeof got === "number" && typeof want === "number") {
    return Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want));
  }
  return got === want;
}

suite("generic Gemini descriptors", () => {
  for (const instrument of ["GMOS", "NIRI", "F2", "GNIRS"]) {
    it(`${instrument}: every expected value`, (t) => {
      const dir = tempDir(t);
      const expected = JSON.parse(
        readFileSync(
          join(sharedPath("fixtures", "expected"), `${instrument}.json`),
          "utf8",
        ),
      ) as Record<string, { descriptors: Record<string, unknown> }>;
      const mismatches: string[] = [];
      let compared = 0;
      for (const [name, want] of Object.entries(expected)) {
        const dump = dumps.find(
          (d) => d.instrument === instrument && d.name === name,
        );
        assert.ok(dump, `no dump for ${name}`);
        const path = join(dir, dump.fitsName);
        writeDumpAsFits(dump, path);
        const file = geminiFile(readHeaders(path), `${dump.fitsName}.bz2`);
        const { values, errors } = describe(file);
        // Keys the oracle does not record (e.g. F2's lyot_stop) are checked elsewhere.
        for (const key of Object.keys(
          descriptorTable(file.instrumentClass),
        ).filter((k) => k in want.descriptors)) {
          compared++;
          // The oracle shows the first data section as text, and GMOS read areas joined with "+".
          const value = values[key];
          const got =
            key === "data_section" && Array.isArray(value)
              ? (value[0] ?? null)
              : key === "amp_read_area" &&
                  Array.isArray(value) &&
                  typeof want.descriptors[key] === "string"
                ? value.join("+")
                : value;
          const wanted =
            key === "pupil_mask"
              ? prettyPupil(want.descriptors[key])
              : want.descriptors[key];
          if (!same(got, wanted)) {
            mismatches.push(
              `${name} ${key}: got ${JSON.stringify(got)}, expected ${JSON.stringify(wanted)}${errors[key] === undefined ? "" : ` (${errors[key]})`}`,
            );
          }
        }
      }
      assert.deepEqual(mismatches, []);
      assert.ok(compared > 200);
    });
  }

  it("every descriptor the archive calls with pretty=True drops component IDs, for every instrument", (t) => {
    // filter_name, disperser, camera, focal_plane_mask and pupil_mask (DOMAIN.md §2.4).
    const dir = tempDir(t);
    const kept: string[] = [];
    for (const dump of dumps) {
      const path = join(dir, dump.fitsName);
      writeDumpAsFits(dump, path);
      const { values } = describe(
        geminiFile(readHeaders(path), `${dump.fitsName}.bz2`),
      );
      for (const key of PRETTY) {
        const value = values[key];
        if (typeof value === "string" && /_G\d{4}/.test(value)) {
          kept.push(`${dump.name} ${key}: ${value}`);
        }
      }
    }
    assert.deepEqual(kept, []);
    const niri = describe(
      geminiFile(
        structureWith([
          "INSTRUME= 'NIRI'",
          "FILTER1 = 'K(prime)_G0207'",
          "FILTER2 = 'open'",
          "FILTER3 = 'pupil38_G5207'",
        ]),
        "N20030325S0098.fits",
      ),
    );
    assert.equal(niri.values.pupil_mask, "pupil38");
    const generic = describe(
      geminiFile(
        structureWith(["INSTRUME= 'GNIRS'", "PUPILMSK= 'pupil17_G5299'"]),
        "N20200101S0001.fits",
      ),
    );
    assert.equal(generic.values.pupil_mask, "pupil17");
  });

  it("header columns from PHU keywords: GCAL lamp, wavefront sensors, AO, laser", () => {
    const file = (cards: string[]) =>
      geminiFile(structureWith(cards), "N20200101S0001.fits");
    assert.equal(
      gcalLamp(file(["GCALLAMP= 'IRhigh'", "GCALSHUT= 'CLOSED'"])),
      "Off",
    );
    assert.equal(
      gcalLamp(file(["GCALLAMP= 'IRhigh'", "GCALSHUT= 'OPEN'"])),
      "IRhigh",
    );
    assert.equal(
      gcalLamp(file(["GCALLAMP= 'QH'", "GCALSHUT= 'CLOSED'"])),
      "QH",
    );
    assert.equal(
      gcalLamp(file(["GCALLAMP= 'No Value'", "GCALSHUT= 'OPEN'"])),
      "Off",
    );
    assert.equal(gcalLamp(file(["GCALLAMP= 'QH'"])), null);
    assert.equal(
      wavefrontSensor(
        file([
          "PWFS2_ST= 'guiding'",
          "OIWFS_ST= 'guiding'",
          "AOWFS_ST= 'parked'",
        ]),
      ),
      "OIWFS&PWFS2",
    );
    assert.equal(
      wavefrontSensor(file(["PWFS1_ST= 'parked'", "GWFS1CFG= 'x'"])),
      "GEMS",
    );
    assert.equal(wavefrontSensor(file([])), null);
    assert.equal(adaptiveOptics(file(["AOFOLD  = 'IN'"])), true);
    assert.equal(adaptiveOptics(file(["AOFOLD  = 'park-pos.'"])), false);
    assert.equal(laserGuideStar(file(["LGUSTAGE= 'IN'"])), true);
    assert.equal(laserGuideStar(file(["LGSLOOP = 'OPEN'"])), false);
  });

  it("each class uses its own table: GMOS exposure time has no coadds and no value above 10,000 s", () => {
    const cards = (instrument: string, exptime: number) => [
      `INSTRUME= '${instrument}'`,
      `EXPTIME = ${exptime}`,
      "COADDS  =                    3",
    ];
    const exposure = (instrument: string, exptime: number) =>
      describe(
        geminiFile(
          structureWith(cards(instrument, exptime)),
          "N20200101S0001.fits",
        ),
      ).values.exposure_time;
    assert.equal(exposure("NIRI", 20), 60);
    assert.equal(exposure("GMOS-N", 20), 20);
    assert.equal(exposure("GMOS-N", 20000), null);
    assert.equal(exposure("NIRI", 20000), 60000);
  });

  it("F2 rules the oracle does not show: Lyot 'Undefined', camera from the pixel scale, plain filters", () => {
    const f2 = (cards: string[]) =>
      describe(
        geminiFile(
          structureWith([
            "INSTRUME= 'F2      '",
            "FILTER1 = 'J_G0802 '",
            "FILTER2 = 'DK_G0807'",
            ...cards,
          ]),
          "S20200101S0001.fits",
        ),
      ).values;
    assert.equal(f2(["LYOT    = 'Undefined'"]).lyot_stop, null);
    assert.equal(f2(["LYOT    = 'f/16_G5830'"]).camera, "f/16");
    assert.equal(
      f2(["PIXSCALE=                 0.09"]).camera,
      "f/32",
      "no Lyot stop: decided by a pixel scale under 0.1 arcsec",
    );
    assert.equal(f2(["PIXSCALE=                 0.18"]).camera, "f/16");
    assert.equal(f2([]).filter_name, "dark");
    assert.equal(
      f2FilterName(
        geminiFile(
          structureWith([
            "INSTRUME= 'F2      '",
            "FILTER1 = 'J_G0802 '",
            "FILTER2 = 'DK_G0807'",
          ]),
          "x.fits",
        ),
        "plain",
      ),
      "J_G0802&DK_G0807",
    );
  });

  it("percentiles: Any, NN-percentile, and nothing else", () => {
    assert.equal(parsePercentile("Any"), 100);
    assert.equal(parsePercentile("70-percentile"), 70);
    assert.equal(parsePercentile("100-percentile"), null);
    assert.equal(parsePercentile("UNKNOWN"), null);
    assert.equal(parsePercentile(85), null);
    assert.equal(parsePercentile(undefined), null);
  });
});
