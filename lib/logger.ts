/**
 * One structured logger. Logs go to stderr (stdout is reserved for command
 * results), as `LEVEL [label] message key=value` text or as JSON lines. Every
 * line is redacted before it is written.
 */
import { redactText, redactValue } from "./redact.js";

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = "text" | "json";
export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  child(fields: LogFields & { label?: string }): Logger;
}

export interface LoggerOptions {
  label?: string;
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; tests pass a capturing function. */
  write?: (line: string) => void;
  fields?: LogFields;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

function formatValue(value: unknown): string {
  if (typeof value === "string") {
    return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  }
  if (value instanceof Error) {
    return JSON.stringify(value.message);
  }
  return JSON.stringify(value) ?? "undefined";
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const format = options.format ?? "text";
  const write =
    options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const label = options.label ?? "fitsfleet";
  const bound = options.fields ?? {};

  const emit = (
    at: LogLevel,
    message: string,
    fields: LogFields = {},
  ): void => {
    if (RANK[at] > RANK[level]) {
      return;
    }
    const all = { ...bound, ...fields };
    if (format === "json") {
      const record = redactValue({
        time: new Date().toISOString(),
        level: at,
        label,
        msg: message,
        ...all,
      });
      write(
        JSON.stringify(record, (_k, v: unknown) =>
          v instanceof Error ? v.message : v,
        ),
      );
      return;
    }
    const pairs = Object.entries(all)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(" ");
    write(
      redactText(
        `${at.toUpperCase().padEnd(5)} [${label}] ${message}${pairs ? ` ${pairs}` : ""}`,
      ),
    );
  };

  return {
    level,
    error: (m, f) => emit("error", m, f),
    warn: (m, f) => emit("warn", m, f),
    info: (m, f) => emit("info", m, f),
    debug: (m, f) => emit("debug", m, f),
    child: ({ label: childLabel, ...fields }) =>
      createLogger({
        ...options,
        label: childLabel ?? label,
        fields: { ...bound, ...fields },
      }),
  };
}

/** A logger that keeps its lines in memory, for tests. */
export function captureLogger(
  level: LogLevel = "debug",
): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (line) => lines.push(line) });
  return Object.assign(logger, { lines });
}
