/**
 * The only module that writes to stdout/stderr directly. Results go to stdout
 * (human text, or one JSON document with `--json`; a watched result, one
 * document a refresh); progress, notes and errors go to stderr. Every string
 * passes the redactor first.
 */
import type { FitsfleetError } from "../lib/errors.js";
import { redactText, redactValue } from "../lib/redact.js";

export interface OutputStreams {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processStreams: OutputStreams = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export class Output {
  readonly json: boolean;
  private readonly streams: OutputStreams;

  constructor(options: { json: boolean; streams?: OutputStreams }) {
    this.json = options.json;
    this.streams = options.streams ?? processStreams;
  }

  /** A command's result: `data` as JSON with --json, else `human(data)`. */
  result<T>(data: T, human: (data: T) => string): void {
    if (this.json) {
      this.streams.stdout(
        `${JSON.stringify(redactValue(data), jsonReplacer, 2)}\n`,
      );
    } else {
      const text = human(data);
      if (text !== "") {
        this.streams.stdout(`${redactText(text)}\n`);
      }
    }
  }

  /**
   * One refresh of a watched result (`--watch`). It goes to stdout, since it
   * is what the command was run for and `| tee` must keep it: a block headed
   * by its time, or with --json one JSON document a line (`at` its time).
   */
  snapshot<T extends object>(
    data: T,
    human: (data: T) => string,
    at: Date = new Date(),
  ): void {
    if (this.json) {
      this.streams.stdout(
        `${JSON.stringify(redactValue({ at: at.toISOString(), ...data }), jsonReplacer)}\n`,
      );
    } else {
      this.streams.stdout(
        `${redactText(`${at.toISOString()}\n${human(data)}`)}\n\n`,
      );
    }
  }

  /** A human-only line (progress, notes); silent with --json. */
  note(text: string): void {
    if (!this.json) {
      this.streams.stderr(`${redactText(text)}\n`);
    }
  }

  /**
   * A progress update for a long operation: a line on stderr, or with --json
   * one JSON object per line on stderr, so stdout keeps the single result.
   */
  progress(fields: Record<string, unknown>, human: string): void {
    if (this.json) {
      this.streams.stderr(
        `${JSON.stringify(redactValue({ progress: fields }), jsonReplacer)}\n`,
      );
    } else {
      this.streams.stderr(`${redactText(human)}\n`);
    }
  }

  error(error: FitsfleetError, options: { debug: boolean }): void {
    if (this.json) {
      const payload = {
        error: {
          code: error.code,
          exitCode: error.exitCode,
          message: error.message,
          suggestion: error.suggestion,
          ...(Object.keys(error.context).length > 0
            ? { context: error.context }
            : {}),
        },
      };
      this.streams.stderr(`${JSON.stringify(redactValue(payload))}\n`);
      return;
    }
    const lines = [`error: ${error.message}`];
    if (error.suggestion !== undefined) {
      lines.push(`hint: ${error.suggestion}`);
    }
    if (options.debug) {
      let cause: unknown = error;
      while (cause instanceof Error) {
        lines.push("", cause.stack ?? `${cause.name}: ${cause.message}`);
        cause = cause.cause;
      }
    }
    this.streams.stderr(`${redactText(lines.join("\n"))}\n`);
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** Renders rows as an aligned plain-text table. */
export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [
    line(headers),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ].join("\n");
}
