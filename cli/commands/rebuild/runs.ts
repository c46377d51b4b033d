/** `rebuild runs` and `rebuild runs show RUN`: what `rebuild run` recorded. */
import { Command } from "commander";

import { formatCount } from "../../../lib/progress.js";
import type { RunReport } from "../../../lib/run/pipeline.js";
import type { RunSettings } from "../../../lib/run/settings.js";
import type { RunRecord } from "../../../lib/run/store.js";
import { table } from "../../output.js";
import { runContext } from "../../run.js";

function figures(f: Record<string, number>): string {
  return Object.entries(f)
    .map(
      ([k, v]) => `${k} ${Number.isInteger(v) ? formatCount(v) : v.toFixed(2)}`,
    )
    .join(", ");
}

export function describeRun(run: RunRecord<RunSettings>): string {
  return table(
    ["step", "status", "attempts", "seconds", "figures / reason"],
    run.steps.map((s) => [
      s.step,
      s.status,
      String(s.attempts),
      s.seconds === null ? "" : s.seconds.toFixed(1),
      s.reason ?? figures(s.figures),
    ]),
  );
}

export function describeRunReport(r: RunReport): string {
  const run = r.run;
  return [
    `run ${run.id} (${run.provider}, storage ${run.storage}, queue ${run.queue}): ${run.state}${run.reason === null ? "" : ` — ${run.reason}`}`,
    `started ${run.createdAt}${run.endedAt === null ? "" : `, ended ${run.endedAt}`}${run.fleet === null ? "" : `; fleet ${run.fleet}`}; spend $${r.spend.toFixed(2)}`,
    describeRun(run),
    `ledger: ${
      Object.entries(r.ledger)
        .map(([k, v]) => `${k} ${formatCount(v)}`)
        .join(", ") || "empty"
    }`,
    describeCoordinator(r),
    `rows: ${Object.entries(r.rows)
      .map(([t, n]) => `${t} ${formatCount(n)}`)
      .join(", ")}`,
    ...(r.failures.length === 0
      ? []
      : [
          "failures (`fitsfleet rebuild failures` lists them all):",
          ...r.failures.map((f) => `  ${f.error.split("\n")[0]}`),
        ]),
  ].join("\n");
}

function describeCoordinator(r: RunReport): string {
  const lease = r.coordinator?.lease;
  const events = `${formatCount(r.coordinator?.events ?? 0)} events logged`;
  if (lease === undefined) {
    return `coordinator: none has held this run; ${events}`;
  }
  // A released lease expires at -infinity, which is no Date.
  const until =
    lease.expiresAt instanceof Date && !Number.isNaN(lease.expiresAt.getTime())
      ? lease.expiresAt.toISOString()
      : undefined;
  const state =
    until === undefined
      ? "lease released"
      : lease.expired
        ? `lease expired ${until}`
        : lease.holderGone
          ? `lease until ${until}, but its connection is gone`
          : `lease until ${until}`;
  return `coordinator: ${lease.holder}, epoch ${lease.epoch}, ${state}; ${events}`;
}

function describeRuns(runs: RunRecord<RunSettings>[]): string {
  if (runs.length === 0) {
    return "no runs in this database (start one with `fitsfleet rebuild run`)";
  }
  return table(
    ["run", "state", "provider", "storage", "created", "steps done", "at"],
    runs.map((r) => {
      const at =
        r.steps.find((s) => s.status === "running" || s.status === "failed") ??
        r.steps.filter((s) => s.status === "done").at(-1);
      return [
        r.id,
        r.state,
        r.provider,
        r.storage,
        r.createdAt,
        `${r.steps.filter((s) => s.status === "done" || s.status === "skipped").length}/${r.steps.length}`,
        at === undefined ? "" : `${at.step} (${at.status})`,
      ];
    }),
  );
}

export function runsCommand(): Command {
  const runs = new Command("runs")
    .description(
      "the runs `rebuild run` recorded in this database, newest first; `runs show RUN` for one run's steps, timings, figures and spend",
    )
    .option("--limit <n>", "at most this many", "50")
    .action(async (flags: { limit: string }, command: Command) => {
      const { output, databaseUrl } = await runContext(command);
      const [{ withClient }, store] = await Promise.all([
        import("../../../lib/db/connect.js"),
        import("../../../lib/run/store.js"),
      ]);
      const list = await withClient(databaseUrl(), async (c) =>
        (await store.hasRunTables(c))
          ? store.listRuns<RunSettings>(
              c,
              Math.max(1, Number(flags.limit) || 50),
            )
          : [],
      );
      output.result(list, describeRuns);
    });
  runs.addCommand(
    new Command("show")
      .description(
        "one run: its steps with their state, attempts, timings and figures; its coordinator (holder, lease epoch and expiry) and logged events; ledger, rows, failures and spend",
      )
      .argument("<run>", "the run's id (see `fitsfleet rebuild runs`)")
      .action(async (id: string, _flags: object, command: Command) => {
        const { output, databaseUrl } = await runContext(command);
        const [{ withClient }, { runReport }] = await Promise.all([
          import("../../../lib/db/connect.js"),
          import("../../../lib/run/pipeline.js"),
        ]);
        const report = await withClient(databaseUrl(), (c) => runReport(c, id));
        const { details: _details, seconds: _seconds, ...shown } = report;
        output.result(shown, (r) =>
          describeRunReport({ ...r, details: {}, seconds: 0 }),
        );
      }),
  );
  return runs;
}
