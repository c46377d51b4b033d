/**
 * Tags for every header dump that has expected values: the same set the
 * reference's metadata library (DRAGONS v4.2.2) computed.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { applyTagSets, computeTags, typesText } from "../../lib/gemini/tags.js";
import { headerWith } from "../helpers/fits.js";
import { loadHeaderDumps } from "../helpers/header-dumps.js";
import { sharedPath } from "../helpers/shared.js";

/** Every header here (dumps and crafted ones) already starts with SIMPLE, BITPIX, NAXIS. */
const primary = (cards: string[]) => headerWith(cards, { minimal: false });

const dumps = loadHeaderDumps();

describe("Gemini tags", () => {
  for (const instrument of ["GMOS", "NIRI", "F2", "GNIRS"]) {
    it(`${instrument}: every expected tag set`, () => {
      const file = join(
        sharedPath("fixtures", "expected"),
        `${instrument}.json`,
      );
      assert.ok(existsSync(file));
      const expected = JSON.parse(readFileSync(file, "utf8")) as Record<
        string,
        { tags: string[] }
      >;
      const mismatches: string[] = [];
      for (const [name, want] of Object.entries(expected)) {
        const dump = dumps.find(
          (d) => d.instrument === instrument && d.name === name,
        );
        assert.ok(dump, `no dump for ${name}`);
        const result = computeTags(primary(dump.hdus[0] ?? []));
        assert.equal(result.error, undefined, `${name}: ${result.error}`);
        const got = [...result.tags].sort();
        if (got.join(" ") !== [...want.tags].sort().join(" ")) {
          mismatches.push(
            `${name}: got ${got.join(" ")}; expected ${[...want.tags].sort().join(" ")}`,
          );
        }
      }
      assert.deepEqual(mismatches, []);
    });
  }

  it("applies blockers and removers before plain adders, whatever their order", () => {
    const tags = applyTagSets([
      { add: ["IMAGE", "LS"] },
      { add: ["THRUSLIT"], ifPresent: ["IMAGE"] },
      { add: ["DARK", "CAL"], blocks: ["IMAGE", "SPECT"] },
      { add: ["FLAT", "GCALFLAT"] },
      { add: ["PINHOLE"], remove: ["GCALFLAT", "FLAT"] },
    ]);
    assert.deepEqual([...tags].sort(), ["CAL", "DARK", "PINHOLE"]);
  });

  it("a non-numeric AIRMASS string breaks the computation with a reason; non-Gemini files get no tags", () => {
    const broken = computeTags(
      primary([
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    0",
        "INSTRUME= 'NIRI'",
        "FRAME   = 'AZEL_TOPO'",
        "AIRMASS = 'unknown'",
      ]),
    );
    assert.match(broken.error ?? "", /AIRMASS is the string "unknown"/);
    const other = computeTags(
      primary([
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    0",
        "TELESCOP= 'HST'",
      ]),
    );
    assert.equal(other.instrumentClass, undefined);
    assert.equal(typesText(other.tags), "set()");
    assert.equal(
      typesText(new Set(["RAW", "GEMINI", "NIRI"])),
      "{'GEMINI', 'NIRI', 'RAW'}",
    );
  });
});
