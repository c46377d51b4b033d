/**
 * The rebuild's array parameters: `arrayLiteral` gives the bytes
 * node-postgres's own conversion gives for the same array (so the server
 * receives what it received before), and PostgreSQL reads them back as the
 * values they came from, awkward text included (quotes, backslashes, commas,
 * braces, the word NULL, empty strings, spaces, unicode) and NULLs.
 */
import assert from "node:assert/strict";
import { it } from "node:test";

import pg from "pg";

import { arrayLiteral } from "../../lib/cal/rebuild/shapes.js";
import { withClient } from "../../lib/db/connect.js";
import { testDatabase } from "../helpers/db.js";

const prepareValue = (
  pg as unknown as { utils: { prepareValue(v: unknown): unknown } }
).utils.prepareValue;

const TEXTS: (string | null)[] = [
  'a "quoted" word',
  "back\\slash",
  "\\",
  '"',
  '\\"',
  "a,b",
  "{braces}",
  "}",
  "NULL",
  "null",
  "",
  " leading and trailing ",
  "'single'",
  "tab\there",
  "line\nbreak",
  "Ωmega ✓ 日本 🚀",
  null,
  "GN-2019A-Q-1",
];

it("array literals are node-postgres's bytes and read back as the same values", async (t) => {
  const db = await testDatabase(t);
  const cases: {
    type: string;
    values: (string | number | boolean | null)[];
  }[] = [
    { type: "text", values: TEXTS },
    { type: "text", values: ["plain", "also plain", "GMOS-N"] },
    { type: "text", values: [null] },
    { type: "text", values: [""] },
    { type: "text", values: [] },
    { type: "int", values: [0, -1, 2147483647, -2147483648, null, 7] },
    { type: "int", values: [1, 2, 3] },
    { type: "float8", values: [0.1, -0, 1e-7, 1.5e300, 86400, 2.7, null] },
    { type: "numeric", values: [0.001, 12345.678, -2.5] },
    { type: "bool", values: [true, false, null] },
    { type: "bool", values: [true, false] },
    { type: "caltype", values: ["bias", "processed_flat", null] },
  ];
  await withClient(db.url, async (c) => {
    for (const { type, values } of cases) {
      const literal = arrayLiteral(values);
      assert.equal(literal, prepareValue(values), `${type} ${literal}`);
      const { rows } = await c.query<{ a: unknown[] }>(
        // node-postgres does not parse an enum array: read it as text[].
        `SELECT $1::${type}[]${type === "caltype" ? "::text[]" : ""} AS a`,
        [literal],
      );
      const back = rows[0]!.a.map((v) =>
        type === "float8" || type === "numeric"
          ? v === null
            ? null
            : Number(v)
          : v,
      );
      assert.deepEqual(
        back,
        values.map((v) => (Object.is(v, -0) ? 0 : v)),
        `${type} ${literal}`,
      );
    }
  });
  // What the rebuild never binds is refused, not sent half-converted.
  assert.throws(
    () => arrayLiteral([{} as unknown as string]),
    /unexpected object element/,
  );
});
