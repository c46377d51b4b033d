import type { Command } from "commander";

import { iamPolicies } from "../../../infra/iam-policy.js";
import { ConfigError, UsageError } from "../../../lib/errors.js";
import { commandContext } from "../../context.js";
import type { IamPolicyFlags } from "./index.js";

export async function iamPolicyAction(
  flags: IamPolicyFlags,
  command: Command,
): Promise<void> {
  const { config, output } = commandContext(command);
  if (!["operator", "worker", "both"].includes(flags.which)) {
    throw new UsageError(
      `--which ${flags.which}: one of operator, worker, both`,
    );
  }
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
  const chosen =
    flags.which === "operator"
      ? { operator: policies.operator }
      : flags.which === "worker"
        ? { worker: policies.worker }
        : policies;
  output.result(chosen, (r) =>
    Object.entries(r)
      .map(
        ([name, document]) =>
          `# ${name === "operator" ? "the operator's policy (attach to the user or role that runs fitsfleet)" : `the workers' role ${flags.workerRole}`}\n${JSON.stringify(document, null, 2)}`,
      )
      .join("\n\n"),
  );
}
