/**
 * Every real Gemini header dump becomes a FITS file that reads back with the
 * same HDUs and cards, and with the HDU layout the reference's own library
 * reported (shared/fixtures/expected).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { readHeaders } from "../../lib/fits/read.js";
import { loadHeaderDumps, writeDumpAsFits } from "../helpers/header-dumps.js";
import { sharedPath } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

interface ExpectedHdu {
  index: number;
  BITPIX: number;
  NAXIS: number;
  NAXISn: number[];
  EXTNAME: string | null;
  XTENSION: string | null;
  n_cards: number;
}

function expectedFor(
  instrument: string,
): Record<string, { hdus: ExpectedHdu[] }> {
  const file = join(sharedPath("fixtures", "expected"), `${instrument}.json`);
  return existsSync(file)
    ? (JSON.parse(readFileSync(file, "utf8")) as Record<
        string,
        { hdus: ExpectedHdu[] }
      >)
    : {};
}

const dumps = loadHeaderDumps();

describe("Gemini header dumps as FITS files", () => {
  it("there are dumps for every instrument the archive maps", () => {
    const counts = Object.fromEntries(
      ["GMOS", "NIRI", "F2", "GNIRS"].map((i) => [
        i,
        dumps.filter((d) => d.instrument === i).length,
      ]),
    );
    assert.deepEqual(counts, { GMOS: 30, NIRI: 20, F2: 26, GNIRS: 22 });
  });

  for (const instrument of ["GMOS", "NIRI", "F2", "GNIRS"]) {
    it(`${instrument}: every dump reads back with its HDUs and cards, matching the expected layout`, (t) => {
      const dir = tempDir(t);
      const expected = expectedFor(instrument);
      let compared = 0;
      for (const dump of dumps.filter((d) => d.instrument === instrument)) {
        const path = join(dir, dump.fitsName);
        writeDumpAsFits(dump, path);
        const { hdus } = readHeaders(path);
        assert.equal(hdus.length, dump.hdus.length, `${dump.name}: HDU count`);
        hdus.forEach((hdu, i) => {
          const lines = dump.hdus[i] ?? [];
          const continued = lines.filter((l) =>
            l.startsWith("CONTINUE"),
          ).length;
          assert.equal(
            hdu.header.length,
            lines.length - continued,
            `${dump.name} HDU ${i}: card count`,
          );
        });
        const want = expected[dump.name];
        if (want !== undefined) {
          compared++;
          assert.equal(
            hdus.length,
            want.hdus.length,
            `${dump.name}: HDU count vs expected`,
          );
          for (const e of want.hdus) {
            const hdu = hdus[e.index];
            assert.ok(hdu, `${dump.name}: HDU ${e.index}`);
            assert.equal(
              hdu.bitpix,
              e.BITPIX,
              `${dump.name} HDU ${e.index} BITPIX`,
            );
            assert.deepEqual(
              hdu.axes,
              e.NAXISn,
              `${dump.name} HDU ${e.index} NAXISn`,
            );
            assert.equal(
              hdu.header.string("EXTNAME") ?? null,
              e.EXTNAME,
              `${dump.name} HDU ${e.index} EXTNAME`,
            );
            assert.equal(
              hdu.header.length,
              e.n_cards,
              `${dump.name} HDU ${e.index} cards`,
            );
          }
        }
      }
      assert.equal(
        compared,
        Object.keys(expected).length,
        "every expected entry has a dump",
      );
    });
  }
});
