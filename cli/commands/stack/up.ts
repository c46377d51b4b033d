import type { Command } from "commander";

import type { Logger } from "../../../lib/logger.js";
import { redactUrl } from "../../../lib/redact.js";
import {
  pgpassFile,
  readStack,
  stackStatus,
  stackUp,
  stackUrls,
} from "../../../lib/stack/index.js";
import { commandContext } from "../../context.js";

export interface StackReport {
  dir: string;
  running: boolean;
  created: boolean;
  started: string[];
  postgres:
    | { url: string; port: number; pid: number | undefined; running: boolean }
    | undefined;
  redis:
    | { url: string; port: number; pid: number | undefined; running: boolean }
    | undefined;
  pgpassFile: string | undefined;
}

/** The stack's state as a report; URLs are always redacted. */
export function stackReport(
  dir: string,
  extra: { created?: boolean; started?: string[] } = {},
): StackReport {
  const status = stackStatus(dir);
  const state = status.exists ? readStack(dir) : undefined;
  const urls = state === undefined ? undefined : stackUrls(state);
  return {
    dir,
    running:
      status.postgres?.running === true && status.redis?.running === true,
    created: extra.created ?? false,
    started: extra.started ?? [],
    postgres:
      status.postgres === undefined || urls === undefined
        ? undefined
        : { url: redactUrl(urls.databaseUrl), ...status.postgres },
    redis:
      status.redis === undefined || urls === undefined
        ? undefined
        : { url: redactUrl(urls.redisUrl), ...status.redis },
    pgpassFile: status.exists ? pgpassFile(dir) : undefined,
  };
}

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
