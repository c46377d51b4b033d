/**
 * Connection settings for PostgreSQL's client programs (pg_dump, pg_restore,
 * psql): the URL without its password, which travels in PGPASSWORD instead,
 * because a command line is visible to every user through `ps`.
 */
import { UsageError } from "../errors.js";
import { registerSecret } from "../redact.js";

/**
 * Splits the password out of a postgres:// URL so that it travels in
 * PGPASSWORD, never on a command line (where `ps` shows it).
 */
export function passwordlessUrl(url: string): {
  url: string;
  password: string | undefined;
} {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(
      "expected a database URL of the form postgres://user:password@host:port/database",
    );
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new UsageError(
      `expected a postgres:// database URL, not ${parsed.protocol}//…`,
    );
  }
  let password: string | undefined =
    parsed.password === "" ? undefined : decodeURIComponent(parsed.password);
  parsed.password = "";
  const fromQuery = parsed.searchParams.get("password");
  if (fromQuery !== null) {
    password ??= fromQuery;
    parsed.searchParams.delete("password");
  }
  return { url: parsed.toString(), password };
}

/** `--dbname` and the environment for a client program connecting to `url`. */
export function clientProgramConnection(url: string): {
  dbname: string;
  env: NodeJS.ProcessEnv;
} {
  const { url: dbname, password } = passwordlessUrl(url);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (password !== undefined) {
    registerSecret(password);
    env.PGPASSWORD = password;
  }
  return { dbname, env };
}
