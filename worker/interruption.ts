/**
 * Spot interruption notices and rebalance recommendations, read from the
 * instance metadata service (IMDSv2, lib/imds.ts) as EC2 advises: every
 * 5 s, since a notice comes only two minutes before the instance goes, and
 * notices are best effort. Both paths answer 404 until EC2 posts something
 * there.
 */
import { sleep } from "../lib/exec.js";
import { ImdsClient } from "../lib/imds.js";
import type { Logger } from "../lib/logger.js";

export const SPOT_ACTION_PATH = "/latest/meta-data/spot/instance-action";
export const REBALANCE_PATH =
  "/latest/meta-data/events/recommendations/rebalance";

/** EC2's advice for how often to look. */
export const DEFAULT_POLL_MS = 5000;

/**
 * A spot notice's work in hand is handed back at the latest this long
 * before the notice's time: the hand-back itself (a ledger update, a queue
 * move) needs a moment, and EC2 may stop the instance a little early.
 */
export const SPOT_HAND_BACK_MARGIN_MS = 30_000;

/** EC2 posts a spot notice this long before it acts. */
const SPOT_NOTICE_LEAD_MS = 120_000;

/** While IMDS keeps failing, at most one line per this long. */
const PROBLEM_LOG_EVERY_MS = 60_000;

export type InterruptionNotice =
  | {
      kind: "spot-interruption";
      /** terminate, stop or hibernate. */
      action: string;
      /** When EC2 acts. */
      time: Date;
    }
  | { kind: "rebalance-recommendation"; noticeTime: Date };

/**
 * A spot notice's body, `{"action":"terminate","time":"2026-01-01T00:02:00Z"}`.
 * Its presence is the notice: a body that cannot be read still means the
 * instance goes, within the documented two minutes.
 */
export function parseSpotAction(
  body: string,
  now = Date.now(),
): InterruptionNotice {
  const parsed = parseObject(body);
  const action =
    typeof parsed.action === "string" ? parsed.action : "terminate";
  const time =
    typeof parsed.time === "string" ? Date.parse(parsed.time) : Number.NaN;
  return {
    kind: "spot-interruption",
    action,
    time: new Date(Number.isNaN(time) ? now + SPOT_NOTICE_LEAD_MS : time),
  };
}

/** A rebalance recommendation's body, `{"noticeTime":"2026-01-01T00:00:00Z"}`. */
export function parseRebalance(
  body: string,
  now = Date.now(),
): InterruptionNotice {
  const parsed = parseObject(body);
  const time =
    typeof parsed.noticeTime === "string"
      ? Date.parse(parsed.noticeTime)
      : Number.NaN;
  return {
    kind: "rebalance-recommendation",
    noticeTime: new Date(Number.isNaN(time) ? now : time),
  };
}

function parseObject(body: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === "object" && value !== null
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/**
 * When the work in hand is handed back after a notice (ms since the epoch):
 * the normal shutdown deadline, but for a spot notice no later than
 * SPOT_HAND_BACK_MARGIN_MS before EC2 acts. A rebalance recommendation
 * gives no time, so the normal deadline stands.
 */
export function handBackTime(
  notice: InterruptionNotice,
  now: number,
  shutdownMs: number,
): number {
  const normal = now + shutdownMs;
  if (notice.kind === "rebalance-recommendation") {
    return normal;
  }
  return Math.max(
    now,
    Math.min(normal, notice.time.getTime() - SPOT_HAND_BACK_MARGIN_MS),
  );
}

export interface WatchOptions {
  /** Between looks (default 5 s, EC2's advice). */
  intervalMs?: number;
  /** Default: imdsEndpoint() (lib/imds.ts). */
  endpoint?: string;
  /** Ends the watch. */
  signal: AbortSignal;
  logger: Logger;
  /**
   * Called once per kind: a rebalance recommendation (the watch goes on, a
   * spot notice may follow), then a spot notice (the watch ends).
   */
  onNotice: (notice: InterruptionNotice) => void;
  /** Called once the first look is over, whatever it found (a notice is reported before). */
  afterFirstLook?: () => void;
  /** Another client, for a token lifetime or clock of its own. */
  client?: ImdsClient;
}

/**
 * Looks for a spot notice and a rebalance recommendation until `signal`
 * aborts or a spot notice has been reported. IMDS faults never end the
 * watch: they are logged (the first, then at most one a minute) and the
 * next look is made as usual.
 */
export async function watchForInterruption(
  options: WatchOptions,
): Promise<void> {
  const { signal, logger, onNotice } = options;
  const client =
    options.client ?? new ImdsClient({ endpoint: options.endpoint });
  const intervalMs = options.intervalMs ?? DEFAULT_POLL_MS;
  const problem = problemLog(logger, client.endpoint);
  let rebalanceSeen = false;
  let firstLook = true;
  logger.debug("watching for spot interruption notices", {
    endpoint: client.endpoint,
    intervalMs,
  });
  while (!signal.aborted) {
    const started = Date.now();
    let found: InterruptionNotice | undefined;
    try {
      found = await look(client, !rebalanceSeen, signal);
      problem.cleared();
    } catch (error) {
      if (signal.aborted) {
        return;
      }
      problem.seen(error);
    }
    if (found !== undefined) {
      rebalanceSeen ||= found.kind === "rebalance-recommendation";
      onNotice(found);
    }
    if (firstLook) {
      firstLook = false;
      options.afterFirstLook?.();
    }
    if (found?.kind === "spot-interruption") {
      return;
    }
    await sleep(Math.max(0, intervalMs - (Date.now() - started)), signal);
  }
}

/**
 * One look. The spot notice first: it is the one with a deadline, and once
 * it is there a rebalance recommendation (often posted with it) adds nothing.
 */
async function look(
  client: ImdsClient,
  rebalanceToo: boolean,
  signal: AbortSignal,
): Promise<InterruptionNotice | undefined> {
  const action = await client.get(SPOT_ACTION_PATH, signal);
  if (action !== undefined) {
    return parseSpotAction(action);
  }
  if (!rebalanceToo) {
    return undefined;
  }
  const rebalance = await client.get(REBALANCE_PATH, signal);
  return rebalance === undefined ? undefined : parseRebalance(rebalance);
}

/**
 * A worker off EC2, or an IMDS outage, must not fill the log: a warning at
 * most once a minute (with how many failures it stands for), and a line
 * when IMDS answers again after a reported outage.
 */
function problemLog(logger: Logger, endpoint: string) {
  let lastLogged = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  let reported = false;
  return {
    seen(error: unknown) {
      if (Date.now() - lastLogged < PROBLEM_LOG_EVERY_MS) {
        suppressed++;
        return;
      }
      logger.warn(
        "instance metadata unreachable; still watching for spot notices",
        {
          endpoint,
          error: error instanceof Error ? error.message : String(error),
          ...(suppressed > 0 && { repeated: suppressed }),
        },
      );
      lastLogged = Date.now();
      suppressed = 0;
      reported = true;
    },
    cleared() {
      if (reported) {
        logger.info("instance metadata reachable again", { endpoint });
        reported = false;
      }
    },
  };
}
