/**
 * Which PostgreSQL and Redis a command talks to: the configured URL, or else
 * the embedded local stack when it is running. Anything else is a ConfigError
 * that says every way to set it.
 */
import { type Config, CONFIG_KEYS } from "./config.js";
import { ConfigError } from "./errors.js";
import type { Logger } from "./logger.js";
import { registerSecret } from "./redact.js";
import { runningStackUrls } from "./stack/index.js";

export function databaseUrl(config: Config, logger?: Logger): string {
  return endpoint(config, "databaseUrl", logger);
}

export function redisUrl(config: Config, logger?: Logger): string {
  return endpoint(config, "redisUrl", logger);
}

function endpoint(
  config: Config,
  key: "databaseUrl" | "redisUrl",
  logger: Logger | undefined,
): string {
  const configured = config[key];
  if (configured !== undefined) {
    // A driver may quote the password in an error (Redis's AUTH command does).
    try {
      registerSecret(decodeURIComponent(new URL(configured).password));
    } catch {
      // not a URL: the config loader reports that
    }
    return configured;
  }
  const stack = runningStackUrls(config.stackDir);
  if (stack !== undefined) {
    logger?.debug(`using the embedded stack for ${key}`, {
      stackDir: config.stackDir,
    });
    return stack[key];
  }
  const k = CONFIG_KEYS[key];
  throw new ConfigError([
    `${key}: required. Pass ${k.flag}, set ${k.env.join(" or ")}, put "${key}" in the config file, or start the embedded stack with \`fitsfleet stack up\` (none is running under ${config.stackDir})`,
  ]);
}
