/**
 * Which PostgreSQL and Redis a command talks to: the configured URL, or else
 * the embedded local stack when it is running. Anything else is a ConfigError
 * that says every way to set it.
 */
import { type Config, CONFIG_KEYS } from "./config.js";
import { ConfigError } from "./errors.js";
import type { Logger } from "./logger.js";
import { runningStackUrls } from "./stack/index.js";

export function databaseUrl(config: Config, logger?: Logger): string {
  if (config.databaseUrl !== undefined) {
    return config.databaseUrl;
  }
  const stack = runningStackUrls(config.stackDir);
  if (stack !== undefined) {
    logger?.debug("using the embedded stack's database", {
      stackDir: config.stackDir,
    });
    return stack.databaseUrl;
  }
  throw missing("databaseUrl", config);
}

export function redisUrl(config: Config, logger?: Logger): string {
  if (config.redisUrl !== undefined) {
    return config.redisUrl;
  }
  const stack = runningStackUrls(config.stackDir);
  if (stack !== undefined) {
    logger?.debug("using the embedded stack's Redis", {
      stackDir: config.stackDir,
    });
    return stack.redisUrl;
  }
  throw missing("redisUrl", config);
}

function missing(key: "databaseUrl" | "redisUrl", config: Config): ConfigError {
  const k = CONFIG_KEYS[key];
  return new ConfigError([
    `${key}: required. Pass ${k.flag}, set ${k.env.join(" or ")}, put "${key}" in the config file, or start the embedded stack with \`fitsfleet stack up\` (none is running under ${config.stackDir})`,
  ]);
}
