/**
 * Every FITS fixture read by fitsfleet agrees with astropy, card by card:
 * HDU count and locations, keywords in order (duplicates kept), value kinds and
 * values. The oracle file is produced by test/fixtures/astropy-oracle.py.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import type { Card } from "../../lib/fits/card.js";
import { readFitsFile } from "../../lib/fits/read.js";
import { BLOCK } from "../../lib/fits/scanner.js";
import { packageRoot } from "../../lib/paths.js";
import { sharedPath } from "../helpers/shared.js";

type OracleCard = [string, string, unknown];
interface Oracle {
  astropy: string;
  files: Record<
    string,
    {
      hdus: {
        headerOffset: number;
        dataOffset: number;
        dataSpan: number;
        cards: OracleCard[];
      }[];
    }
  >;
}

const oracle = JSON.parse(
  readFileSync(
    join(packageRoot(), "test", "fixtures", "astropy-oracle.json"),
    "utf8",
  ),
) as Oracle;

function ours(card: Card): OracleCard {
  const value = card.value;
  switch (card.kind) {
    case "int":
      return [card.keyword, "int", String(value)];
    case "float":
      return [card.keyword, "float", value];
    case "complex": {
      const c = value as { re: number; im: number };
      return [card.keyword, "complex", [c.re, c.im]];
    }
    case "undefined":
      return [card.keyword, "undefined", null];
    default:
      return [card.keyword, card.kind, value];
  }
}

function theirs(card: OracleCard): OracleCard {
  const [keyword, kind, value] = card;
  if (kind === "float") {
    return [keyword, kind, Number(value)];
  }
  if (kind === "complex") {
    return [keyword, kind, (value as string[]).map(Number)];
  }
  return card;
}

describe(`FITS fixtures against astropy ${oracle.astropy}`, () => {
  for (const [name, expected] of Object.entries(oracle.files)) {
    it(name, async () => {
      const result = await readFitsFile(sharedPath("fixtures", "fits", name));
      const hdus = result.structure.hdus;
      assert.equal(hdus.length, expected.hdus.length, "HDU count");
      expected.hdus.forEach((want, i) => {
        const hdu = hdus[i];
        assert.ok(hdu);
        assert.equal(
          hdu.headerOffset,
          want.headerOffset,
          `HDU ${i} header offset`,
        );
        assert.equal(hdu.dataOffset, want.dataOffset, `HDU ${i} data offset`);
        assert.equal(
          Math.ceil(hdu.dataSize / BLOCK) * BLOCK,
          want.dataSpan,
          `HDU ${i} data span`,
        );
        assert.deepEqual(
          hdu.header.cards.map(ours),
          want.cards.map(theirs),
          `HDU ${i} cards`,
        );
      });
    });
  }
});
