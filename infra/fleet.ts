/**
 * A fleet's life, whatever provider runs it: launch (recorded before
 * anything exists, under the launcher's lock), the guard that ends it (the
 * queue drained, the budget or the deadline reached, progress stalled, or
 * every instance gone), and its status. The provider is behind
 * `FleetProvider`; nothing here knows whether it is EC2.
 */
import { previewWorkLeft } from "../lib/archive-writer.js";
import { type PgClient, withClient } from "../lib/db/connect.js";
import { FitsfleetError } from "../lib/errors.js";
import { sleep } from "../lib/exec.js";
import type { Logger } from "../lib/logger.js";
import { type RebuildStatus, rebuildStatus } from "../lib/rebuild/ledger.js";
import {
  endMembers,
  type FleetRecord,
  getFleet,
  holdLaunchLock,
  recordFleet,
  recordMembers,
  recordSpend,
  releaseLaunchLock,
  setFleetResources,
  setFleetState,
} from "./fleet-store.js";
import type {
  FleetLaunch,
  FleetMember,
  FleetProvider,
  FleetSpec,
  TerminateReport,
} from "./provider.js";

const APPLICATION = "fitsfleet fleet";

export interface LaunchFleetOptions {
  databaseUrl: string;
  region?: string;
  /** USD for the whole fleet; the guard ends it there. */
  budget?: number;
  /** Settings recorded with the fleet (never secrets). */
  record?: Record<string, unknown>;
}

/**
 * Records the fleet, then launches it while holding the launch lock; a
 * launch that throws leaves the fleet `failed` (the provider has ended what
 * it made).
 */
export async function launchFleet(
  provider: FleetProvider,
  spec: FleetSpec,
  options: LaunchFleetOptions,
): Promise<{ launch: FleetLaunch; fleet: FleetRecord }> {
  return withClient(
    options.databaseUrl,
    async (client) => {
      await recordFleet(client, {
        name: spec.name,
        run: spec.run,
        provider: provider.kind,
        region: options.region,
        spec: {
          ...spec,
          deadline: spec.deadline.toISOString(),
          ...options.record,
        },
        maxHourlyCost: spec.maxHourlyCost,
        budget: options.budget,
        deadline: spec.deadline,
      });
      await holdLaunchLock(client, spec.name);
      try {
        const launch = await provider.launch(spec, {
          onResource: (r) =>
            setFleetResources(client, spec.name, {
              launchTemplateId: r.launchTemplateId,
              ec2FleetIds: r.fleetId === undefined ? undefined : [r.fleetId],
            }),
        });
        await recordMembers(
          client,
          spec.name,
          launch.members.map(memberRecord),
        );
        await setFleetState(client, spec.name, "running");
        const fleet = await getFleet(client, spec.name);
        return { launch, fleet: fleet! };
      } catch (error) {
        await setFleetState(
          client,
          spec.name,
          "failed",
          `launch failed: ${error instanceof Error ? error.message : String(error)}`,
        ).catch(() => undefined);
        throw error;
      } finally {
        await releaseLaunchLock(client, spec.name).catch(() => undefined);
      }
    },
    { applicationName: APPLICATION },
  );
}

function memberRecord(m: FleetMember) {
  return {
    instanceId: m.id,
    instanceType: m.instanceType,
    zone: m.zone,
    lifecycle: m.lifecycle,
    hourlyPrice: m.hourlyPrice ?? 0,
    launchedAt: m.launchedAt,
    endedAt: m.state === "ended" ? new Date() : null,
  };
}

/** Ends a fleet and records it; safe to repeat. */
export async function terminateFleet(
  provider: FleetProvider,
  name: string,
  options: { databaseUrl: string; reason: string },
): Promise<TerminateReport> {
  return withClient(
    options.databaseUrl,
    async (client) => {
      await setFleetState(client, name, "ending", options.reason);
      const report = await provider.terminate(name);
      await endMembers(client, name);
      await recordSpend(client, name);
      await setFleetState(client, name, "ended", options.reason);
      return report;
    },
    { applicationName: APPLICATION },
  );
}

export type GuardReason =
  "drained" | "budget" | "deadline" | "stalled" | "instances-gone";

export interface GuardTick {
  fleet: FleetRecord;
  members: FleetMember[];
  status: RebuildStatus;
  previewsLeft: number;
  /** Seconds since the number of finished files last changed. */
  idleSeconds: number;
}

export interface GuardOptions {
  databaseUrl: string;
  /** Between checks (default 10 s). */
  intervalMs?: number;
  /** Progress stalled: no file finished for this long while work remains (default 15 min). */
  stallMs?: number;
  /**
   * Once the queue has drained, how long the members may take to end by
   * themselves (workers finishing, instances powering off) before they
   * are terminated (default 60 s).
   */
  drainGraceMs?: number;
  signal?: AbortSignal;
  logger?: Logger;
  onTick?: (tick: GuardTick) => void;
}

export interface GuardOutcome {
  reason: GuardReason;
  message: string;
  report: TerminateReport;
  fleet: FleetRecord;
  status: RebuildStatus;
}

/** Why the fleet should end now, if it should. */
export function guardDecision(
  tick: GuardTick,
  stallMs: number,
  now = new Date(),
): { reason: GuardReason; message: string } | undefined {
  const { fleet, status } = tick;
  const left = status.counts.queued + status.counts.active;
  // Preview work counts only for a fleet that runs preview workers.
  const previewWorkers = Number(fleet.spec.previewWorkers ?? 0);
  if (left === 0 && (tick.previewsLeft === 0 || previewWorkers === 0)) {
    return {
      reason: "drained",
      message: `the queue has drained: ${status.counts.done} done, ${status.counts.failed} failed, ${status.counts.skipped} skipped`,
    };
  }
  if (fleet.budget !== null && fleet.spend >= fleet.budget) {
    return {
      reason: "budget",
      message: `the budget is spent: $${fleet.spend.toFixed(4)} of $${fleet.budget.toFixed(4)}, with ${left} file(s) left`,
    };
  }
  if (now >= fleet.deadline) {
    return {
      reason: "deadline",
      message: `the time cap passed (${fleet.deadline.toISOString()}), with ${left} file(s) left`,
    };
  }
  if (
    tick.members.length > 0 &&
    tick.members.every((m) => m.state === "ended")
  ) {
    return {
      reason: "instances-gone",
      message: `every instance has ended, with ${left} file(s) left`,
    };
  }
  if (left > 0 && tick.idleSeconds * 1000 >= stallMs) {
    return {
      reason: "stalled",
      message: `no file has finished for ${Math.round(tick.idleSeconds)} s, with ${left} file(s) left`,
    };
  }
  return undefined;
}

async function observe(
  client: PgClient,
  provider: FleetProvider,
  name: string,
): Promise<Omit<GuardTick, "idleSeconds">> {
  const members = await provider.members(name);
  const ended = members.filter((m) => m.state === "ended").map((m) => m.id);
  if (ended.length > 0) {
    await endMembers(client, name, ended);
  }
  await recordSpend(client, name);
  // One connection runs one statement at a time.
  const fleet = await getFleet(client, name);
  const status = await rebuildStatus(client, 1);
  const previewsLeft = await previewWorkLeft(client);
  if (fleet === undefined) {
    throw new FitsfleetError(
      "unknown-fleet",
      3,
      `no fleet named ${name} in this database`,
      { suggestion: "see `fitsfleet fleet status` for the fleets it knows" },
    );
  }
  return { fleet, members, status, previewsLeft };
}

/**
 * Watches until the fleet should end, then ends it. Stopping the guard
 * (`signal`) leaves the fleet running, and says so.
 */
export async function guardFleet(
  provider: FleetProvider,
  name: string,
  options: GuardOptions,
): Promise<GuardOutcome | undefined> {
  const interval = options.intervalMs ?? 10_000;
  const stallMs = options.stallMs ?? 15 * 60_000;
  return withClient(
    options.databaseUrl,
    async (client) => {
      const aborted = () => options.signal?.aborted === true;
      const drainGraceMs = options.drainGraceMs ?? 60_000;
      let drainedAt: number | undefined;
      let finished = -1;
      let since = Date.now();
      for (;;) {
        const seen = await observe(client, provider, name);
        const done =
          seen.status.counts.done +
          seen.status.counts.failed +
          seen.status.counts.skipped;
        if (done !== finished) {
          finished = done;
          since = Date.now();
        }
        const tick = { ...seen, idleSeconds: (Date.now() - since) / 1000 };
        options.onTick?.(tick);
        if (seen.fleet.state === "ended" || seen.fleet.state === "failed") {
          options.logger?.info("the fleet has already ended", {
            fleet: name,
            reason: seen.fleet.endReason,
          });
        }
        const decision =
          seen.fleet.state === "ended" || seen.fleet.state === "failed"
            ? {
                reason: "instances-gone" as const,
                message: `the fleet had already ended (${seen.fleet.endReason ?? "no reason recorded"})`,
              }
            : guardDecision(tick, stallMs);
        const waitingForMembers =
          decision?.reason === "drained" &&
          tick.members.some((m) => m.state !== "ended") &&
          Date.now() - (drainedAt ??= Date.now()) < drainGraceMs;
        if (decision !== undefined && !waitingForMembers) {
          options.logger?.info("ending the fleet", {
            fleet: name,
            reason: decision.reason,
            detail: decision.message,
          });
          await setFleetState(client, name, "ending", decision.message);
          const report = await provider.terminate(name);
          await endMembers(client, name);
          await recordSpend(client, name);
          await setFleetState(client, name, "ended", decision.message);
          const fleet = await getFleet(client, name);
          const status = await rebuildStatus(client, 1);
          return { ...decision, report, fleet: fleet!, status };
        }
        if (aborted()) {
          return undefined;
        }
        await sleep(interval, options.signal).catch(() => undefined);
        if (aborted()) {
          return undefined;
        }
      }
    },
    { applicationName: APPLICATION },
  );
}

/** What `fleet status` shows of one fleet: its record, members and the workers the ledger has seen on each. */
export interface FleetStatus {
  fleet: FleetRecord;
  members: (FleetMember & {
    ageSeconds: number;
    workersSeen: number;
    activeFiles: number;
    filesPerSecond: number;
  })[];
  status: RebuildStatus;
}

export async function fleetStatus(
  provider: FleetProvider,
  name: string,
  databaseUrl: string,
  windowMinutes = 5,
): Promise<FleetStatus> {
  return withClient(
    databaseUrl,
    async (client) => {
      const seen = await observe(client, provider, name);
      const status = await rebuildStatus(client, windowMinutes);
      const now = Date.now();
      return {
        fleet: seen.fleet,
        status,
        members: seen.members.map((m) => {
          // Workers on an instance are named after it (ami/boot.ts).
          const mine = status.workers.filter((w) =>
            w.worker.startsWith(`${m.id}-`),
          );
          return {
            ...m,
            ageSeconds: (now - m.launchedAt.getTime()) / 1000,
            workersSeen: mine.length,
            activeFiles: mine.reduce((n, w) => n + w.active, 0),
            filesPerSecond:
              mine.reduce((n, w) => n + w.recent, 0) / (windowMinutes * 60),
          };
        }),
      };
    },
    { applicationName: APPLICATION },
  );
}
