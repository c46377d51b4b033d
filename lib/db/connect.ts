/**
 * PostgreSQL connections. Every connection failure becomes an
 * ExternalServiceError that names the (redacted) server and says what to check;
 * driver messages never reach the user raw.
 */
import pg from "pg";

import {
  ExternalServiceError,
  type FitsfleetError,
  PreconditionError,
} from "../errors.js";
import { redactUrl } from "../redact.js";

export type PgClient = pg.Client;

export interface ConnectOptions {
  /** Shown in pg_stat_activity, so operators can tell our sessions apart. */
  applicationName?: string;
  connectTimeoutMs?: number;
}

export async function connect(
  url: string,
  options: ConnectOptions = {},
): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    application_name: options.applicationName ?? "fitsfleet",
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
  });
  // An idle client whose server goes away emits 'error'; unhandled, it would kill the process.
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw describeConnectError(error, url);
  }
  return client;
}

export async function withClient<T>(
  url: string,
  fn: (client: pg.Client) => Promise<T>,
  options: ConnectOptions = {},
): Promise<T> {
  const client = await connect(url, options);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A connection of its own or one lent by a pool. */
export type AnyClient = pg.Client | pg.PoolClient;

/** Runs `fn` in one transaction; any throw rolls everything back. */
export async function withTransaction<C extends AnyClient, T>(
  client: C,
  fn: (client: C) => Promise<T>,
): Promise<T> {
  await client.query("BEGIN");
  try {
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

interface PgLikeError {
  code?: string;
  message?: string;
}

export function describeConnectError(
  error: unknown,
  url: string,
): FitsfleetError {
  const e = (error ?? {}) as PgLikeError;
  const where = redactUrl(url);
  const code = e.code ?? "";
  const reason =
    {
      ECONNREFUSED: "connection refused",
      ENOTFOUND: "host not found",
      EAI_AGAIN: "host name lookup failed",
      ETIMEDOUT: "connection timed out",
      ECONNRESET: "connection reset",
      "28P01": "password authentication failed",
      "28000": "the server rejected this user or host",
      "3D000": "the database does not exist",
      "57P03": "the server is starting up or shutting down",
      "53300": "the server has too many connections",
    }[code] ??
    (/timeout/i.test(e.message ?? "")
      ? "connection timed out"
      : (e.message ?? String(error)));
  if (code === "3D000") {
    return new PreconditionError(
      `cannot use PostgreSQL database at ${where}: ${reason}`,
      {
        cause: error,
        suggestion:
          "create it first (for example `createdb NAME`), or fix --database-url / DATABASE_URL",
      },
    );
  }
  return new ExternalServiceError(
    "postgresql",
    `cannot connect to PostgreSQL at ${where}: ${reason}`,
    {
      cause: error,
      suggestion:
        code === "28P01" || code === "28000"
          ? "check the user and password in --database-url / DATABASE_URL"
          : "check that the server is running and --database-url / DATABASE_URL is right; `fitsfleet stack up` starts a local one",
    },
  );
}
