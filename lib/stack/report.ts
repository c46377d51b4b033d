/** The embedded stack as a report for people and for `--json`. */
import { redactUrl } from "../redact.js";
import { pgpassFile, readStack, stackStatus, stackUrls } from "./index.js";

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
