/**
 * `fitsfleet infra`: what an AWS account needs before a fleet can run. The
 * action loads its module when it runs (cli/program.ts, start-up).
 */
import { Command } from "commander";

export function infraCommand(): Command {
  return new Command("infra")
    .description(
      "what an AWS account needs for a fleet: least-privilege IAM policies",
    )
    .addCommand(
      new Command("iam-policy")
        .description(
          "print the IAM policies for the operator (launch and end fleets, tagged resources only, IMDSv2 only, pass only the worker role) and for the workers' instance role (their SSM secrets, read the archive, write previews)",
        )
        .requiredOption(
          "--worker-role <name>",
          "the workers' IAM role (and instance profile) name",
        )
        .option(
          "--ssm-prefix <path>",
          "SSM parameter path of the fleet's secrets",
          "/fitsfleet/",
        )
        .option("--account <id>", "AWS account id in ARNs (default: any)")
        .option("--region <name>", "region in ARNs (default: any)")
        .option("--partition <name>", "aws, aws-cn or aws-us-gov", "aws")
        .option("--which <policy>", "operator, worker or both", "both")
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
  which: string;
}
