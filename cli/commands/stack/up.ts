import type { Command } from "commander";

import type { Logger } from "../../../lib/logger.js";
import { stackUp } from "../../../lib/stack/index.js";
import { type StackReport, stackReport } from "../../../lib/stack/report.js";
import { commandContext } from "../../context.js";

export function describeStack(report: StackReport): string {
  if (report.postgres === undefined || report.redis === undefined) {
    return `no embedded stack under ${report.dir}; start one with \`fitsfleet stack up\``;
  }
  const state = report.created
    ? "created and started"
    : report.started.length > 0
      ? `started ${report.started.join(", ")}`
      : report.running
        ? "running"
        : "stopped";
  const service = (name: string, s: NonNullable<StackReport["postgres"]>) =>
    `  ${name.padEnd(10)} ${s.url}  ${s.running ? `(pid ${s.pid})` : "(not running)"}`;
  const lines = [
    `embedded stack in ${report.dir}: ${state}`,
    service("PostgreSQL", report.postgres),
    service("Redis", report.redis),
  ];
  if (report.running) {
    lines.push(
      "other fitsfleet commands use this stack while it runs and no --database-url / --redis-url is given",
      `psql: PGPASSFILE=${report.pgpassFile} psql -h 127.0.0.1 -p ${report.postgres.port} -U fitsfleet fitsfleet`,
      "stop: fitsfleet stack down   (add --purge to delete its data)",
    );
  }
  return lines.join("\n");
}

export async function upStack(
  dir: string,
  options: { unsafeFast?: boolean; logger?: Logger } = {},
): Promise<StackReport> {
  const { created, started } = await stackUp(dir, options);
  return stackReport(dir, { created, started });
}

export interface UpFlags {
  unsafeFast?: boolean;
}

/** `stack up`'s action (cli/commands/stack/index.ts loads this module for it). */
export async function upAction(
  flags: UpFlags,
  command: Command,
): Promise<void> {
  const { config, logger, output } = commandContext(command);
  output.result(
    await upStack(config.stackDir, { unsafeFast: flags.unsafeFast, logger }),
    describeStack,
  );
}
