import { spawn } from "node:child_process";

import { Command } from "commander";

import type { DashboardServer } from "../../../lib/dashboard/server.js";
import type { RunStateLoader } from "../../../lib/dashboard/source.js";
import type { Logger } from "../../../lib/logger.js";
import { registerSecret } from "../../../lib/redact.js";
import { runContext } from "../../run.js";
import { onInterrupt } from "../../signals.js";

export interface DashboardOptions {
  databaseUrl: string;
  /** The run whose steps are shown. */
  run?: string;
  fleet?: string;
  /** `HOST:PORT`; default 127.0.0.1 on a free port. */
  listen?: string;
  pollMs?: number;
  /** Where the run's steps come from; default with `run`: the coordinator's snapshot plus later events, read without a lease. */
  loadRunState?: RunStateLoader;
  logger?: Logger;
}

/**
 * Starts the dashboard (lib/dashboard/server.ts) and returns it running;
 * `close()` ends it. Not on a loopback address, it warns: anyone who can
 * reach the port and has the token sees the rebuild.
 */
export async function startRebuildDashboard(
  options: DashboardOptions,
): Promise<DashboardServer & { warnings: string[] }> {
  const { parseListen, isLoopback, startDashboardServer } =
    await import("../../../lib/dashboard/server.js");
  const listen =
    options.listen === undefined
      ? { host: "127.0.0.1", port: 0 }
      : parseListen(options.listen);
  const warnings = isLoopback(listen.host)
    ? []
    : [
        `--listen ${options.listen}: the dashboard is reachable from other machines; anyone with its URL (and token) sees the rebuild. It is plain HTTP: put it behind TLS, or use an SSH tunnel instead`,
      ];
  const loadRunState =
    options.loadRunState ??
    (options.run === undefined
      ? undefined
      : (await import("../../../lib/run/coordinated.js")).readRunState);
  const server = await startDashboardServer({
    databaseUrl: options.databaseUrl,
    host: listen.host,
    port: listen.port,
    pollMs: options.pollMs,
    logger: options.logger,
    source: {
      runId: options.run,
      fleet: options.fleet,
      loadRunState,
    },
  });
  return Object.assign(server, { warnings });
}

/** The program that opens a URL: `$BROWSER` when set, else the desktop's opener. */
export function browserOpener(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env.BROWSER?.trim();
  if (chosen !== undefined && chosen !== "") {
    return chosen;
  }
  return process.platform === "darwin"
    ? "open"
    : process.platform === "win32"
      ? "explorer"
      : "xdg-open";
}

/**
 * Opens the page in the desktop's browser, if there is one; failing is no
 * error. The opener gets a one-time link, never the token: its command line
 * is visible to every local user (`ps`) while it runs, and the link is dead
 * once the browser has used it (or after two minutes).
 */
export function openDashboard(
  server: Pick<DashboardServer, "oneTimeUrl">,
  logger: Logger,
  opener = browserOpener(),
): void {
  const url = server.oneTimeUrl();
  try {
    const child = spawn(opener, [url], { stdio: "ignore", detached: true });
    child.on("error", () =>
      logger.warn(`--open: could not start ${opener}; open the URL by hand`),
    );
    child.unref();
  } catch {
    logger.warn(`--open: could not start ${opener}; open the URL by hand`);
  }
}

export function dashboardCommand(): Command {
  return new Command("dashboard")
    .description(
      "a live web page of the rebuild: progress with a files/s and ETA chart, failures with their reasons, the fleet's instances, spend against the cap, the run's steps; updated through server-sent events, the same data as JSON under /api/ (snapshot, progress, failures, fleet, spend, steps). Served on 127.0.0.1 on a free port; every request needs the token in the URL it prints once, on this terminal only (--open hands the browser a one-time link instead). Runs until interrupted",
    )
    .option("--run <id>", "the run whose steps are shown (and whose fleet)")
    .option(
      "--fleet <name>",
      "the fleet shown (default: the run's newest, else the newest live one, else the newest)",
    )
    .option(
      "--listen <host:port>",
      "where to listen (default 127.0.0.1 and a free port); another address than loopback exposes it to the network, with a warning",
    )
    .option(
      "--open",
      "open the page in this desktop's browser ($BROWSER, else xdg-open/open) through a one-time link that holds no token (usable once, within 2 minutes): a command line is visible to every local user",
    )
    .action(
      async (
        flags: {
          run?: string;
          fleet?: string;
          listen?: string;
          open?: boolean;
        },
        command: Command,
      ) => {
        const { output, logger, databaseUrl } = await runContext(command);
        const server = await startRebuildDashboard({
          databaseUrl: databaseUrl(),
          run: flags.run,
          fleet: flags.fleet,
          listen: flags.listen,
          logger,
        });
        for (const warning of server.warnings) {
          logger.warn(warning);
        }
        // The one place the token is shown: Output masks `token=…` (rightly,
        // everywhere else), so this line goes to stdout directly. From here
        // on the token is a registered secret, masked in any later output.
        process.stdout.write(
          output.json
            ? `${JSON.stringify({ url: server.tokenUrl, host: server.host, port: server.port })}\n`
            : `dashboard: ${server.tokenUrl}\n`,
        );
        registerSecret(server.token);
        output.note("Ctrl-C to stop");
        if (flags.open === true) {
          openDashboard(server, logger);
        }
        // SIGINT/SIGTERM (cli/main.ts runs the handler): a clean stop.
        await new Promise<void>((resolve) => onInterrupt(resolve));
        await server.close();
        output.note("dashboard stopped");
      },
    );
}
