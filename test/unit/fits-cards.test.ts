import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Card, parseValueField } from "../../lib/fits/card.js";
import { cardImage, formatCard } from "../../lib/fits/write.js";
import { headerWith } from "../helpers/fits.js";

function value(field: string) {
  return parseValueField(cardImage(`KEY     = ${field}`), 10);
}

const headerOf = (images: string[]) => headerWith(images);

describe("card values", () => {
  it("strings: '' escapes, trailing spaces dropped, leading kept, comments after", () => {
    assert.deepEqual(value("'O''Brien  '        / the observer"), {
      kind: "string",
      value: "O'Brien",
      comment: "the observer",
    });
    assert.equal(value("'  indented'").value, "  indented");
    assert.equal(value("''").value, "");
    assert.equal(value("'a / b'  / real comment").value, "a / b");
  });

  it("logical, integer, big integer, float with E and D exponents, complex", () => {
    assert.deepEqual(value("T / yes"), {
      kind: "bool",
      value: true,
      comment: "yes",
    });
    assert.equal(value("F").value, false);
    assert.deepEqual(value("-42"), {
      kind: "int",
      value: -42,
      comment: undefined,
    });
    assert.equal(value("123456789012345678901").value, 123456789012345678901n);
    assert.deepEqual(value("1.5E-03"), {
      kind: "float",
      value: 0.0015,
      comment: undefined,
    });
    assert.equal(value("-2.5D+02").value, -250);
    assert.equal(value(".5").value, 0.5);
    assert.deepEqual(value("(1.5, -2)").value, { re: 1.5, im: -2 });
  });

  it("undefined and invalid values", () => {
    assert.deepEqual(value("              / only a comment"), {
      kind: "undefined",
      value: null,
      comment: "only a comment",
    });
    assert.equal(value("").kind, "undefined");
    assert.deepEqual(value("NOT_A_VALUE"), {
      kind: "invalid",
      value: "NOT_A_VALUE",
      comment: undefined,
    });
    assert.equal(value("'never closed").kind, "invalid");
  });

  it("commentary cards keep their text; a card without '= ' is commentary", () => {
    const comment = new Card("COMMENT", [
      cardImage("COMMENT   This is a comment   "),
    ]);
    assert.equal(comment.kind, "commentary");
    assert.equal(comment.value, "  This is a comment");
    assert.equal(
      new Card("DATE", [cardImage("DATE    'no indicator'")]).kind,
      "commentary",
    );
  });

  it("formatCard round-trips through the parser", () => {
    for (const v of ["text with 'quotes'", 7, -1.25, true, false, null]) {
      const card = formatCard("TESTKEY", v, "a comment");
      assert.equal(card.length, 80);
      assert.deepEqual(parseValueField(card, 10).value, v);
    }
    assert.throws(() => cardImage("x".repeat(81)), /80 characters/);
  });
});

describe("headers", () => {
  it("keeps order and duplicates; joins CONTINUE long strings; reads HIERARCH keywords", () => {
    const header = headerOf([
      "HISTORY first",
      "OBJECT  = 'NGC 1234'",
      "HISTORY second",
      "LONGSTR = 'This is a long string value that is continued over two &'",
      "CONTINUE  'cards because it does not fit&'",
      "CONTINUE  ' in one.'           / with a comment",
      "HIERARCH ESO DET CHIP NAME = 'ccd42' / hierarchical",
      "AMPNAME = 'EEV 9273-16-03, left&'",
      "CONTINUE  'right&'",
      "SINGLE  = 'ends with &'",
      "object  = 'duplicate keeps first'",
    ]);
    assert.deepEqual(
      header.cards.map((c) => c.keyword),
      [
        "SIMPLE",
        "BITPIX",
        "NAXIS",
        "HISTORY",
        "OBJECT",
        "HISTORY",
        "LONGSTR",
        "ESO DET CHIP NAME",
        "AMPNAME",
        "SINGLE",
        "OBJECT",
      ],
    );
    assert.equal(header.get("object"), "NGC 1234");
    assert.deepEqual(
      header.all("HISTORY").map((c) => c.value),
      ["first", "second"],
    );
    assert.equal(
      header.get("LONGSTR"),
      "This is a long string value that is continued over two cards because it does not fit in one.",
    );
    assert.equal(header.card("LONGSTR")?.comment, "with a comment");
    assert.equal(header.get("ESO DET CHIP NAME"), "ccd42");
    // astropy drops the "&" of the last segment too, but not of a single card.
    assert.equal(header.get("AMPNAME"), "EEV 9273-16-03, leftright");
    assert.equal(header.get("SINGLE"), "ends with &");
    assert.equal(header.all("OBJECT").length, 2);
    assert.equal(header.get("MISSING"), undefined);
  });
});
