import type { Command } from "commander";

import { type DatabaseStatus, databaseStatus } from "../../../lib/db/init.js";
import { databaseUrl } from "../../../lib/endpoints.js";
import { PreconditionError } from "../../../lib/errors.js";
import { commandContext } from "../../context.js";
import { table } from "../../output.js";

export function describeStatus(status: DatabaseStatus): string {
  const rows = status.migrations.map((m) => [
    String(m.version).padStart(4, "0"),
    m.name,
    m.state,
    m.appliedAt === undefined
      ? ""
      : m.appliedAt
          .toISOString()
          .replace("T", " ")
          .replace(/\.\d+Z$/, "Z"),
  ]);
  return [
    `database ${status.database}`,
    table(["version", "name", "state", "applied at"], rows),
    `schema version ${status.current} of ${status.latest}; ${status.pending} pending`,
  ].join("\n");
}

export interface StatusFlags {
  check?: boolean;
}

/** `db status`'s action (cli/commands/db/index.ts loads this module for it). */
export async function statusAction(
  flags: StatusFlags,
  command: Command,
): Promise<void> {
  const { config, logger, output } = commandContext(command);
  const status = await databaseStatus(databaseUrl(config, logger));
  output.result(status, describeStatus);
  if (flags.check === true && status.pending > 0) {
    throw new PreconditionError(`${status.pending} migration(s) pending`, {
      suggestion: "run `fitsfleet db init`",
    });
  }
}
