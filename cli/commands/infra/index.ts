/**
 * `fitsfleet infra`: what an AWS account needs before a fleet can run. The
 * action loads its module when it runs (cli/program.ts, start-up).
 */
import { Command } from "commander";

import {
  DEFAULT_BUILDER_ROLE,
  DEFAULT_SSM_PREFIX,
} from "../../../infra/iam-policy.js";

export function infraCommand(): Command {
  return new Command("infra")
    .description(
      "what an AWS account needs for a fleet and its worker image: least-privilege IAM policies",
    )
    .addCommand(
      new Command("iam-policy")
        .description(
          "print the IAM policies for the operator (launch and end fleets, tagged resources only, IMDSv2 only, pass only the worker role) and for the workers' instance role (their SSM secrets, read the archive, write previews); with --bundle-location, also the operator's for `ami bake`, `list`, `prune` and `sweep` (a tagged builder only, IMDSv2 only, image and end only what a bake tagged, pass only the builder role, bundles under the location only) and the builder's instance role (read the bundles, tag itself ready)",
        )
        .requiredOption(
          "--worker-role <name>",
          "the workers' IAM role (and instance profile) name",
        )
        .option(
          "--ssm-prefix <path>",
          "SSM parameter path of the fleet's secrets",
          DEFAULT_SSM_PREFIX,
        )
        .option("--account <id>", "AWS account id in ARNs (default: any)")
        .option("--region <name>", "region in ARNs (default: any)")
        .option("--partition <name>", "aws, aws-cn or aws-us-gov", "aws")
        .option(
          "--secrets-kms-key <arn>",
          "the ARN of the customer managed key given to `fleet secrets put --kms-key-id`: the operator may encrypt and the workers decrypt with it, through SSM only (default: none needed for aws/ssm)",
        )
        .option(
          "--volume-kms-key <arn>",
          "the ARN of the customer managed key given to `rebuild launch-fleet --kms-key-id`: the operator may have EC2 encrypt the root volumes with it (default: none needed for the account's EBS key)",
        )
        .option(
          "--bundle-location <s3-url>",
          "the --bundle-location of `ami bake`, s3://bucket/prefix: adds the image policies (ami, builder)",
        )
        .option(
          "--builder-role <name>",
          "the image builder's IAM role (and instance profile) name (`ami bake --instance-profile`)",
          DEFAULT_BUILDER_ROLE,
        )
        .option(
          "--which <policy>",
          "operator, worker, both (those two), ami (the operator's for `fitsfleet ami`), builder, or all (every one the flags allow); one policy with --json is its bare policy document, for `aws iam`",
          "all",
        )
        .action(async (flags: IamPolicyFlags, command: Command) =>
          (await import("./iam-policy.js")).iamPolicyAction(flags, command),
        ),
    );
}

export interface IamPolicyFlags {
  workerRole: string;
  ssmPrefix: string;
  account?: string;
  region?: string;
  partition: string;
  secretsKmsKey?: string;
  volumeKmsKey?: string;
  which: string;
  bundleLocation?: string;
  builderRole: string;
}
