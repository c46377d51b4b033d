/**
 * The configuration keys' spellings (flag, environment variables, help), apart
 * from their validation in config.ts: the CLI's option definitions and help
 * need them on every start, the validator (zod) only when a command runs.
 */

export type ConfigKey =
  | "databaseUrl"
  | "redisUrl"
  | "logLevel"
  | "logFormat"
  | "stackDir"
  | "s3Endpoint"
  | "storage"
  | "previews";

/** Flag spelling and environment variables per key; the first variable listed wins. */
export const CONFIG_KEYS: Record<
  ConfigKey,
  { flag: string; env: string[]; help: string }
> = {
  databaseUrl: {
    flag: "--database-url",
    env: ["FITSFLEET_DATABASE_URL", "DATABASE_URL"],
    help: "PostgreSQL URL of the archive database (default: the embedded stack, if running)",
  },
  redisUrl: {
    flag: "--redis-url",
    env: ["FITSFLEET_REDIS_URL", "REDIS_URL"],
    help: "Redis URL for the work queues (default: the embedded stack, if running)",
  },
  logLevel: {
    flag: "--log-level",
    env: ["FITSFLEET_LOG_LEVEL"],
    help: "error | warn | info | debug (debug also prints stack traces)",
  },
  logFormat: {
    flag: "--log-format",
    env: ["FITSFLEET_LOG_FORMAT"],
    help: "text | json (logs go to stderr)",
  },
  stackDir: {
    flag: "--stack-dir",
    env: ["FITSFLEET_STACK_DIR"],
    help: "state folder of the embedded local stack",
  },
  s3Endpoint: {
    flag: "--s3-endpoint",
    env: ["FITSFLEET_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3"],
    help: "S3 endpoint for s3:// locations, for MinIO or s3rver (default: AWS; credentials from the usual AWS variables)",
  },
  storage: {
    flag: "--storage",
    env: ["FITSFLEET_STORAGE"],
    help: "the archive's file storage: a directory or s3://bucket/prefix",
  },
  previews: {
    flag: "--previews",
    env: ["FITSFLEET_PREVIEWS"],
    help: "where preview JPEGs go: a directory or s3://bucket/prefix (default: previews/ under --storage)",
  },
};
