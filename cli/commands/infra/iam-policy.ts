import type { Command } from "commander";

import {
  amiPolicies,
  iamPolicies,
  type PolicyDocument,
} from "../../../infra/iam-policy.js";
import { ConfigError, UsageError } from "../../../lib/errors.js";
import { commandContext } from "../../context.js";
import type { IamPolicyFlags } from "./index.js";

export async function iamPolicyAction(
  flags: IamPolicyFlags,
  command: Command,
): Promise<void> {
  const { config, output } = commandContext(command);
  const which = ["operator", "worker", "both", "ami", "builder", "all"];
  if (!which.includes(flags.which)) {
    throw new UsageError(`--which ${flags.which}: one of ${which.join(", ")}`);
  }
  const wanted = new Set(
    flags.which === "all"
      ? ["operator", "worker", "ami", "builder"]
      : flags.which === "both"
        ? ["operator", "worker"]
        : [flags.which],
  );
  const chosen: Partial<Record<PolicyName, PolicyDocument>> = {};
  if (wanted.has("operator") || wanted.has("worker")) {
    if (config.storage === undefined) {
      throw new ConfigError([
        "storage: not set; the worker policy reads the archive from it: give --storage s3://bucket/prefix, or set FITSFLEET_STORAGE",
      ]);
    }
    const policies = iamPolicies({
      workerRole: flags.workerRole,
      archive: config.storage,
      previews: config.previews,
      ssmPrefix: flags.ssmPrefix,
      account: flags.account,
      region: flags.region,
      partition: flags.partition,
      secretsKmsKey: flags.secretsKmsKey,
      volumeKmsKey: flags.volumeKmsKey,
    });
    for (const name of ["operator", "worker"] as const) {
      if (wanted.has(name)) {
        chosen[name] = policies[name];
      }
    }
  }
  if (wanted.has("ami") || wanted.has("builder")) {
    if (flags.bundleLocation === undefined) {
      // `all` prints the image policies only when it can.
      if (flags.which !== "all") {
        throw new UsageError(
          `--which ${flags.which} needs --bundle-location s3://bucket/prefix, the location \`ami bake\` uploads bundles to`,
        );
      }
    } else {
      const policies = amiPolicies({
        builderRole: flags.builderRole,
        bundleLocation: flags.bundleLocation,
        account: flags.account,
        region: flags.region,
        partition: flags.partition,
        volumeKmsKey: flags.volumeKmsKey,
      });
      for (const name of ["ami", "builder"] as const) {
        if (wanted.has(name)) {
          chosen[name] = policies[name];
        }
      }
    }
  }
  const titles: Record<PolicyName, string> = {
    operator:
      "the operator's policy (attach to the user or role that runs fitsfleet)",
    worker: `the workers' role ${flags.workerRole}`,
    ami: "the operator's policy for `fitsfleet ami` (bake, list, prune, sweep): attach it too to the user or role that bakes",
    builder: `the image builder's role ${flags.builderRole} (trusting ec2.amazonaws.com, with an instance profile of the same name)`,
  };
  const names = Object.keys(chosen) as PolicyName[];
  if (output.json && names.length === 1) {
    // One policy with --json is the bare document, as `aws iam create-policy
    // --policy-document file://…` and `put-role-policy` take it.
    output.result(chosen[names[0]!], () => "");
    return;
  }
  output.result(chosen, (r) =>
    Object.entries(r)
      .map(
        ([name, document]) =>
          `# ${titles[name as PolicyName]}\n${JSON.stringify(document, null, 2)}`,
      )
      .join("\n\n"),
  );
}

type PolicyName = "operator" | "worker" | "ami" | "builder";
