/**
 * The rebuild dashboard's web server (node:http, no framework): one page,
 * its script and style, the charting library (uPlot, served from
 * node_modules: the machines it runs on may have no internet), the
 * snapshot's sections as JSON under /api/, and /api/events, a stream of
 * server-sent events that pushes each section when it changes.
 *
 * Every request needs the token made at start: once in the URL (`?token=`,
 * which the page swaps for a cookie and drops from the address bar), then
 * the cookie or an `Authorization: Bearer` header. A one-time link
 * (`/once/NONCE`, see `oneTimeUrl`) sets the same cookie without the token
 * ever leaving this process: it is what `--open` hands the browser, since a
 * command line is readable by every local user. The database is polled
 * by one loop for all viewers (lib/dashboard/source.ts says what a poll
 * reads), never per request.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import {
  createServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { type AnyClient, connect, type PgClient } from "../db/connect.js";
import { ExternalServiceError, UsageError } from "../errors.js";
import type { Logger } from "../logger.js";
import { packageRoot } from "../paths.js";
import { DASHBOARD_CSS, dashboardHtml } from "./page.js";
import {
  type DashboardSection,
  type DashboardSnapshot,
  DashboardSource,
  type DashboardSourceOptions,
} from "./source.js";

export interface DashboardServerOptions {
  databaseUrl: string;
  source?: DashboardSourceOptions;
  /** Default 127.0.0.1: only this machine. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Default: 32 random bytes. */
  token?: string;
  /** Between polls of the database (default 1500 ms); stretched when a poll is slow. */
  pollMs?: number;
  /** Between keep-alive comments on the event stream (default 15 s). */
  heartbeatMs?: number;
  logger?: Logger;
}

/** How long a one-time link lives by default: enough for a cold browser to start. */
export const ONE_TIME_TTL_MS = 120_000;

export interface DashboardServer {
  host: string;
  port: number;
  /** The page's address, without the token. */
  url: string;
  /** The page's address with `?token=`: the one place the token is shown. */
  tokenUrl: string;
  token: string;
  /**
   * A link that sets the token's cookie and redirects to the page, once,
   * within `ttlMs` (default ONE_TIME_TTL_MS); then it is dead (404). It
   * holds no part of the token, so it may go on a command line.
   */
  oneTimeUrl(ttlMs?: number): string;
  /** The latest snapshot (after the first poll). */
  snapshot(): DashboardSnapshot;
  /** Resolves after the next poll has run (tests, and a fresh /api read). */
  nextPoll(): Promise<void>;
  /** Ends the event streams, the poll loop, the listener and the connection. */
  close(): Promise<void>;
}

/** Whether a listen address reaches only this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return (
    h === "localhost" ||
    h === "::1" ||
    /^127\.\d+\.\d+\.\d+$/.test(h) ||
    h === "::ffff:127.0.0.1"
  );
}

/** `HOST:PORT`, `[v6]:PORT`, `:PORT` or `PORT` (on 127.0.0.1). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:(\[[^\]]+\]|[^:[\]]*):)?(\d{1,5})$/.exec(value.trim());
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new UsageError(
      `--listen ${value}: give HOST:PORT (for example 127.0.0.1:8080, 0.0.0.0:8080 or [::]:8080; port 0 picks a free one)`,
    );
  }
  const host = (m[1] ?? "").replace(/^\[|\]$/g, "");
  return { host: host === "" ? "127.0.0.1" : host, port };
}

const COOKIE_PREFIX = "fitsfleet_dashboard_";

// The page's own files only, and an event stream to the same origin; no
// inline script or style, no frames, nothing sent anywhere else.
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "Content-Security-Policy": CSP,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cache-Control": "no-store",
};

interface Asset {
  type: string;
  body: Buffer;
}

/**
 * The page's script is compiled with the rest (lib/dashboard/client.ts);
 * run from the sources, it is taken from the build.
 */
function loadAssets(): Map<string, Asset> {
  const require = createRequire(import.meta.url);
  const here = fileURLToPath(new URL(".", import.meta.url));
  const client = [
    join(here, "client.js"),
    join(packageRoot(), "dist", "lib", "dashboard", "client.js"),
  ].find((p) => existsSync(p));
  if (client === undefined) {
    throw new UsageError(
      "the dashboard's page script (dist/lib/dashboard/client.js) is missing",
      { suggestion: "build fitsfleet first: `npm run build`" },
    );
  }
  const js = "text/javascript; charset=utf-8";
  return new Map<string, Asset>([
    ["/dashboard.js", { type: js, body: readFileSync(client) }],
    [
      "/dashboard.css",
      { type: "text/css; charset=utf-8", body: Buffer.from(DASHBOARD_CSS) },
    ],
    [
      "/vendor/uPlot.iife.min.js",
      {
        type: js,
        body: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js")),
      },
    ],
    [
      "/vendor/uPlot.min.css",
      {
        type: "text/css; charset=utf-8",
        body: readFileSync(require.resolve("uplot/dist/uPlot.min.css")),
      },
    ],
  ]);
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) {
      out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
    }
  }
  return out;
}

const API_SECTIONS: Record<string, DashboardSection | "snapshot"> = {
  "/api/snapshot": "snapshot",
  "/api/progress": "progress",
  "/api/failures": "failures",
  "/api/fleet": "fleet",
  "/api/spend": "spend",
  "/api/steps": "steps",
};

export async function startDashboardServer(
  options: DashboardServerOptions,
): Promise<DashboardServer> {
  const assets = loadAssets();
  const token = options.token ?? randomBytes(32).toString("base64url");
  const tokenDigest = digest(token);
  const pollMs = options.pollMs ?? 1500;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const logger = options.logger;
  const source = new DashboardSource(options.source);
  const streams = new Set<ServerResponse>();
  let cookieName = COOKIE_PREFIX;
  // One-time links by their nonce's digest: live ones with their expiry,
  // and the used ones, so that a second request can be told apart (and
  // reported: someone may have raced the browser to it).
  const onceLive = new Map<string, number>();
  const onceUsed = new Set<string>();
  const ONCE_PATH = /^\/once\/([A-Za-z0-9_-]{43})$/;

  // Both sides hashed first: equal lengths for timingSafeEqual, and no
  // early exit that would tell how much of a guess was right.
  const valid = (candidate: string | undefined | null) =>
    candidate !== undefined &&
    candidate !== null &&
    timingSafeEqual(digest(candidate), tokenDigest);

  const authorised = (req: IncomingMessage, url: URL) => {
    const auth = req.headers.authorization;
    return (
      valid(url.searchParams.get("token")) ||
      valid(cookies(req).get(cookieName)) ||
      (auth !== undefined && valid(/^Bearer\s+(.+)$/i.exec(auth)?.[1]))
    );
  };

  // --- the poll loop ---------------------------------------------------------
  let client: PgClient | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let waiting: (() => void)[] = [];
  const getClient = async (): Promise<AnyClient> => {
    if (client === undefined) {
      const made = await connect(options.databaseUrl, {
        applicationName: "fitsfleet dashboard",
      });
      if (stopped) {
        // Closed while connecting: nothing may outlive close().
        await made.end().catch(() => undefined);
        throw new Error("the dashboard is closing");
      }
      client = made;
    }
    return client;
  };
  const push = (section: DashboardSection | "snapshot", data: unknown) => {
    // EventSource reports its own connection trouble as "error".
    const name = section === "error" ? "db-error" : section;
    const frame = `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) {
      res.write(frame);
    }
  };
  const pollOnce = async () => {
    const started = Date.now();
    let changed: Set<DashboardSection> | undefined;
    let connected: AnyClient | undefined;
    try {
      connected = await getClient();
    } catch (error) {
      // Could not even connect: keep the last figures, say why.
      changed = source.fail(error);
    }
    changed ??= await source.poll(connected!);
    if (source.snapshot().error !== null && client !== undefined) {
      // A broken connection is made anew on the next poll.
      const old = client;
      client = undefined;
      await old.end().catch(() => undefined);
    }
    const snap = source.snapshot();
    for (const section of changed) {
      push(section, snap[section]);
    }
    if (changed.has("error") && snap.error !== null) {
      logger?.warn("the dashboard could not read the database", {
        error: snap.error,
      });
    }
    return Date.now() - started;
  };
  const loop = async () => {
    let took = 0;
    try {
      took = await pollOnce();
    } catch (error) {
      logger?.error("dashboard poll failed", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
    const done = waiting;
    waiting = [];
    for (const resolve of done) {
      resolve();
    }
    if (!stopped) {
      // A slow poll (a huge ledger, a busy server) spaces the next ones out,
      // so the dashboard never takes more than a tenth of the database's time.
      timer = setTimeout(() => void loop(), Math.max(pollMs, took * 10));
    }
  };
  // --- requests ----------------------------------------------------------------
  const send = (
    res: ServerResponse,
    status: number,
    type: string,
    body: string | Buffer,
    extra: Record<string, string> = {},
  ) => {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      "Content-Type": type,
      "Content-Length": Buffer.byteLength(body),
      ...extra,
    });
    res.end(body);
  };

  const setCookie = (res: ServerResponse) =>
    res.setHeader(
      "Set-Cookie",
      `${cookieName}=${token}; Path=/; HttpOnly; SameSite=Strict`,
    );

  /** `/once/NONCE`: GET only (a HEAD or a prefetch must not spend it). */
  const handleOnce = (
    req: IncomingMessage,
    res: ServerResponse,
    nonce: string,
  ) => {
    if (req.method !== "GET") {
      send(res, 405, "text/plain; charset=utf-8", "only GET\n", {
        Allow: "GET",
      });
      return;
    }
    const key = digest(nonce).toString("hex");
    const expires = onceLive.get(key);
    onceLive.delete(key);
    if (expires !== undefined && Date.now() <= expires) {
      onceUsed.add(key);
      setCookie(res);
      send(res, 303, "text/plain; charset=utf-8", "", { Location: "/" });
      return;
    }
    if (onceUsed.has(key)) {
      logger?.warn(
        "the one-time link of --open was requested again after its use; if the browser shows it as used, someone else on this machine opened it first: stop the dashboard (its token dies with it) and start it again",
      );
    }
    send(
      res,
      404,
      "text/plain; charset=utf-8",
      "404: this one-time link has been used or has expired: open the URL that `fitsfleet rebuild dashboard` printed. If you did not open it before, someone else may have: stop the dashboard and start it again\n",
    );
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");
    const once = ONCE_PATH.exec(url.pathname);
    if (once !== null) {
      handleOnce(req, res, once[1]!);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain; charset=utf-8", "only GET\n", {
        Allow: "GET, HEAD",
      });
      return;
    }
    if (!authorised(req, url)) {
      send(
        res,
        401,
        "text/plain; charset=utf-8",
        "401: this dashboard needs its token: open the URL that `fitsfleet rebuild dashboard` printed\n",
        { "WWW-Authenticate": 'Bearer realm="fitsfleet dashboard"' },
      );
      return;
    }
    if (url.searchParams.has("token")) {
      // The token moves to a cookie for this port (cookies ignore ports, so
      // the name carries it) and out of the address bar and history.
      url.searchParams.delete("token");
      setCookie(res);
      if (url.pathname === "/") {
        send(res, 303, "text/plain; charset=utf-8", "", {
          Location: `${url.pathname}${url.search}`,
        });
        return;
      }
    }
    if (url.pathname === "/" || url.pathname === "/index.html") {
      send(res, 200, "text/html; charset=utf-8", dashboardHtml());
      return;
    }
    const asset = assets.get(url.pathname);
    if (asset !== undefined) {
      send(res, 200, asset.type, asset.body);
      return;
    }
    const section = API_SECTIONS[url.pathname];
    if (section !== undefined) {
      const snap = source.snapshot();
      const body = section === "snapshot" ? snap : snap[section];
      send(
        res,
        200,
        "application/json; charset=utf-8",
        `${JSON.stringify(body)}\n`,
      );
      return;
    }
    if (url.pathname === "/api/events") {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "Content-Type": "text/event-stream; charset=utf-8",
        Connection: "keep-alive",
      });
      // Every section at once, then each as it changes.
      const snap = source.snapshot();
      res.write(`retry: 2000\n`);
      res.write(`event: snapshot\ndata: ${JSON.stringify(snap)}\n\n`);
      streams.add(res);
      const beat = setInterval(
        () => res.write(": keep-alive\n\n"),
        heartbeatMs,
      );
      req.on("close", () => {
        clearInterval(beat);
        streams.delete(res);
      });
      return;
    }
    send(res, 404, "text/plain; charset=utf-8", "404: no such page\n");
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (error) {
      logger?.error("dashboard request failed", {
        // The path only: a query may hold the token.
        path: new URL(req.url ?? "/", "http://dashboard.invalid").pathname,
        error: error instanceof Error ? error.message : String(error),
      });
      if (!res.headersSent) {
        send(res, 500, "text/plain; charset=utf-8", "500: internal error\n");
      } else {
        res.end();
      }
    }
  });
  // The first poll before listening: a database it cannot read is an error
  // at start, not a page of zeros.
  await loop();
  if (source.snapshot().error !== null) {
    await close();
    throw new ExternalServiceError(
      "postgresql",
      `the dashboard cannot read the database: ${source.snapshot().error}`,
      {
        suggestion:
          "check --database-url (or DATABASE_URL) and that the schema is migrated (`fitsfleet upgrade migrate-tables`)",
      },
    );
  }

  const host = options.host ?? "127.0.0.1";
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    await close();
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `--listen ${host}:${options.port ?? 0}: cannot listen there (${code ?? String(error)})`,
      {
        suggestion:
          code === "EADDRINUSE"
            ? "the port is taken: give another, or 0 for a free one"
            : "give an address of this machine",
      },
    );
  }
  const port = (server.address() as AddressInfo).port;
  cookieName = `${COOKIE_PREFIX}${port}`;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  const base =
    host === "0.0.0.0" || host === "::"
      ? `http://127.0.0.1:${port}/`
      : `http://${shownHost}:${port}/`;

  async function close(): Promise<void> {
    stopped = true;
    if (timer !== undefined) {
      clearTimeout(timer);
    }
    for (const res of streams) {
      res.end();
    }
    streams.clear();
    await new Promise<void>((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
      server.closeAllConnections();
    });
    const old = client;
    client = undefined;
    await old?.end().catch(() => undefined);
    for (const resolve of waiting) {
      resolve();
    }
    waiting = [];
  }

  return {
    host,
    port,
    url: base,
    tokenUrl: `${base}?token=${encodeURIComponent(token)}`,
    token,
    oneTimeUrl: (ttlMs = ONE_TIME_TTL_MS) => {
      const nonce = randomBytes(32).toString("base64url");
      const now = Date.now();
      // Expired links are dropped as new ones are made: the map stays small.
      for (const [key, expires] of onceLive) {
        if (expires < now) {
          onceLive.delete(key);
        }
      }
      onceLive.set(digest(nonce).toString("hex"), now + ttlMs);
      return `${base}once/${nonce}`;
    },
    snapshot: () => source.snapshot(),
    nextPoll: () =>
      stopped
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiting.push(resolve)),
    close,
  };
}

/** The events a stream sends: every section at once, then each on its own as it changes. */
export const STREAM_EVENTS = [
  "snapshot",
  "progress",
  "failures",
  "fleet",
  "spend",
  "steps",
  "db-error",
] as const;
