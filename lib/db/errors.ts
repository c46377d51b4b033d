/**
 * PostgreSQL's SQLSTATE codes, read in one place: which classes are worth
 * retrying (the server or the connection will come back, or a concurrent
 * transaction won) and which are about the statement itself.
 */

/** The SQLSTATE of a driver error, if it has one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)
    ? code
    : undefined;
}

/**
 * Transient: connection exceptions (08), operator intervention such as a
 * shutdown or restart (57P), serialization failure and deadlock (40001,
 * 40P01), insufficient resources (53: too many connections, out of memory,
 * disk full) and lock timeouts (55P03). Everything else (data exceptions,
 * integrity violations, syntax) says the statement itself is wrong.
 */
export function isTransientSqlState(code: string): boolean {
  return (
    code.startsWith("08") ||
    code.startsWith("57P") ||
    code.startsWith("53") ||
    code === "40001" ||
    code === "40P01" ||
    code === "55P03"
  );
}
