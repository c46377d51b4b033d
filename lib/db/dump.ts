/**
 * A normalised schema-only dump: pg_dump's DDL without comments, SET lines,
 * owners, privileges or the per-run `\restrict` tokens, so that the same schema
 * always gives the same text and a review sees only real changes.
 */
import { run } from "../exec.js";
import { postgresProgram } from "../programs.js";
import { clientProgramConnection } from "./client-programs.js";

export async function dumpSchema(url: string): Promise<string> {
  const { dbname, env } = clientProgramConnection(url);
  const { stdout } = await run(
    postgresProgram("pg_dump"),
    [
      "--schema-only",
      "--no-owner",
      "--no-privileges",
      "--no-comments",
      "--no-password",
      "--dbname",
      dbname,
    ],
    { env, debianPackage: "postgresql-client", purpose: "dump the schema" },
  );
  return normaliseDump(stdout);
}

export function normaliseDump(dump: string): string {
  const kept = dump
    .split("\n")
    .filter(
      (line) =>
        !line.startsWith("--") &&
        !line.startsWith("SET ") &&
        !line.startsWith("SELECT pg_catalog.set_config") &&
        !/^\\(un)?restrict\b/.test(line),
    );
  return `${kept
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim()}\n`;
}
