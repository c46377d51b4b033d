/**
 * The one client of EC2's instance metadata service (IMDS), for the boot of
 * a fleet instance (ami/boot.ts: its id and user-data) and for a worker's
 * watch for spot notices (worker/interruption.ts).
 *
 * Only IMDSv2 is spoken: a session token from a PUT, sent with every GET.
 * The fleet's launch template requires tokens, so a token-less (IMDSv1)
 * request would only be refused; falling back to one would merely hide a
 * broken token exchange behind a stream of 401s.
 */
import { ExternalServiceError } from "./errors.js";
import { sleep } from "./exec.js";

/** The link-local address of EC2's instance metadata service. */
export const DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254";
export const TOKEN_PATH = "/latest/api/token";

/** The longest IMDS allows; a worker outlives a shorter token anyway. */
const DEFAULT_TOKEN_TTL_SECONDS = 21_600;

/** IMDS is on the host: an answer slower than this will not come. */
const DEFAULT_TIMEOUT_MS = 2000;

const SERVICE = "imds";

/** What the launch template must say for IMDSv2 to answer at all. */
const METADATA_OPTIONS =
  "the launch template's MetadataOptions must enable the endpoint (HttpEndpoint enabled) with IMDSv2 tokens";

/** The IMDS endpoint: AWS_EC2_METADATA_SERVICE_ENDPOINT (as the AWS SDK reads it), else EC2's link-local address. */
export function imdsEndpoint(
  env: Record<string, string | undefined> = process.env,
): string {
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
  /**
   * Tries per request when IMDS does not answer or answers 5xx (default 1),
   * 0.5, 1, 2, 4… s apart. A boot asks more than once: IMDS may not answer
   * in an instance's first moments. A watch looks again soon anyway.
   */
  attempts?: number;
  /** The clock that decides when the token is renewed (tests: one that lags). */
  now?: () => number;
}

/** A small IMDSv2 client: GETs with a session token, renewed before it runs out. */
export class ImdsClient {
  readonly endpoint: string;
  private readonly ttlSeconds: number;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly now: () => number;
  private token: { value: string; renewAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(options: ImdsClientOptions = {}) {
    this.endpoint = (options.endpoint ?? imdsEndpoint()).replace(/\/+$/, "");
    this.ttlSeconds = options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.attempts = Math.max(1, options.attempts ?? 1);
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
          `the instance metadata service at ${this.endpoint} refused GET ${path} (HTTP ${response.status})`,
          { fault: "permanent", suggestion: METADATA_OPTIONS },
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
        `the instance metadata service at ${this.endpoint} refused an IMDSv2 session token (HTTP ${response.status})`,
        {
          fault: "permanent",
          suggestion:
            response.status === 403
              ? "the instance metadata service is turned off for this instance: the launch template's MetadataOptions must set HttpEndpoint enabled"
              : METADATA_OPTIONS,
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

  /** An answer below 500; no answer or a 5xx is tried again, `attempts` times in all. */
  private async request(
    method: "GET" | "PUT",
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    let why = "";
    let last: unknown;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      if (attempt > 1) {
        // Cut short by `signal`: the fetch then fails at once, and says why.
        await sleep(250 * 2 ** (attempt - 1), signal);
      }
      const timeout = AbortSignal.timeout(this.timeoutMs);
      try {
        const response = await fetch(`${this.endpoint}${path}`, {
          method,
          headers,
          redirect: "error",
          signal:
            signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
        });
        if (response.status < 500) {
          return response;
        }
        await response.body?.cancel();
        why = `HTTP ${response.status}`;
        last = undefined;
      } catch (error) {
        if (signal?.aborted === true) {
          throw error;
        }
        why = timeout.aborted
          ? `no answer within ${this.timeoutMs} ms`
          : causeMessage(error);
        last = error;
      }
    }
    throw new ExternalServiceError(
      SERVICE,
      `the instance metadata service at ${this.endpoint} did not answer ${method} ${path} (${why}${this.attempts > 1 ? `, ${this.attempts} attempts` : ""})`,
      {
        cause: last,
        suggestion:
          "on EC2, the launch template's MetadataOptions must enable the endpoint and its HttpPutResponseHopLimit must reach this process (1 on the host, 2 inside a container); elsewhere set AWS_EC2_METADATA_SERVICE_ENDPOINT to a metadata service",
      },
    );
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
