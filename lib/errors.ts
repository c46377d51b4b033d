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
}

export class FitsfleetError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly suggestion: string | undefined;
  readonly context: Record<string, unknown>;

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
  }
}

/** A wrong flag, argument or configuration value. */
export class UsageError extends FitsfleetError {
  constructor(message: string, options: FitsfleetErrorOptions = {}) {
    super("usage", EXIT.usage, message, options);
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
        ...options,
      },
    );
    this.problems = problems;
  }
}

/** The command refuses to act because the world is not in the state it needs. */
export class PreconditionError extends FitsfleetError {
  constructor(message: string, options: FitsfleetErrorOptions = {}) {
    super("precondition", EXIT.precondition, message, options);
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
    super("external", EXIT.external, message, options);
    this.service = service;
  }
}

/** The database's migration ledger is ahead of this build: refuse to touch it. */
export class SchemaNewerThanCodeError extends FitsfleetError {
  constructor(message: string, options: FitsfleetErrorOptions = {}) {
    super("schema-newer", EXIT.schemaNewer, message, {
      suggestion:
        "upgrade fitsfleet to the version that applied these migrations; never run an older build against a newer schema",
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
