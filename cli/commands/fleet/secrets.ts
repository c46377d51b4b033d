/**
 * `fitsfleet fleet secrets put|show`: the database and Redis URLs a fleet's
 * instances read from SSM Parameter Store at boot (infra/secrets.ts).
 */
import { Command } from "commander";

// The constant without the fleet configuration's schema (and zod) behind it: `--help` stays light.
import { DEFAULT_SSM_PREFIX } from "../../../infra/iam-policy.js";
import type {
  PutFleetSecretsResult,
  SecretInfo,
} from "../../../infra/secrets.js";
import { table } from "../../output.js";
import { runContext } from "../../run.js";
import { REGION_OPTION } from "./common.js";

interface SecretsFlags {
  secretsPrefix: string;
  region?: string;
}

interface PutFlags extends SecretsFlags {
  kmsKeyId?: string;
}

const PREFIX_OPTION = [
  "--secrets-prefix <path>",
  "the SSM parameter path of the secrets; the fleet's launch and the workers' role use the same",
  DEFAULT_SSM_PREFIX,
] as const;

function describePut(
  r: PutFleetSecretsResult & { warnings: string[] },
): string {
  return [
    `wrote ${r.parameters.length} SecureString parameter(s) under ${r.prefix} (KMS key: ${r.kmsKeyId ?? "aws/ssm, the AWS managed key"})`,
    table(
      ["NAME", "VERSION", "CHANGE"],
      r.parameters.map((p) => [
        p.name,
        String(p.version),
        p.created ? "created" : "overwritten",
      ]),
    ),
  ].join("\n");
}

function describeShow(r: { prefix: string; parameters: SecretInfo[] }): string {
  const missing = r.parameters.filter((p) => !p.present);
  return [
    table(
      ["NAME", "TYPE", "VERSION", "LAST MODIFIED"],
      r.parameters.map((p) =>
        p.present
          ? [
              p.name,
              p.type ?? "?",
              String(p.version ?? "?"),
              p.lastModified?.toISOString() ?? "?",
            ]
          : [p.name, "missing", "", ""],
      ),
    ),
    ...(missing.length > 0
      ? [
          `\n${missing.length} missing: run \`fitsfleet fleet secrets put --secrets-prefix ${r.prefix}\``,
        ]
      : []),
  ].join("\n");
}

function putCommand(): Command {
  return new Command("put")
    .description(
      "write the configured database URL and Redis URL (--database-url/--redis-url, their environment variables, the config file, or the running embedded stack) to SSM Parameter Store as SecureStrings under --secrets-prefix, overwriting earlier versions; never prints them",
    )
    .option(...PREFIX_OPTION)
    .option(
      "--kms-key-id <key>",
      "a customer managed KMS key (id, ARN or alias/NAME) to encrypt them with; without it the AWS managed aws/ssm key lets anyone in the account who may read the parameters decrypt them",
    )
    .option(...REGION_OPTION)
    .action(async (flags: PutFlags, cmd: Command) => {
      const { logger, output, databaseUrl, redisUrl } = await runContext(cmd);
      const [aws, secrets, { normalizePrefix }] = await Promise.all([
        import("../../../infra/aws.js"),
        import("../../../infra/secrets.js"),
        import("../../../infra/fleet-config.js"),
      ]);
      const region = aws.awsRegion(flags.region);
      const options = {
        prefix: normalizePrefix(flags.secretsPrefix),
        databaseUrl: databaseUrl(),
        redisUrl: redisUrl(),
        kmsKeyId: flags.kmsKeyId,
      };
      const warnings = secrets.secretWarnings(options);
      for (const warning of warnings) {
        logger.warn(warning);
      }
      const ssm = await aws.ssmClient(region);
      try {
        const result = await secrets.putFleetSecrets(ssm, options);
        output.result({ ...result, warnings }, describePut);
      } finally {
        ssm.destroy();
      }
    });
}

function showCommand(): Command {
  return new Command("show")
    .description(
      "list the secrets under --secrets-prefix: name, type, version and last change, never a value",
    )
    .option(...PREFIX_OPTION)
    .option(...REGION_OPTION)
    .action(async (flags: SecretsFlags, cmd: Command) => {
      const { output } = await runContext(cmd);
      const [aws, secrets, { normalizePrefix }] = await Promise.all([
        import("../../../infra/aws.js"),
        import("../../../infra/secrets.js"),
        import("../../../infra/fleet-config.js"),
      ]);
      const region = aws.awsRegion(flags.region);
      const prefix = normalizePrefix(flags.secretsPrefix);
      const ssm = await aws.ssmClient(region);
      try {
        const parameters = await secrets.describeFleetSecrets(ssm, prefix);
        output.result({ prefix, parameters }, describeShow);
      } finally {
        ssm.destroy();
      }
    });
}

export function secretsCommand(): Command {
  return new Command("secrets")
    .description(
      "the fleet's database and Redis URLs in SSM Parameter Store, read by its instances at boot: put, show",
    )
    .addCommand(putCommand())
    .addCommand(showCommand());
}
