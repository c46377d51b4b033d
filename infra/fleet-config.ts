/**
 * What a fleet's instances are told, and how every fleet resource is
 * tagged. The launch template's user-data is this document as JSON: the
 * run's settings and nothing secret. At boot an instance reads it from its
 * metadata service (IMDSv2), fetches the database and Redis URLs from SSM
 * Parameter Store under `secretsPrefix` through its instance role, and
 * starts its workers (ami/boot.ts). `fleet secrets put` writes those
 * parameters from the operator's configuration.
 */
import { z } from "zod";

import { UsageError } from "../lib/errors.js";
import { DEFAULT_SSM_PREFIX, FLEET_TAG } from "./iam-policy.js";

export { DEFAULT_SSM_PREFIX, FLEET_TAG };

/** Tag keys on every resource a fleet creates: the fleet's name and the run it serves. */
export const RUN_TAG = "fitsfleet:run";
/** Tag on instances: which workers the instance runs (`ingest` or `preview`). */
export const ROLE_TAG = "fitsfleet:role";

/** The SSM parameter names under a prefix. */
export const SECRET_NAMES = {
  databaseUrl: "database-url",
  redisUrl: "redis-url",
} as const;

export function secretParameter(
  prefix: string,
  key: keyof typeof SECRET_NAMES,
): string {
  return `${normalizePrefix(prefix)}${SECRET_NAMES[key]}`;
}

/** `/fitsfleet/prod` and `/fitsfleet/prod/` are one prefix; it must start with a slash. */
export function normalizePrefix(prefix: string): string {
  if (!/^\/[A-Za-z0-9_.\-/]*$/.test(prefix)) {
    throw new UsageError(
      `--secrets-prefix ${JSON.stringify(prefix)}: an SSM path such as /fitsfleet/prod/ (letters, digits, _ . - and /, starting with /)`,
    );
  }
  return prefix.endsWith("/") ? prefix : `${prefix}/`;
}

export const FLEET_CONFIG_VERSION = 1;

const fleetConfigSchema = z.object({
  fitsfleet: z.literal(FLEET_CONFIG_VERSION),
  /** The fleet's name (FLEET_TAG's value). */
  fleet: z.string().min(1),
  /** The run it serves (RUN_TAG's value). */
  run: z.string().min(1),
  region: z.string().min(1),
  secretsPrefix: z.string().startsWith("/"),
  /** The BullMQ ingest queue. */
  queue: z.string().min(1),
  /** Workers of each role on one instance. */
  ingestWorkers: z.number().int().min(0),
  previewWorkers: z.number().int().min(0),
  fastRebuild: z.boolean(),
  makePreviews: z.boolean(),
  storage: z.string().optional(),
  previews: z.string().optional(),
  s3Endpoint: z.string().optional(),
  logLevel: z.string().optional(),
  /** ISO time: the instance stops its workers then, whatever the operator's machine does. */
  deadline: z.string().datetime(),
});

export type FleetInstanceConfig = z.infer<typeof fleetConfigSchema>;

export function renderFleetConfig(config: FleetInstanceConfig): string {
  return JSON.stringify(fleetConfigSchema.parse(config));
}

/** Parses user-data; `where` names its source in the error. */
export function parseFleetConfig(
  text: string,
  where: string,
): FleetInstanceConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `${where}: not a fitsfleet fleet configuration (not JSON: ${(error as Error).message})`,
    );
  }
  const parsed = fleetConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UsageError(
      `${where}: not a valid fitsfleet fleet configuration: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(document)"}: ${i.message}`).join("; ")}`,
    );
  }
  return parsed.data;
}
