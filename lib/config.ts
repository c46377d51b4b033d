/**
 * The one configuration loader: untrusted input in, validated `Config` out.
 *
 * Precedence, per key: flag > environment > config file > default. Every
 * problem is collected and reported at once, each naming where the bad value
 * came from; unknown keys in the config file and unknown FITSFLEET_* variables
 * are errors, so a typo never silently falls back to a default.
 */
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { z } from "zod";

import { closest } from "./closest.js";
import { CONFIG_KEYS, type ConfigKey } from "./config-keys.js";
import { ConfigError } from "./errors.js";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "./logger.js";
import { redactText } from "./redact.js";

export interface Config {
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  logLevel: LogLevel;
  logFormat: LogFormat;
  stackDir: string;
  /** A non-AWS S3 endpoint (MinIO, s3rver); undefined means AWS itself. */
  s3Endpoint: string | undefined;
  /** The archive's file storage: a directory or s3://bucket/prefix. */
  storage: string | undefined;
  /** Where previews go: a directory or s3://bucket/prefix; undefined means `previews` under the storage. */
  previews: string | undefined;
  /** The config file that was read, if any. */
  configFile: string | undefined;
  /** Where each key's value came from, for `--log-level debug` and support. */
  sources: Record<ConfigKey, ConfigSource>;
}

export { closest, CONFIG_KEYS, type ConfigKey };

export type ConfigSource = "flag" | "env" | "file" | "default";

/** What the CLI passes in: `undefined` means "not given", so it never shadows a lower layer. */
export interface ConfigFlags {
  config?: string | undefined;
  databaseUrl?: string | undefined;
  redisUrl?: string | undefined;
  logLevel?: string | undefined;
  logFormat?: string | undefined;
  stackDir?: string | undefined;
  s3Endpoint?: string | undefined;
  storage?: string | undefined;
  previews?: string | undefined;
}

export interface LoadConfigInput {
  flags?: ConfigFlags;
  env?: Record<string, string | undefined>;
  /** Reads the config file; tests pass a literal. */
  readFile?: (path: string) => string;
}

const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\/[^\s]+$/.test(v) && URL.canParse(v), {
    message: "must be a postgres:// or postgresql:// URL",
  });
const redisUrl = z
  .string()
  .refine((v) => /^rediss?:\/\/[^\s]+$/.test(v) && URL.canParse(v), {
    message: "must be a redis:// or rediss:// URL",
  });

const location = z
  .string()
  .refine(
    (v) =>
      v.trim() !== "" &&
      (!v.startsWith("s3:") || /^s3:\/\/[a-z0-9.-]{3,63}(\/.*)?$/.test(v)),
    {
      message: "must be a directory or s3://bucket[/prefix]",
    },
  );

const SCHEMA = z.strictObject({
  databaseUrl: postgresUrl.optional(),
  redisUrl: redisUrl.optional(),
  logLevel: z.enum(LOG_LEVELS),
  logFormat: z.enum(["text", "json"]),
  stackDir: z.string().min(1, "must not be empty"),
  s3Endpoint: z
    .string()
    .refine((v) => /^https?:\/\/[^\s]+$/.test(v) && URL.canParse(v), {
      message: "must be an http:// or https:// URL",
    })
    .optional(),
  storage: location.optional(),
  previews: location.optional(),
} satisfies Record<ConfigKey, z.ZodType>);

const KEYS = Object.keys(SCHEMA.shape) as ConfigKey[];

/** Variables we read that are not config keys (the workers' switch: cli/commands/worker/common.ts). */
const OTHER_ENV = new Set([
  "FITSFLEET_CONFIG",
  "FITSFLEET_SPOT_WATCH",
  "FITSFLEET_SPOT_POLL_MS",
]);

export function defaultStackDir(): string {
  return join(tmpdir(), "fitsfleet-stack");
}

function defaults(): Record<ConfigKey, unknown> {
  return {
    databaseUrl: undefined,
    redisUrl: undefined,
    logLevel: "info",
    logFormat: "text",
    stackDir: defaultStackDir(),
    s3Endpoint: undefined,
    storage: undefined,
    previews: undefined,
  };
}

function flagValue(flags: ConfigFlags, key: ConfigKey): string | undefined {
  return flags[key];
}

export function loadConfig(input: LoadConfigInput = {}): Config {
  const flags = input.flags ?? {};
  const env = input.env ?? process.env;
  const readFile =
    input.readFile ?? ((path: string) => readFileSync(path, "utf8"));
  const problems: string[] = [];

  // Unknown FITSFLEET_* variables are almost always typos of known ones.
  const knownEnv = new Set([
    ...KEYS.flatMap((k) => CONFIG_KEYS[k].env),
    ...OTHER_ENV,
  ]);
  for (const name of Object.keys(env)) {
    if (
      name.startsWith("FITSFLEET_") &&
      !knownEnv.has(name) &&
      env[name] !== undefined
    ) {
      const hint = closest(name, [...knownEnv]);
      problems.push(
        `${name}: unknown environment variable${hint ? ` (did you mean ${hint}?)` : ""}`,
      );
    }
  }

  const configFile = flags.config ?? nonEmpty(env.FITSFLEET_CONFIG);
  const fileValues =
    configFile === undefined
      ? {}
      : readConfigFile(configFile, readFile, problems);

  const merged: Record<string, unknown> = {};
  const sources = {} as Record<ConfigKey, ConfigSource>;
  const origin = {} as Record<ConfigKey, string>;
  const base = defaults();
  for (const key of KEYS) {
    const fromFlag = flagValue(flags, key);
    const envName = CONFIG_KEYS[key].env.find(
      (name) => nonEmpty(env[name]) !== undefined,
    );
    if (fromFlag !== undefined) {
      merged[key] = fromFlag;
      sources[key] = "flag";
      origin[key] = CONFIG_KEYS[key].flag;
    } else if (envName !== undefined) {
      merged[key] = env[envName];
      sources[key] = "env";
      origin[key] = envName;
    } else if (key in fileValues) {
      merged[key] = fileValues[key];
      sources[key] = "file";
      origin[key] = `${configFile} key "${key}"`;
    } else {
      merged[key] = base[key];
      sources[key] = "default";
      origin[key] = "default";
    }
  }

  const parsed = SCHEMA.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = issue.path[0] as ConfigKey;
      const shown =
        merged[key] === undefined
          ? ""
          : `: got ${redactText(JSON.stringify(merged[key]))}`;
      problems.push(`${key} (from ${origin[key]}): ${issue.message}${shown}`);
    }
  }
  if (problems.length > 0 || !parsed.success) {
    throw new ConfigError(problems);
  }
  const value = parsed.data;
  return {
    databaseUrl: value.databaseUrl,
    redisUrl: value.redisUrl,
    logLevel: value.logLevel,
    logFormat: value.logFormat,
    stackDir: resolve(value.stackDir),
    s3Endpoint: value.s3Endpoint,
    storage: value.storage,
    previews: value.previews,
    configFile: configFile === undefined ? undefined : resolve(configFile),
    sources,
  };
}

function readConfigFile(
  path: string,
  readFile: (path: string) => string,
  problems: string[],
): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOENT"
        ? "file not found"
        : String(error);
    problems.push(`config file ${path}: ${reason}`);
    return {};
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    problems.push(
      `config file ${path}: not valid JSON (${(error as Error).message})`,
    );
    return {};
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    problems.push(`config file ${path}: must hold a JSON object of settings`);
    return {};
  }
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if ((KEYS as string[]).includes(key)) {
      values[key] = value;
    } else {
      const hint = closest(key, KEYS);
      problems.push(
        `config file ${path}: unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ""}; known keys: ${KEYS.join(", ")}`,
      );
    }
  }
  return values;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
