/**
 * What every command action starts from: the validated config, a logger and
 * the output writer, built from the global options once per invocation.
 */
import type { Command } from "commander";

import { type Config, type ConfigFlags, loadConfig } from "../lib/config.js";
import { createLogger, type Logger } from "../lib/logger.js";
import { Output } from "./output.js";

export interface CommandContext {
  config: Config;
  logger: Logger;
  output: Output;
}

interface GlobalOptions extends ConfigFlags {
  json?: boolean;
}

export function commandContext(command: Command): CommandContext {
  const globals = command.optsWithGlobals<GlobalOptions>();
  const config = loadConfig({
    flags: {
      config: globals.config,
      databaseUrl: globals.databaseUrl,
      redisUrl: globals.redisUrl,
      logLevel: globals.logLevel,
      logFormat: globals.logFormat,
      stackDir: globals.stackDir,
      s3Endpoint: globals.s3Endpoint,
      storage: globals.storage,
      previews: globals.previews,
    },
  });
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
  });
  logger.debug("configuration loaded", {
    sources: config.sources,
    configFile: config.configFile,
  });
  return {
    config,
    logger,
    output: new Output({ json: globals.json === true }),
  };
}
