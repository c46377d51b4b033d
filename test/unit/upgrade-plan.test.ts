/**
 * Planning rules on small hand-made catalogs: what is automatic, what needs
 * the mapping file, and that every problem is reported at once.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type {
  Catalog,
  CatalogColumn,
  CatalogTable,
} from "../../lib/upgrade/catalog.js";
import { parseMapping } from "../../lib/upgrade/mapping.js";
import { planUpgrade, typeChange } from "../../lib/upgrade/plan.js";

function column(
  name: string,
  type: string,
  extra: Partial<CatalogColumn> = {},
): CatalogColumn {
  return { name, type, notNull: false, default: null, ...extra };
}

function catalog(origin: string, tables: CatalogTable[]): Catalog {
  return { origin, tables: new Map(tables.map((t) => [t.name, t])) };
}

const table = (
  name: string,
  columns: CatalogColumn[],
  sequences: CatalogTable["sequences"] = {},
): CatalogTable => ({ schema: "public", name, columns, sequences });

describe("upgrade planning", () => {
  it("widenings are automatic; narrowings and kind changes are not", () => {
    assert.equal(typeChange("integer", "integer"), "copy");
    assert.equal(typeChange("integer", "bigint"), "widen");
    assert.equal(typeChange("smallint", "integer"), "widen");
    assert.equal(typeChange("character varying(20)", "text"), "widen");
    assert.equal(
      typeChange("character varying(20)", "character varying(40)"),
      "widen",
    );
    assert.equal(typeChange("numeric(6,3)", "numeric(9,3)"), "widen");
    assert.equal(typeChange("real", "double precision"), "widen");
    assert.equal(typeChange("bigint", "integer"), undefined);
    assert.equal(
      typeChange("character varying(40)", "character varying(20)"),
      undefined,
    );
    assert.equal(typeChange("numeric(6,3)", "numeric(9,2)"), undefined);
    assert.equal(typeChange("text", "integer"), undefined);
    assert.equal(
      typeChange("timestamp without time zone", "timestamp with time zone"),
      undefined,
    );
  });

  it("lists every unresolved difference at once", () => {
    const source = catalog("old.dump", [
      table("logs", [
        column("id", "integer", { notNull: true }),
        column("size", "bigint"),
        column("legacy", "integer"),
      ]),
    ]);
    const target = catalog("new", [
      table(
        "logs",
        [
          column("id", "bigint", { notNull: true }),
          column("size", "integer"),
          column("owner", "text", { notNull: true }),
          column("created", "timestamp without time zone", {
            notNull: true,
            default: "now()",
          }),
        ],
        {
          id: {
            name: "public.logs_id_seq",
            link: "owned",
            position: null,
            lastValue: 1n,
            isCalled: false,
          },
        },
      ),
      table("users", [column("id", "integer")]),
    ]);
    const plan = planUpgrade(source, target, ["users", "logs"], {
      tables: { ghosts: {} },
    });
    assert.deepEqual(plan.problems.length, 5, plan.problems.join("\n"));
    assert.match(
      plan.problems[0]!,
      /maps table ghosts, which is not being migrated/,
    );
    assert.match(plan.problems[1]!, /old\.dump has no table users/);
    assert.match(
      plan.problems[2]!,
      /logs\.size: bigint .* integer in the target, which is not a safe widening/,
    );
    assert.match(
      plan.problems[3]!,
      /logs\.owner: NOT NULL in the target, has no default/,
    );
    assert.match(
      plan.problems[4]!,
      /source column logs\.legacy \(integer\) has no place in the target and would be lost/,
    );
    const logs = plan.tables.find((t) => t.target === "logs")!;
    assert.deepEqual(
      logs.columns.map((c) => [c.target, c.kind]),
      [
        ["id", "widen"],
        ["size", "cast"],
        ["owner", "null"],
        ["created", "default"],
      ],
    );
  });

  it("a mapping resolves renames, expressions, casts and drops; expressions go through staging", () => {
    const source = catalog("old", [
      table("archiveuser", [
        column("id", "integer"),
        column("mail", "text"),
        column("size", "bigint"),
        column("junk", "integer"),
      ]),
    ]);
    const target = catalog("new", [
      table("users", [
        column("id", "integer"),
        column("email", "text"),
        column("size", "integer"),
        column("owner", "text", { notNull: true }),
      ]),
    ]);
    const mapping = parseMapping(
      JSON.stringify({
        tables: {
          users: {
            from: "archiveuser",
            columns: {
              email: "mail",
              size: { from: "size", cast: true },
              owner: { expr: "'archive'" },
            },
            drop: ["junk"],
          },
        },
      }),
      "m.json",
    );
    const plan = planUpgrade(source, target, ["users"], mapping);
    assert.deepEqual(plan.problems, []);
    const users = plan.tables[0]!;
    assert.equal(users.source, "archiveuser");
    assert.equal(users.direct, false);
    assert.deepEqual(
      users.columns.map((c) => [c.target, c.kind, c.source ?? c.expr]),
      [
        ["id", "copy", "id"],
        ["email", "copy", "mail"],
        ["size", "cast", "size"],
        ["owner", "expr", "'archive'"],
      ],
    );
  });

  it("a bad mapping file is a configuration error naming every problem", () => {
    assert.throws(
      () =>
        parseMapping(
          JSON.stringify({
            tables: {
              Users: {},
              logs: { columns: { id: { expr: "" } }, drop: "x", extra: 1 },
            },
          }),
          "bad.json",
        ),
      (e: Error) =>
        /bad\.json: tables\.Users/.test(e.message) &&
        /bad\.json: tables\.logs\.drop/.test(e.message) &&
        /extra/.test(e.message),
    );
    assert.throws(
      () => parseMapping("{", "broken.json"),
      /broken\.json: not valid JSON/,
    );
  });
});
