/**
 * The launch, drain and terminate steps: a fleet for the run's queue (EC2
 * spot instances, or worker processes here), watched until the queue has
 * drained, then ended. A launch records the fleet's name in the run before
 * anything exists, so a resumed run finds it and never launches a second
 * fleet while the first one lives.
 */
import { readdirSync, readFileSync } from "node:fs";

import { launchFleet, terminateFleet } from "../../infra/fleet.js";
import { endMembers, getFleet, recordSpend } from "../../infra/fleet-store.js";
import type { FleetMember, FleetSpec } from "../../infra/provider.js";
import { previewWorkLeft } from "../archive-writer.js";
import { EXIT, FitsfleetError } from "../errors.js";
import { processAlive, sleep } from "../exec.js";
import { formatCount, formatDuration, formatRate } from "../progress.js";
import { rebuildStatus, reconcile } from "../rebuild/ledger.js";
import { withIngestQueue } from "../rebuild/queue.js";
import type { StepContext, StepResult } from "./step-context.js";
import { fleetSpecFor } from "./step-spec.js";
import type { RunEvent } from "./types.js";

export function fleetSpec(ctx: StepContext, name: string): FleetSpec {
  return fleetSpecFor(name, ctx.runId, ctx.settings);
}

/**
 * Worker processes of a local fleet still running on this machine, found
 * by their --name (FLEET-K-ingest-N): a killed coordinator's children live
 * on and finish the queue, and a resumed run counts them as its fleet.
 */
export function localFleetPids(fleet: string): number[] {
  return localFleetWorkers(fleet).map((w) => w.pid);
}

/** The local fleet's worker processes running here: pid and --name. */
export function localFleetWorkers(
  fleet: string,
): { pid: number; name: string }[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const found: { pid: number; name: string }[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) {
      continue;
    }
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const i = argv.indexOf("--name");
      if (
        argv.includes("worker") &&
        i >= 0 &&
        (argv[i + 1] ?? "").startsWith(`${fleet}-`)
      ) {
        found.push({ pid: Number(entry), name: argv[i + 1]! });
      }
    } catch {
      // A process that ended while we looked.
    }
  }
  return found;
}

/**
 * Rows held by a local worker that is no longer running (a coordinator
 * killed with its children, a crash): this machine knows it is gone, so its
 * leases end now instead of at their time, and the rows go back to the
 * queue; a delivery that claims them counts an interruption, as for any
 * lost worker.
 */
async function releaseDeadLocalWorkers(ctx: StepContext, fleet: string) {
  const alive = localFleetWorkers(fleet)
    .filter((w) => processAlive(w.pid))
    .map((w) => w.name);
  const { rowCount } = await ctx.client.query(
    `UPDATE fitsfleet.ingest_ledger SET lease_until = now() - interval '1 second'
      WHERE state = 'active' AND lease_until > now()
        AND starts_with(worker, $1 || '-') AND NOT (worker = ANY($2::text[]))`,
    [fleet, alive],
  );
  if ((rowCount ?? 0) > 0) {
    await withIngestQueue(ctx.redisUrl, ctx.settings.queue, (queue) =>
      reconcile(ctx.client, queue),
    );
  }
  return rowCount ?? 0;
}

function joined(members: FleetMember[], at: string): RunEvent[] {
  return members.map((m) => ({
    type: "instance-joined",
    at,
    instanceId: m.id,
    instanceType: m.instanceType ?? "local",
    hourlyPrice: m.hourlyPrice ?? 0,
  }));
}

async function launchNamed(ctx: StepContext, name: string) {
  await ctx.commit({ fleet: name }, [], async (c) => {
    await c.query("UPDATE fitsfleet.runs SET fleet = $2 WHERE id = $1", [
      ctx.runId,
      name,
    ]);
  });
  ctx.fleet = name;
  ctx.fault("launch:recorded");
  const s = ctx.settings;
  return launchFleet(await ctx.provider(), fleetSpec(ctx, name), {
    databaseUrl: ctx.databaseUrl,
    region: s.ec2?.region,
    budget: s.budget,
    record: { run: ctx.runId },
  });
}

/** The next fleet name of this run: RUN-f1, RUN-f2 after a launch that did not complete. */
function nextFleetName(ctx: StepContext): string {
  const n = Number(ctx.checkpoint.launches ?? 0) + 1;
  return `${ctx.runId}-f${n}`;
}

export async function launchStep(ctx: StepContext): Promise<StepResult> {
  const previous =
    typeof ctx.checkpoint.fleet === "string" ? ctx.checkpoint.fleet : undefined;
  if (previous !== undefined) {
    const record = await getFleet(ctx.client, previous);
    if (record?.state === "running" || record?.state === "ending") {
      // Launched and recorded; the kill came before the step was marked done.
      return {
        status: "done",
        figures: { instances: record.instances, hourlyRate: record.hourlyRate },
      };
    }
    if (record !== undefined && record.state !== "ended") {
      // A launch cut off halfway: end what it made before launching anew.
      await terminateFleet(await ctx.provider(), previous, {
        databaseUrl: ctx.databaseUrl,
        reason: "its launch was interrupted; the resumed run launches another",
      });
      await endLocalWorkers(ctx, previous);
    }
  }
  const name = nextFleetName(ctx);
  await ctx.commit({ launches: Number(ctx.checkpoint.launches ?? 0) + 1 }, []);
  const { launch, fleet } = await launchNamed(ctx, name);
  ctx.fault("launch:launched");
  return {
    status: "done",
    figures: {
      instances: launch.members.length,
      hourlyRate: fleet.hourlyRate,
    },
    events: joined(launch.members, new Date().toISOString()),
  };
}

export async function drainStep(ctx: StepContext): Promise<StepResult> {
  const s = ctx.settings;
  let fleetName = ctx.fleet;
  if (fleetName === null) {
    throw new FitsfleetError(
      "run-no-fleet",
      EXIT.failed,
      `run ${ctx.runId} has no fleet to wait for: its launch step did not record one`,
    );
  }
  const provider = await ctx.provider();
  const stallMs = s.stallMinutes * 60_000;
  let finished = -1;
  let since = Date.now();
  let relaunches = Number(ctx.checkpoint.relaunches ?? 0);
  if (s.provider === "ec2") {
    // A failed run's fleet was ended (lib/run/pipeline.ts, fail): its
    // resume, with work left, needs another one.
    const record = await getFleet(ctx.client, fleetName);
    const status = await rebuildStatus(ctx.client, 1);
    if (
      (record?.state === "ended" || record?.state === "failed") &&
      status.counts.queued + status.counts.active > 0
    ) {
      relaunches++;
      await ctx.commit({ relaunches }, []);
      const { launch } = await launchNamed(ctx, `${ctx.runId}-d${relaunches}`);
      await ctx.commit({}, joined(launch.members, new Date().toISOString()));
      fleetName = ctx.fleet!;
    }
  }
  let ticks = 0;
  const started = Date.now();
  for (;;) {
    const status = await rebuildStatus(ctx.client, 1);
    const c = status.counts;
    const left = c.queued + c.active;
    const previewsLeft =
      s.previewWorkersPerInstance > 0 ? await previewWorkLeft(ctx.client) : 0;
    const done = c.done + c.failed + c.skipped;
    if (done !== finished) {
      finished = done;
      since = Date.now();
    }
    const at = new Date().toISOString();
    await ctx.commit({}, [
      {
        type: "progress",
        at,
        done: c.done,
        failed: c.failed,
        queued: c.queued,
        active: c.active,
      },
    ]);
    ctx.progress({
      message: `drain: ${formatCount(done)} of ${formatCount(status.total)} files (${formatCount(c.failed)} failed), ${formatRate(status.runFilesPerSecond)} files/s, ETA ${formatDuration(status.etaSeconds)}`,
      fields: {
        ...c,
        total: status.total,
        filesPerSecond: status.runFilesPerSecond,
        etaSeconds: status.etaSeconds,
      },
    });
    if (ticks++ === 2) {
      ctx.fault("drain:working");
    }
    if (left === 0 && previewsLeft === 0) {
      return {
        status: "done",
        figures: {
          done: c.done,
          failed: c.failed,
          skipped: c.skipped,
          filesPerSecond: status.runFilesPerSecond,
          seconds: (Date.now() - started) / 1000,
          relaunches,
        },
      };
    }
    if (s.provider === "local") {
      // Local workers are free and die with their machine: when none is
      // left (a coordinator killed with them, a crash), start them again.
      const released = await releaseDeadLocalWorkers(ctx, fleetName);
      if (released > 0) {
        ctx.logger.info("took back the rows of local workers that are gone", {
          run: ctx.runId,
          rows: released,
        });
      }
      const members = await provider.members(fleetName);
      const alive =
        members.some((m) => m.state !== "ended") ||
        localFleetPids(fleetName).some(processAlive);
      if (!alive) {
        relaunches++;
        ctx.logger.info("no local worker is running: starting them again", {
          run: ctx.runId,
          fleet: fleetName,
        });
        await ctx.commit({ relaunches }, []);
        await provider.launch(fleetSpec(ctx, fleetName));
      }
    } else {
      const members = await provider.members(fleetName);
      const ended = members.filter((m) => m.state === "ended").map((m) => m.id);
      if (ended.length > 0) {
        await endMembers(ctx.client, fleetName, ended);
      }
      // Spend as of now, from the recorded prices: the budget check reads it.
      await recordSpend(ctx.client, fleetName);
      const fleet = await getFleet(ctx.client, fleetName);
      const gone =
        fleet?.state === "ended" ||
        fleet?.state === "failed" ||
        (members.length > 0 && members.every((m) => m.state === "ended"));
      const why = gone
        ? `every instance of fleet ${fleetName} has ended`
        : fleet !== undefined &&
            fleet.budget !== null &&
            fleet.spend >= fleet.budget
          ? `the budget is spent ($${fleet.spend.toFixed(2)} of $${fleet.budget.toFixed(2)})`
          : fleet !== undefined && new Date() >= fleet.deadline
            ? `the time cap passed (${fleet.deadline.toISOString()})`
            : undefined;
      if (why !== undefined) {
        throw new FitsfleetError(
          "run-drain",
          EXIT.failed,
          `the queue did not drain: ${why}, with ${left} file(s) left`,
          {
            suggestion: `see \`fitsfleet rebuild status\`; \`fitsfleet rebuild run --resume ${ctx.runId}\` continues`,
          },
        );
      }
    }
    if (left > 0 && Date.now() - since >= stallMs) {
      throw new FitsfleetError(
        "run-stalled",
        EXIT.failed,
        `the queue did not drain: no file has finished for ${Math.round((Date.now() - since) / 1000)} s, with ${left} file(s) left`,
        {
          suggestion: `see \`fitsfleet rebuild status\` and the workers' logs; \`fitsfleet rebuild run --resume ${ctx.runId}\` continues`,
        },
      );
    }
    await sleep(s.intervalMs, ctx.signal).catch(() => undefined);
    if (ctx.signal?.aborted === true) {
      throw new FitsfleetError("interrupted", EXIT.interrupted, "interrupted");
    }
  }
}

/** Stops a local fleet's workers that outlived their coordinator: SIGTERM, then SIGKILL after 12 s. */
async function endLocalWorkers(ctx: StepContext, name: string): Promise<void> {
  if (ctx.settings.provider !== "local") {
    return;
  }
  for (let i = 0; i < 100; i++) {
    const pids = localFleetPids(name).filter(processAlive);
    if (pids.length === 0) {
      return;
    }
    for (const pid of pids) {
      try {
        process.kill(pid, i < 60 ? "SIGTERM" : "SIGKILL");
      } catch {
        // Ended meanwhile.
      }
    }
    await sleep(200);
  }
}

/** Ends the run's fleet (and, locally, a killed coordinator's workers still running). */
export async function endRunFleet(
  ctx: StepContext,
  reason: string,
): Promise<{ instances: number; spend: number; events: RunEvent[] }> {
  const name = ctx.fleet;
  if (name === null) {
    return { instances: 0, spend: 0, events: [] };
  }
  const report = await terminateFleet(await ctx.provider(), name, {
    databaseUrl: ctx.databaseUrl,
    reason,
  });
  await endLocalWorkers(ctx, name);
  const fleet = await getFleet(ctx.client, name);
  // EC2 instances power off by themselves once the queue has drained, so
  // the terminate call may find none left: every member the fleet recorded
  // has left all the same, and the run's log says so.
  const { rows } = await ctx.client.query<{ instance_id: string }>(
    "SELECT instance_id FROM fitsfleet.fleet_instances WHERE fleet = $1",
    [name],
  );
  const left = [
    ...new Set([...report.instances, ...rows.map((r) => r.instance_id)]),
  ];
  const at = new Date().toISOString();
  return {
    instances: left.length,
    spend: fleet?.spend ?? 0,
    events: [
      ...left.map((instanceId): RunEvent => ({
        type: "instance-left",
        at,
        instanceId,
      })),
      { type: "spend", at, dollars: fleet?.spend ?? 0 },
    ],
  };
}

export async function terminateStep(ctx: StepContext): Promise<StepResult> {
  const ended = await endRunFleet(ctx, "the run's queue has drained");
  return {
    status: "done",
    figures: { instances: ended.instances, spend: ended.spend },
    events: ended.events,
  };
}
