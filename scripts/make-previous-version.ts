/**
 * Fills an empty database with the previous-version (v2) fixture of
 * fixtures/previous-version.ts and optionally dumps it, for benchmarks and
 * demos of `upgrade migrate-tables`.
 *
 * Usage:
 *   node --import tsx scripts/make-previous-version.ts --url URL
 *     [--create] [--usagelog-rows N] [--users N] [--seed N]
 *     [--dump PATH --format custom|directory]
 *
 * --create first creates the database named in URL (through the cluster's
 * `postgres` database). The password in URL is never printed.
 */
import { parseArgs } from "node:util";

import {
  createPreviousVersionDatabase,
  dumpDatabase,
  type DumpFormat,
} from "../fixtures/previous-version.js";
import { withClient } from "../lib/db/connect.js";
import { quoteIdent } from "../lib/db/sql.js";
import { redactUrl } from "../lib/redact.js";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    create: { type: "boolean", default: false },
    "usagelog-rows": { type: "string" },
    users: { type: "string" },
    seed: { type: "string" },
    dump: { type: "string" },
    format: { type: "string", default: "custom" },
  },
});

function optionalNumber(text: string | undefined): number | undefined {
  return text === undefined ? undefined : Number(text);
}

const url = values.url;
if (url === undefined) {
  console.error(
    "usage: make-previous-version.ts --url URL [--create] [--usagelog-rows N] [--users N] [--seed N] [--dump PATH --format custom|directory]",
  );
  process.exit(2);
}
const format = values.format;
if (format !== "custom" && format !== "directory") {
  console.error("--format must be custom or directory");
  process.exit(2);
}

if (values.create) {
  const admin = new URL(url);
  const name = decodeURIComponent(admin.pathname.replace(/^\//, ""));
  admin.pathname = "/postgres";
  await withClient(admin.toString(), (c) =>
    c.query(`CREATE DATABASE ${quoteIdent(name, "database name")}`),
  );
}

let t = performance.now();
const summary = await withClient(url, (client) =>
  createPreviousVersionDatabase(client, {
    usagelogRows: optionalNumber(values["usagelog-rows"]),
    users: optionalNumber(values.users),
    seed: optionalNumber(values.seed),
    onStep: (step, ms) =>
      console.log(`  ${step.padEnd(28)} ${(ms / 1000).toFixed(1)} s`),
  }),
);
const seconds = (performance.now() - t) / 1000;
console.log(
  `previous-version database ${redactUrl(url)}: ${summary.usagelogRows} bulk usagelog rows, seed ${summary.seed}, ${seconds.toFixed(1)} s`,
);
for (const [table, s] of Object.entries(summary.tables)) {
  const seqs = s.sequences
    .map(
      (q) =>
        `${q.name}=${q.lastValue}${q.isCalled ? "" : " (not called)"}${q.ownedBy === null ? " (unowned)" : ""}`,
    )
    .join(", ");
  console.log(
    `  ${table.padEnd(16)} ${String(s.rows).padStart(9)} rows  max(id) ${String(s.maxId).padStart(9)}  ${seqs}`,
  );
}

const dump = values.dump;
if (dump !== undefined) {
  t = performance.now();
  await dumpDatabase(url, dump, format satisfies DumpFormat);
  console.log(
    `${format} dump in ${dump}: ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
}
