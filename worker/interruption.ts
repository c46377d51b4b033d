/**
 * Spot interruption notices and rebalance recommendations, read from the
 * instance metadata service (IMDS) as EC2 advises: every 5 s, since a
 * notice comes only two minutes before the instance goes, and notices are
 * best effort. Both paths answer 404 until EC2 posts something there.
 *
 * Only IMDSv2 is spoken: a session token from a PUT, sent with every GET.
 * The fleet's launch template requires tokens, so a token-less (IMDSv1)
 * request would only be refused; falling back to one would merely hide a
 * broken token exchange behind a stream of 401s.
 */
import { ExternalServiceError } from "../lib/errors.js";
import { sleep } from "../lib/exec.js";
import type { Logger } from "../lib/logger.js";

export const DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254";
export const SPOT_ACTION_PATH = "/latest/meta-data/spot/instance-action";
export const REBALANCE_PATH =
  "/latest/meta-data/events/recommendations/rebalance";
export const TOKEN_PATH = "/latest/api/token";

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

/** The longest IMDS allows; a worker outlives a shorter token anyway. */
const DEFAULT_TOKEN_TTL_SECONDS = 21_600;

/** IMDS is on the host: an answer slower than this will not come. */
const DEFAULT_TIMEOUT_MS = 2000;

/** While IMDS keeps failing, at most one line per this long. */
const PROBLEM_LOG_EVERY_MS = 60_000;

const SERVICE = "instance metadata";

/** The IMDS endpoint: AWS_EC2_METADATA_SERVICE_ENDPOINT (as the AWS SDK reads it), else EC2's link-local address. */
export function imdsEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const set = env.AWS_EC2_METADATA_SERVICE_ENDPOINT?.trim();
  return (
    set === undefined || set === "" ? DEFAULT_IMDS_ENDPOINT : set
  ).replace(/\/+$/, "");
}

export interface ImdsClientOptions {
  /** Default: imdsEndpoint(). */
  endpoint?: string;
  /** The session token's lifetime asked for (default 6 h). */
  tokenTtlSeconds?: number;
  /** Per request (default 2 s). */
  timeoutMs?: number;
  /** The clock that decides when the token is renewed (tests: one that lags). */
  now?: () => number;
}

/** A small IMDSv2 client: GETs with a session token, renewed before it runs out. */
export class ImdsClient {
  readonly endpoint: string;
  private readonly ttlSeconds: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private token: { value: string; renewAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(options: ImdsClientOptions = {}) {
    this.endpoint = (options.endpoint ?? imdsEndpoint()).replace(/\/+$/, "");
    this.ttlSeconds = options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
  }

  /** The body at `path`, or undefined when IMDS answers 404 (nothing posted there). */
  async get(path: string, signal?: AbortSignal): Promise<string | undefined> {
    for (let attempt = 1; ; attempt++) {
      const token = await this.sessionToken(signal);
      const response = await this.request(
        "GET",
        path,
        { "x-aws-ec2-metadata-token": token },
        signal,
      );
      if (response.status === 401 && attempt === 1) {
        // Refused before its time: IMDS restarted, the instance was
        // stopped and started, or the clock jumped. A new token settles it.
        await response.body?.cancel();
        this.token = undefined;
        continue;
      }
      if (response.status === 404) {
        await response.body?.cancel();
        return undefined;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new ExternalServiceError(
          SERVICE,
          `GET ${path}: HTTP ${response.status}`,
        );
      }
      return await response.text();
    }
  }

  private async sessionToken(signal: AbortSignal | undefined): Promise<string> {
    if (this.token !== undefined && this.now() < this.token.renewAt) {
      return this.token.value;
    }
    this.pending ??= this.newToken(signal).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async newToken(signal: AbortSignal | undefined): Promise<string> {
    // Counted from before the request: IMDS starts the token's life when it answers.
    const asked = this.now();
    const response = await this.request(
      "PUT",
      TOKEN_PATH,
      { "x-aws-ec2-metadata-token-ttl-seconds": String(this.ttlSeconds) },
      signal,
    );
    if (!response.ok) {
      await response.body?.cancel();
      throw new ExternalServiceError(
        SERVICE,
        `PUT ${TOKEN_PATH}: HTTP ${response.status}`,
        {
          suggestion:
            response.status === 403
              ? "the instance metadata service is turned off for this instance (MetadataOptions.HttpEndpoint)"
              : undefined,
        },
      );
    }
    const value = (await response.text()).trim();
    const ttlMs = this.ttlSeconds * 1000;
    // Renewed early enough that a GET never carries a token about to lapse.
    const early = Math.min(60_000, ttlMs / 3);
    this.token = { value, renewAt: asked + ttlMs - early };
    return value;
  }

  private async request(
    method: "GET" | "PUT",
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      return await fetch(`${this.endpoint}${path}`, {
        method,
        headers,
        redirect: "error",
        signal:
          signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
    } catch (error) {
      if (signal?.aborted === true) {
        throw error;
      }
      const why = timeout.aborted
        ? `no answer within ${this.timeoutMs} ms`
        : causeMessage(error);
      throw new ExternalServiceError(
        SERVICE,
        `${method} ${this.endpoint}${path}: ${why}`,
        { cause: error },
      );
    }
  }
}

/** fetch's own message is "fetch failed"; the reason is in its cause. */
function causeMessage(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    return cause.message;
  }
  return error instanceof Error ? error.message : String(error);
}

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
  /** Default: imdsEndpoint(). */
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
