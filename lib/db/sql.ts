/**
 * Identifiers pass one validator before they are spliced into SQL; values are
 * always `$n` parameters. We accept only plain lower-case identifiers, which is
 * all the archive schema and our own schema use, so quoting is never ambiguous.
 */
import { UsageError } from "../errors.js";

const PLAIN_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export function isPlainIdentifier(name: string): boolean {
  return PLAIN_IDENTIFIER.test(name);
}

/** Double-quotes a validated identifier; throws a UsageError naming the bad one. */
export function quoteIdent(name: string, what = "identifier"): string {
  if (!isPlainIdentifier(name)) {
    throw new UsageError(
      `invalid ${what} ${JSON.stringify(name)}: use lower-case letters, digits and _ (at most 63 characters)`,
    );
  }
  return `"${name}"`;
}

/** `schema.table`, both parts validated. */
export function qualifiedName(schema: string, name: string): string {
  return `${quoteIdent(schema, "schema name")}.${quoteIdent(name)}`;
}
