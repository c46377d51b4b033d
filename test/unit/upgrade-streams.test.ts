/**
 * The two stream stages of an upgrade, fed in awkward chunk sizes: the COPY
 * data cut out of pg_restore's SQL, and the row pipe's projection and
 * fingerprint (which must not depend on how the bytes were split, nor on
 * whether fields were dropped before or after hashing).
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { describe, it } from "node:test";

import { CopyDataExtractor, parseSchemaSql } from "../../lib/upgrade/dump.js";
import { RowPipe } from "../../lib/upgrade/rowpipe.js";

const ROWS = [
  "1\tO'Brien\t\\N\tC:\\\\data\\\\raw\n",
  "2\ttab\\there\tline\\nbreak\t日本語 🚀\n",
  "3\t\\.\t\t\\\\.\n",
];

const SQL = [
  "--",
  "-- PostgreSQL database dump",
  "SET statement_timeout = 0;",
  "",
  "COPY public.t (id, a, b, c) FROM stdin;",
  ...ROWS.map((r) => r.slice(0, -1)),
  "\\.",
  "",
  "",
].join("\n");

function chunks(text: string, size: number): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) {
    out.push(bytes.subarray(i, i + size));
  }
  return out;
}

describe("upgrade streams", () => {
  for (const size of [1, 2, 3, 7, 64, 100_000]) {
    it(`cuts the COPY rows out of pg_restore's output in ${size}-byte chunks`, async () => {
      const extractor = new CopyDataExtractor("t");
      const out = await buffer(
        Readable.from(chunks(SQL, size)).pipe(extractor),
      );
      assert.equal(out.toString(), ROWS.join(""));
      assert.deepEqual(extractor.columns, ["id", "a", "b", "c"]);
    });
  }

  it("a COPY section without its terminator is a truncated archive", async () => {
    const cut = SQL.slice(0, SQL.indexOf("\\.\n"));
    await assert.rejects(
      buffer(
        Readable.from(chunks(cut, 5)).pipe(new CopyDataExtractor("x.dump")),
      ),
      /x\.dump: the table's data ends early \(the archive is truncated\)/,
    );
  });

  it("fingerprints do not depend on chunking, and dropping fields before or after hashing agrees", async () => {
    const run = async (
      size: number,
      options: ConstructorParameters<typeof RowPipe>[0],
      input = ROWS.join(""),
    ) => {
      const pipe = new RowPipe(options);
      const out = await buffer(Readable.from(chunks(input, size)).pipe(pipe));
      return { out: out.toString(), digest: pipe.digest.value };
    };
    const whole = await run(100_000, {
      digestFields: null,
      outputFields: null,
    });
    assert.equal(whole.out, ROWS.join(""));
    assert.match(whole.digest, /^3:[0-9a-f]{16}$/);
    for (const size of [1, 3, 13]) {
      assert.equal(
        (await run(size, { digestFields: null, outputFields: null })).digest,
        whole.digest,
      );
    }
    // Keep fields 0, 1 and 3: hashed while dropping …
    const kept = await run(4, {
      digestFields: [0, 1, 3],
      outputFields: [0, 1, 3],
    });
    assert.equal(
      kept.out,
      "1\tO'Brien\tC:\\\\data\\\\raw\n2\ttab\\there\t日本語 🚀\n3\t\\.\t\\\\.\n",
    );
    // … equals hashing the already-dropped rows whole, as the target side does.
    const after = await run(
      100_000,
      { digestFields: null, outputFields: null },
      kept.out,
    );
    assert.equal(kept.digest, after.digest);
    assert.notEqual(kept.digest, whole.digest);
    // One changed byte in one row changes the fingerprint; the order of rows does not.
    const changed = await run(
      64,
      { digestFields: null, outputFields: null },
      ROWS.join("").replace("O'Brien", "O'Brian"),
    );
    assert.notEqual(changed.digest, whole.digest);
    const reordered = await run(
      64,
      { digestFields: null, outputFields: null },
      [...ROWS].reverse().join(""),
    );
    assert.equal(reordered.digest, whole.digest);
  });

  it("reads tables, inline and separate defaults, owned and unowned sequences from pg_dump's SQL", () => {
    const tables = parseSchemaSql(
      [
        "CREATE TABLE public.glacier (",
        "    id integer DEFAULT nextval('public.glacier_id_seq'::regclass) NOT NULL,",
        "    filename text NOT NULL,",
        "    size numeric(12,3),",
        "    CONSTRAINT size_check CHECK ((size > (0)::numeric))",
        ");",
        "",
        "CREATE TABLE public.usagelog (",
        "    id integer NOT NULL,",
        "    \"User Agent\" character varying(20) DEFAULT 'a, b'::character varying",
        ");",
        "",
        "CREATE SEQUENCE public.usagelog_id_seq",
        "    AS integer;",
        "ALTER SEQUENCE public.usagelog_id_seq OWNED BY public.usagelog.id;",
        "ALTER TABLE ONLY public.usagelog ALTER COLUMN id SET DEFAULT nextval('public.usagelog_id_seq'::regclass);",
      ].join("\n"),
      "x.dump",
    );
    const glacier = tables.get("glacier");
    assert.deepEqual(
      glacier?.columns.map((c) => [c.name, c.type, c.notNull]),
      [
        ["id", "integer", true],
        ["filename", "text", true],
        ["size", "numeric(12,3)", false],
      ],
    );
    assert.equal(glacier?.sequences.id?.name, "public.glacier_id_seq");
    assert.equal(glacier?.sequences.id?.link, "default");
    const usagelog = tables.get("usagelog");
    assert.deepEqual(
      usagelog?.columns.map((c) => c.name),
      ["id", "User Agent"],
    );
    assert.equal(usagelog?.columns[1]?.type, "character varying(20)");
    assert.equal(usagelog?.sequences.id?.link, "owned");
  });
});
