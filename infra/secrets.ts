/**
 * A fleet's secrets in SSM Parameter Store: the database URL and the Redis
 * URL, as SecureStrings under a prefix (infra/fleet-config.ts names them).
 * The operator writes them (`fitsfleet fleet secrets put`); an instance
 * reads them at boot through its role (ami/boot.ts). They never travel in
 * user-data, tags, argv or logs, and no function here returns a value to
 * anyone but the instance that asked for it.
 *
 * The parameters are shared by every fleet that uses the prefix, so they
 * carry the prefix as a tag, not a fleet's.
 */
import {
  GetParametersCommand,
  PutParameterCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";

import {
  type FitsfleetError,
  PreconditionError,
  UsageError,
} from "../lib/errors.js";
import { awsCall, awsFailure, type AwsRequest, clientTarget } from "./aws.js";
import {
  normalizePrefix,
  SECRET_NAMES,
  secretParameter,
} from "./fleet-config.js";

/** The tag on each secret parameter; its value is the prefix. */
export const SECRETS_TAG = "fitsfleet:secrets";

export type SecretKey = keyof typeof SECRET_NAMES;

const KEYS = Object.keys(SECRET_NAMES) as SecretKey[];

const DESCRIPTIONS: Record<SecretKey, string> = {
  databaseUrl: "fitsfleet: the archive database URL for fleet workers",
  redisUrl: "fitsfleet: the Redis URL of the work queues for fleet workers",
};

export interface FleetSecrets {
  databaseUrl: string;
  redisUrl: string;
}

export interface PutFleetSecretsOptions extends FleetSecrets {
  prefix: string;
  /** A customer managed KMS key (id, ARN or alias); default the AWS managed aws/ssm key. */
  kmsKeyId?: string;
}

export interface PutSecretResult {
  key: SecretKey;
  name: string;
  version: number;
  /** False when an existing parameter was overwritten. */
  created: boolean;
}

export interface PutFleetSecretsResult {
  prefix: string;
  kmsKeyId: string | undefined;
  parameters: PutSecretResult[];
}

/** One parameter as `secrets show` reports it: never its value. */
export interface SecretInfo {
  key: SecretKey;
  name: string;
  present: boolean;
  type?: string;
  version?: number;
  lastModified?: Date;
}

/**
 * The named parameters, decrypted only for an instance: the operator's
 * `secrets show` gets a SecureString's ciphertext, and drops it.
 */
function getParameters(
  ssm: SSMClient,
  names: string[],
  caller: "operator" | "instance",
) {
  return awsCall(
    ssm,
    {
      service: "ssm",
      action: "GetParameters",
      resource: names.join(", "),
      caller,
    },
    () =>
      ssm.send(
        new GetParametersCommand({
          Names: names,
          WithDecryption: caller === "instance",
        }),
      ),
  );
}

function awsErrorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

/**
 * Writes both secrets as SecureStrings, overwriting what is there. A new
 * parameter is created with its tag; an existing one keeps the tag it has,
 * since Parameter Store refuses tags together with Overwrite.
 */
export async function putFleetSecrets(
  ssm: SSMClient,
  options: PutFleetSecretsOptions,
): Promise<PutFleetSecretsResult> {
  const prefix = normalizePrefix(options.prefix);
  const target = await clientTarget(ssm);
  const written: PutSecretResult[] = [];
  for (const key of KEYS) {
    const name = secretParameter(prefix, key);
    const base = {
      Name: name,
      Value: options[key],
      Type: "SecureString" as const,
      Description: DESCRIPTIONS[key],
      ...(options.kmsKeyId === undefined ? {} : { KeyId: options.kmsKeyId }),
    };
    const fail = (error: unknown): FitsfleetError => {
      const failure = putFailure(error, {
        service: "ssm",
        action: "PutParameter",
        resource: name,
        ...target,
      });
      if (written.length > 0) {
        failure.message += ` (already written: ${written.map((w) => w.name).join(", ")})`;
        failure.context.written = written.map((w) => w.name);
      }
      return failure;
    };
    try {
      const created = await ssm.send(
        new PutParameterCommand({
          ...base,
          Tags: [{ Key: SECRETS_TAG, Value: prefix }],
        }),
      );
      written.push({ key, name, version: created.Version ?? 1, created: true });
      continue;
    } catch (error) {
      if (awsErrorName(error) !== "ParameterAlreadyExists") {
        throw fail(error);
      }
    }
    try {
      const overwritten = await ssm.send(
        new PutParameterCommand({ ...base, Overwrite: true }),
      );
      written.push({
        key,
        name,
        version: overwritten.Version ?? 0,
        created: false,
      });
    } catch (error) {
      throw fail(error);
    }
  }
  return { prefix, kmsKeyId: options.kmsKeyId, parameters: written };
}

function putFailure(error: unknown, request: AwsRequest): FitsfleetError {
  switch (awsErrorName(error)) {
    case "HierarchyTypeMismatchException":
    case "UnsupportedParameterType":
      return new PreconditionError(
        `${request.resource} exists as another type than SecureString, and Parameter Store will not change it`,
        {
          cause: error,
          suggestion: `delete it (\`aws ssm delete-parameter --name ${request.resource}\`), then put the secrets again`,
        },
      );
    case "InvalidKeyId":
    case "KMSKeyNotFoundException":
      return new UsageError(
        `--kms-key-id: KMS does not accept that key for ${request.resource} (${(error as Error).message})`,
        {
          cause: error,
          suggestion:
            "give a customer managed key's id, ARN or alias/NAME in the same region and account, enabled, with kms:Encrypt for you",
        },
      );
    default:
      return awsFailure(error, request);
  }
}

/**
 * The secrets, decrypted, as an instance reads them through its role. A
 * secret that is missing, not a SecureString, or not a URL of its kind is
 * a PreconditionError naming the parameter (never its value).
 */
export async function readFleetSecrets(
  ssm: SSMClient,
  prefix: string,
): Promise<FleetSecrets> {
  const names = Object.fromEntries(
    KEYS.map((key) => [key, secretParameter(prefix, key)]),
  ) as Record<SecretKey, string>;
  const found = await getParameters(ssm, Object.values(names), "instance");
  const missing = found.InvalidParameters ?? [];
  if (missing.length > 0) {
    throw new PreconditionError(
      `the fleet's secret${missing.length > 1 ? "s" : ""} ${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} not in SSM Parameter Store (region ${(await clientTarget(ssm)).region ?? "unknown"})`,
      {
        suggestion: `as the operator, run \`fitsfleet fleet secrets put --secrets-prefix ${normalizePrefix(prefix)}\`, then launch the fleet again`,
        context: { missing },
      },
    );
  }
  const byName = new Map(
    (found.Parameters ?? []).map((p) => [p.Name ?? "", p]),
  );
  const secrets = {} as FleetSecrets;
  for (const key of KEYS) {
    const name = names[key];
    const parameter = byName.get(name);
    if (parameter?.Value === undefined) {
      throw new PreconditionError(
        `SSM Parameter Store returned no value for ${name}`,
        {
          suggestion: `put it again with \`fitsfleet fleet secrets put --secrets-prefix ${normalizePrefix(prefix)}\``,
        },
      );
    }
    if (parameter.Type !== "SecureString") {
      throw new PreconditionError(
        `${name} is a ${parameter.Type ?? "parameter of unknown type"}, not a SecureString: a fleet reads its secrets only from encrypted parameters`,
        {
          suggestion: `delete it and put it again with \`fitsfleet fleet secrets put --secrets-prefix ${normalizePrefix(prefix)}\``,
        },
      );
    }
    if (!looksLike(key, parameter.Value)) {
      throw new PreconditionError(
        `${name} does not hold a ${key === "databaseUrl" ? "postgres:// or postgresql://" : "redis:// or rediss://"} URL`,
        {
          suggestion: `put it again with \`fitsfleet fleet secrets put --secrets-prefix ${normalizePrefix(prefix)}\`, which takes the URLs from your fitsfleet configuration`,
        },
      );
    }
    secrets[key] = parameter.Value;
  }
  return secrets;
}

function looksLike(key: SecretKey, value: string): boolean {
  const scheme =
    key === "databaseUrl" ? /^postgres(ql)?:\/\/\S+$/ : /^rediss?:\/\/\S+$/;
  return scheme.test(value) && URL.canParse(value);
}

/** What is stored under the prefix, for the operator: names, type, version, time; no value. */
export async function describeFleetSecrets(
  ssm: SSMClient,
  prefix: string,
): Promise<SecretInfo[]> {
  const names = KEYS.map((key) => secretParameter(prefix, key));
  const found = await getParameters(ssm, names, "operator");
  const byName = new Map(
    (found.Parameters ?? []).map((p) => [p.Name ?? "", p]),
  );
  return KEYS.map((key, i) => {
    const name = names[i]!;
    const p = byName.get(name);
    return p === undefined
      ? { key, name, present: false }
      : {
          key,
          name,
          present: true,
          type: p.Type,
          version: p.Version,
          lastModified: p.LastModifiedDate,
        };
  });
}

const LOOPBACK_HOSTS =
  /^(localhost|127(\.\d{1,3}){3}|\[::1\]|0\.0\.0\.0|\[::\])$/i;

/**
 * What the operator should know before a fleet reads these secrets: a URL
 * on a loopback address means the instance itself, not the operator's
 * machine; without a KMS key of their own, the AWS managed aws/ssm key lets
 * anyone in the account who may read the parameters decrypt them.
 */
export function secretWarnings(options: PutFleetSecretsOptions): string[] {
  const warnings: string[] = [];
  for (const key of KEYS) {
    let host: string;
    try {
      host = new URL(options[key]).hostname;
    } catch {
      continue;
    }
    if (LOOPBACK_HOSTS.test(host)) {
      warnings.push(
        `the ${key === "databaseUrl" ? "database" : "Redis"} URL points at ${host}: on a fleet instance that is the instance itself, so workers will reach it only where the service runs on the same machine (the local test endpoint); give an address the instances can reach`,
      );
    }
  }
  if (options.kmsKeyId === undefined) {
    warnings.push(
      "no --kms-key-id: the secrets are encrypted with the AWS managed key aws/ssm, which lets any principal in the account that may read the parameters decrypt them; pass a customer managed key to restrict decryption",
    );
  }
  return warnings;
}
