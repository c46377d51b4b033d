/**
 * The Python semantics the rules depend on: exact Decimal-to-float
 * comparison, literal_eval of header.types, and float parameters.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  Decimal,
  floatLiteral,
  parseTypes,
  ReferenceRaised,
} from "../../lib/cal/core/python.js";

describe("Decimal against a float literal", () => {
  it("compares by exact value, as Python does", () => {
    // The double nearest 2.7 is 2.70000000000000017…, so Decimal('2.7') < 2.7.
    assert.equal(new Decimal("2.700000").lt(2.7), true);
    assert.equal(Number("2.700000") < 2.7, false);
    // The double nearest 2.8 is 2.79999999999999982…
    assert.equal(new Decimal("2.800000").lt(2.8), false);
    assert.equal(new Decimal("2.799999").lt(2.8), true);
    // 0.55 is 0.55000000000000004…, so 0.55 is not greater.
    assert.equal(new Decimal("0.550000").gt(0.55), false);
    assert.equal(new Decimal("0.550001").gt(0.55), true);
    assert.equal(new Decimal("4.25").ge(4.25), true);
    assert.equal(new Decimal("85.000000000000").lt(85), false);
    assert.equal(new Decimal("-1e-3").lt(0), true);
  });

  it("has Python truthiness", () => {
    assert.equal(new Decimal("0.000000").truthy, false);
    assert.equal(new Decimal("0.000001").truthy, true);
  });

  it("sends floats as the numeric of their shortest repr", () => {
    assert.equal(floatLiteral(0.7 + 0.075).text, "0.7749999999999999");
    assert.equal(floatLiteral(0.7 - 0.015).text, "0.6849999999999999");
    assert.equal(floatLiteral(1e-7).lt(1e-7), false);
  });
});

describe("header.types through literal_eval", () => {
  it("reads the set repr that ingest writes", () => {
    const tags = parseTypes("{'GMOS', 'LS', 'SPECT'}");
    assert.equal(tags.has("LS"), true);
    assert.equal(tags.has("MOS"), false);
  });

  it("reads set(), lists, tuples and double quotes", () => {
    assert.equal(parseTypes("set()").has("X"), false);
    assert.equal(parseTypes('["A", "B"]').has("B"), true);
    assert.equal(parseTypes("('A',)").has("A"), true);
  });

  it("tests a bare string for a substring, as `in` does", () => {
    assert.equal(parseTypes("'GMOS'").has("MOS"), true);
  });

  it("raises on NULL or anything literal_eval cannot read", () => {
    assert.throws(() => parseTypes(null), ReferenceRaised);
    assert.throws(() => parseTypes("{GMOS}"), ReferenceRaised);
    assert.throws(() => parseTypes("{'A'} junk"), ReferenceRaised);
  });
});
