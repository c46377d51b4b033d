/**
 * The one error hierarchy. Every failure that reaches the user is a FitsfleetError:
 * it carries a stable `code`, the process exit code, and a `suggestion` that says
 * what to do. `cli/main.ts` is the only place that prints them.
 *
 * Exit codes are part of the interface (documented in `--help` and the README):
 *   0 ok · 1 failed · 2 usage or configuration · 3 refused by a precondition ·
 *   4 external service unreachable · 5 database schema newer than this code ·
 *   6 a required system program is missing · 130 interrupted
 */

import { isTransientSqlState, sqlState } from "./db/errors.js";

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  precondition: 3,
  external: 4,
  schemaNewer: 5,
  missingDependency: 6,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export interface FitsfleetErrorOptions {
  suggestion?: string;
  cause?: unknown;
  /** Extra facts for `--json` error output and debug logs; never secrets. */
  context?: Record<string, unknown>;
  /** Whether retrying can help; see `faultKind`. */
  fault?: Fault;
}

/**
 * Transient: the same work can succeed later (a service restarting, a
 * connection reset, throttling). Permanent: it cannot (a damaged file, a
 * wrong name or setting), so it fails at once and alone.
 */
export type Fault = "transient" | "permanent";

export class FitsfleetError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly suggestion: string | undefined;
  readonly context: Record<string, unknown>;
  readonly fault: Fault | undefined;

  constructor(
    code: string,
    exitCode: ExitCode,
    message: string,
    options: FitsfleetErrorOptions = {},
  ) {
    super(
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.suggestion = options.suggestion;
    this.context = options.context ?? {};
    this.fault = options.fault;
  }
}

/** A wrong flag, argument or configuration value. */
export class UsageError extends FitsfleetError {
  constructor(message: string, options: FitsfleetErrorOptions = {}) {
    super("usage", EXIT.usage, message, { fault: "permanent", ...options });
  }
}

/** One or more configuration problems, all reported together. */
export class ConfigError extends FitsfleetError {
  readonly problems: readonly string[];

  constructor(
    problems: readonly string[],
    options: FitsfleetErrorOptions = {},
  ) {
    const head =
      problems.length === 1
        ? "invalid configuration:"
        : `invalid configuration (${problems.length} problems):`;
    super(
      "config",
      EXIT.usage,
      [head, ...problems.map((p) => `  - ${p}`)].join("\n"),
      {
        suggestion:
          "fix the values above; precedence is flag > environment > config file > default (see `fitsfleet --help`)",
        fault: "permanent",
        ...options,
      },
    );
    this.problems = problems;
  }
}

/** The command refuses to act because the world is not in the state it needs. */
export class PreconditionError extends FitsfleetError {
  constructor(message: string, options: FitsfleetErrorOptions = {}) {
    super("precondition", EXIT.precondition, message, {
      fault: "permanent",
      ...options,
    });
  }
}

/** PostgreSQL, Redis, S3 or EC2 could not be reached or refused us. */
export class ExternalServiceError extends FitsfleetError {
  readonly service: string;

  constructor(
    service: string,
    message: string,
    options: FitsfleetErrorOptions = {},
  ) {
    super("external", EXIT.external, message, {
      fault: "transient",
      ...options,
    });
    this.service = service;
  }
}

/** The database's migration ledger is ahead of this build: refuse to touch it. */
export class SchemaNewerThanCodeError extends FitsfleetError {
  constructor(message: string, options: FitsfleetErrorOptions = {}) {
    super("schema-newer", EXIT.schemaNewer, message, {
      suggestion:
        "upgrade fitsfleet to the version that applied these migrations; never run an older build against a newer schema",
      fault: "permanent",
      ...options,
    });
  }
}

/** A system program (initdb, redis-server, pg_dump, bzip2…) is not installed. */
export class MissingDependencyError extends FitsfleetError {
  readonly program: string;

  constructor(
    program: string,
    debianPackage: string,
    options: FitsfleetErrorOptions = {},
  ) {
    super(
      "missing-dependency",
      EXIT.missingDependency,
      `required program not found: ${program}`,
      {
        suggestion: `install it with \`apt-get install ${debianPackage}\` (Debian package ${debianPackage}), or put it on PATH`,
        fault: "permanent",
        ...options,
      },
    );
    this.program = program;
  }
}

/** The operator interrupted the command (Ctrl-C / SIGTERM). */
export class InterruptedError extends FitsfleetError {
  constructor(signal: string) {
    super("interrupted", EXIT.interrupted, `interrupted by ${signal}`);
  }
}

/** Turns anything thrown into a FitsfleetError; unknown errors become exit 1. */
export function coerceError(error: unknown): FitsfleetError {
  if (error instanceof FitsfleetError) {
    return error;
  }
  if (error instanceof Error) {
    return new FitsfleetError("internal", EXIT.failed, error.message, {
      cause: error,
      suggestion:
        "this is unexpected; rerun with --log-level debug and report the output",
    });
  }
  return new FitsfleetError("internal", EXIT.failed, String(error));
}

/** errno codes of a connection or a resource that can come back. */
const TRANSIENT_ERRNO = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "EMFILE",
  "ENFILE",
  "ENOSPC",
  "EBUSY",
]);

/** AWS error names that mean "slow down" or "try again". */
const TRANSIENT_AWS = new Set([
  "ThrottlingException",
  "Throttling",
  "RequestLimitExceeded",
  "SlowDown",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "InternalError",
  "ServiceUnavailable",
  "InsufficientInstanceCapacity",
  "TimeoutError",
]);

/** Driver messages without a code that say the connection went away. */
const TRANSIENT_MESSAGE =
  /Connection terminated|connection (is )?(closed|lost)|Connection is closed|timeout exceeded when trying to connect|socket hang up/i;

/**
 * The one classification of failures for every retry decision (ingest's
 * read and write paths, the preview worker, the fleet): an explicit marker
 * on a FitsfleetError wins; then the error and its causes are read for a
 * SQLSTATE, an errno, an AWS error name or status, or a driver's words for
 * a lost connection. Anything unrecognised is permanent: retrying a bug
 * only hides it, and a failed file shows its reason in `rebuild failures`.
 */
export function faultKind(error: unknown): Fault {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current != null; depth++) {
    if (current instanceof FitsfleetError && current.fault !== undefined) {
      return current.fault;
    }
    const state = sqlState(current);
    if (state !== undefined) {
      return isTransientSqlState(state) ? "transient" : "permanent";
    }
    const e = current as {
      code?: unknown;
      name?: unknown;
      message?: unknown;
      $retryable?: unknown;
      $metadata?: { httpStatusCode?: number };
      cause?: unknown;
    };
    if (typeof e.code === "string" && TRANSIENT_ERRNO.has(e.code)) {
      return "transient";
    }
    if (typeof e.name === "string" && TRANSIENT_AWS.has(e.name)) {
      return "transient";
    }
    const status = e.$metadata?.httpStatusCode;
    if (
      e.$retryable !== undefined ||
      status === 429 ||
      (status !== undefined && status >= 500)
    ) {
      return "transient";
    }
    if (typeof e.message === "string" && TRANSIENT_MESSAGE.test(e.message)) {
      return "transient";
    }
    current = e.cause;
  }
  return "permanent";
}

export function isTransient(error: unknown): boolean {
  return faultKind(error) === "transient";
}
