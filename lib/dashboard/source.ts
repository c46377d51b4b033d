/**
 * What the rebuild dashboard shows, and where it comes from: the ingest
 * ledger (counts, the history of finishes, the failures with their reasons),
 * the fleet store (the fleet's instances and what they cost), and a run's
 * state as the coordinator folds it (`RunState`, lib/run/types.ts), read by
 * an injectable loader.
 *
 * The server polls a `DashboardSource` every second or two, so a tick must
 * stay cheap however large the ledger: one statement (the ledger's counts by
 * state, with the latest finish of each, and a marker of the fleet's record)
 * when nothing changed; when files finished, a second one that reads only
 * the new finishes through the `finished_at` index. The failures and the
 * fleet's instances are read again only when their marker moved, and the
 * run's state is the loader's one read.
 */
import type { AnyClient } from "../db/connect.js";
import {
  type Failure,
  LEDGER_STATES,
  type LedgerState,
  listFailures,
} from "../rebuild/ledger.js";
import {
  RUN_STEPS,
  type RunState,
  type RunStep,
  type StepStatus,
} from "../run/types.js";

// --- what the page shows ------------------------------------------------------

/** One point of the rate and ETA chart. */
export interface ProgressPoint {
  /** The end of the interval, in seconds since the epoch. */
  t: number;
  /** Files finished (done, failed, skipped) by then. */
  finished: number;
  /** Files finished per second over the minute (or the few intervals) before `t`. */
  rate: number;
  /** Seconds left at that rate for what was left at `t`; null when nothing was finishing. */
  etaSeconds: number | null;
}

export interface DashboardProgress {
  counts: Record<LedgerState, number>;
  total: number;
  /** Files finished per second over the last `windowMinutes` (of work, once none remains). */
  filesPerSecond: number;
  windowMinutes: number;
  /** Seconds until queued and active files are done at that rate; null when unknown. */
  etaSeconds: number | null;
  /** The rate and ETA over the run, at most a few hundred points. */
  history: ProgressPoint[];
}

export interface DashboardFailures {
  total: number;
  /** The first `failures.length` of them, as `rebuild failures` lists them. */
  failures: Failure[];
}

export interface DashboardInstance {
  id: string;
  /** The instance type; null for local worker groups. */
  type: string | null;
  state: "running" | "ended";
  zone: string | null;
  lifecycle: string | null;
  /** USD per hour, as launched. */
  hourlyPrice: number;
  launchedAt: string;
  endedAt: string | null;
  /** From launch to now, or to its end. */
  ageSeconds: number;
}

export interface DashboardFleet {
  name: string;
  run: string;
  provider: "local" | "ec2";
  region: string | null;
  state: string;
  launchedAt: string;
  deadline: string;
  endedAt: string | null;
  endReason: string | null;
  instances: DashboardInstance[];
}

export interface DashboardSpend {
  /** Where `dollars` comes from: the fleet's recorded prices, the run's spend events, or neither. */
  source: "fleet" | "run" | "none";
  /** USD so far. */
  dollars: number;
  /** The cap: the fleet's budget (USD for the whole fleet); null when none was set. */
  budget: number | null;
  /** USD per hour of the instances still running. */
  hourlyRate: number;
  /** The fleet's --max-hourly-cost; null when none was set. */
  maxHourlyCost: number | null;
  /** The run's own figure (RunState.spendDollars), when a run is shown. */
  runDollars: number | null;
}

export interface DashboardStep {
  step: RunStep;
  status: StepStatus;
  startedAt: string | null;
  endedAt: string | null;
  /** Ended minus started, or now minus started while it runs; to the millisecond. */
  seconds: number | null;
  figures: Record<string, number>;
  reason: string | null;
}

export interface DashboardSteps {
  /** The run asked for (--run); null when none was. */
  runId: string | null;
  /** "no run" when there is none to show, else the run's status. */
  status: RunState["status"] | "no run";
  provider: string | null;
  startedAt: string | null;
  endedAt: string | null;
  steps: DashboardStep[];
}

export interface DashboardSnapshot {
  generatedAt: string;
  progress: DashboardProgress;
  failures: DashboardFailures;
  /** The fleet shown: --fleet, else the run's newest, else the newest live one, else the newest; null when none is recorded. */
  fleet: DashboardFleet | null;
  spend: DashboardSpend;
  steps: DashboardSteps;
  /** The last poll's error (the database unreachable, …); null when it succeeded. */
  error: string | null;
}

/** The parts of a snapshot, each pushed on its own when it changes. */
export const DASHBOARD_SECTIONS = [
  "progress",
  "failures",
  "fleet",
  "spend",
  "steps",
  "error",
] as const;
export type DashboardSection = (typeof DASHBOARD_SECTIONS)[number];

// --- where the run's steps come from -------------------------------------------

/**
 * Reads a run's state (the coordinator's snapshot plus later events).
 * Undefined when there is no such run: the steps panel then says "no run".
 */
export type RunStateLoader = (
  client: AnyClient,
  runId: string,
) => Promise<RunState | undefined>;

/** The default until `rebuild run` records runs: no run is ever found. */
export const noRunState: RunStateLoader = () => Promise.resolve(undefined);

export interface DashboardSourceOptions {
  /** The run whose steps are shown (and whose fleet, unless `fleet` is given). */
  runId?: string;
  /** The fleet shown; default: the run's newest, else the newest live, else the newest. */
  fleet?: string;
  loadRunState?: RunStateLoader;
  /** Minutes the headline rate is measured over (default 5). */
  windowMinutes?: number;
  /** Failures listed at most (default 100). */
  failuresLimit?: number;
  /** The clock, in ms since the epoch (tests). */
  now?: () => number;
}

// --- the ledger's history --------------------------------------------------------

/** The history is kept in buckets of this many seconds. */
const BUCKET_SECONDS = 10;
/** The chart gets at most about this many points, whatever the run's length. */
const MAX_POINTS = 300;
const FINAL_STATES = ["done", "failed", "skipped"] as const;
/** How far back a late commit's finishes are looked for before the whole history is read again. */
const LATE_COMMIT_SECONDS = 600;

interface TickRow {
  ledger: Record<string, { n: number; last: string | null }> | null;
  fleet: FleetMarker | null;
}

interface FleetMarker {
  name: string;
  state: string;
  end_reason: string | null;
  instances: number;
  ended: number;
  last_change: string | null;
  budget: string | null;
  max_hourly_cost: string | null;
}

// One statement a tick: the ledger's counts by state (with the latest finish
// in each, which also moves when a file is queued again and finishes anew),
// and the marker of the fleet shown, chosen afresh each time so that a fleet
// launched after the dashboard started is picked up.
const TICK_SQL = `
  WITH shown AS (
    SELECT name FROM fitsfleet.fleets
     WHERE ($1::text IS NULL OR name = $1) AND ($2::text IS NULL OR run = $2)
     ORDER BY (state IN ('launching', 'running', 'ending')) DESC, launched_at DESC
     LIMIT 1)
  SELECT
    (SELECT json_object_agg(state, json_build_object('n', n, 'last', last))
       FROM (SELECT state, count(*) AS n, max(finished_at) AS last
               FROM fitsfleet.ingest_ledger GROUP BY state) AS s) AS ledger,
    (SELECT json_build_object(
              'name', f.name, 'state', f.state, 'end_reason', f.end_reason,
              'budget', f.budget::text, 'max_hourly_cost', f.max_hourly_cost::text,
              'instances', (SELECT count(*) FROM fitsfleet.fleet_instances i WHERE i.fleet = f.name),
              'ended', (SELECT count(*) FROM fitsfleet.fleet_instances i
                         WHERE i.fleet = f.name AND i.ended_at IS NOT NULL),
              'last_change', (SELECT greatest(max(launched_at), max(ended_at))
                                FROM fitsfleet.fleet_instances i WHERE i.fleet = f.name))
       FROM fitsfleet.fleets f JOIN shown USING (name)) AS fleet`;

// Finishes by bucket from a time on (all of them the first time): the
// finished_at index finds the new ones without reading the rest.
const HISTORY_SQL = `
  SELECT (floor(extract(epoch FROM finished_at) / $2) * $2)::float8 AS bucket,
         count(*)::int AS n,
         extract(epoch FROM min(coalesce(started_at, finished_at)))::float8 AS first_start
    FROM fitsfleet.ingest_ledger
   WHERE finished_at IS NOT NULL AND finished_at >= to_timestamp($1)
     AND state IN ('done', 'failed', 'skipped')
   GROUP BY 1`;

const FLEET_SQL = `
  SELECT f.name, f.run, f.provider, f.region, f.state, f.launched_at, f.deadline,
         f.ended_at, f.end_reason,
         coalesce(json_agg(json_build_object(
           'id', i.instance_id, 'type', i.instance_type, 'zone', i.zone,
           'lifecycle', i.lifecycle, 'hourly_price', i.hourly_price::float8,
           'launched_at', i.launched_at, 'ended_at', i.ended_at)
           ORDER BY i.launched_at, i.instance_id) FILTER (WHERE i.instance_id IS NOT NULL), '[]') AS instances
    FROM fitsfleet.fleets f
    LEFT JOIN fitsfleet.fleet_instances i ON i.fleet = f.name
   WHERE f.name = $1
   GROUP BY f.name`;

interface FleetRow {
  name: string;
  run: string;
  provider: "local" | "ec2";
  region: string | null;
  state: string;
  launched_at: Date;
  deadline: Date;
  ended_at: Date | null;
  end_reason: string | null;
  instances: {
    id: string;
    type: string | null;
    zone: string | null;
    lifecycle: string | null;
    hourly_price: number;
    launched_at: string;
    ended_at: string | null;
  }[];
}

/**
 * A section as compared between polls: ages and running durations move
 * every second by themselves (the page counts them on), so they alone are
 * no change worth a push.
 */
function sameness(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) =>
    key === "ageSeconds" || key === "seconds" ? undefined : v,
  );
}

function emptyCounts(): Record<LedgerState, number> {
  return Object.fromEntries(LEDGER_STATES.map((s) => [s, 0])) as Record<
    LedgerState,
    number
  >;
}

/**
 * The dashboard's view of the database, kept between polls so that each
 * poll reads only what moved. `poll()` returns the sections that changed
 * since the last one.
 */
export class DashboardSource {
  private readonly options: Required<
    Omit<DashboardSourceOptions, "runId" | "fleet">
  > & { runId: string | null; fleet: string | null };
  private counts = emptyCounts();
  private lastFinish = new Map<string, string | null>();
  /** Finishes by bucket start (seconds since the epoch). */
  private buckets = new Map<number, number>();
  /** The earliest start of a finished file: where the chart begins. */
  private firstStart: number | null = null;
  private historyLoaded = false;
  private fleetMarker = "";
  private fleetRow: FleetRow | null = null;
  private failuresMarker = "";
  private current: DashboardSnapshot;
  private progressAt = 0;

  constructor(options: DashboardSourceOptions = {}) {
    this.options = {
      runId: options.runId ?? null,
      fleet: options.fleet ?? null,
      loadRunState: options.loadRunState ?? noRunState,
      windowMinutes: options.windowMinutes ?? 5,
      failuresLimit: options.failuresLimit ?? 100,
      now: options.now ?? Date.now,
    };
    this.current = {
      generatedAt: new Date(this.options.now()).toISOString(),
      progress: this.progress(),
      failures: { total: 0, failures: [] },
      fleet: null,
      spend: this.spend(null, undefined),
      steps: this.steps(undefined),
      error: null,
    };
  }

  /** The last poll's result. */
  snapshot(): DashboardSnapshot {
    return this.current;
  }

  /**
   * Reads what changed since the last poll and returns the sections that
   * differ. A failure (the database gone) is kept in `error`; the other
   * sections keep their last values.
   */
  async poll(client: AnyClient): Promise<Set<DashboardSection>> {
    try {
      return this.advance(await this.read(client));
    } catch (error) {
      return this.fail(error);
    }
  }

  /** Records a poll that could not run (no connection): the figures stay, the error shows. */
  fail(error: unknown): Set<DashboardSection> {
    return this.advance({
      ...this.current,
      error: error instanceof Error ? error.message : String(error),
    });
  }

  private advance(next: DashboardSnapshot): Set<DashboardSection> {
    const before = this.current;
    const changed = new Set<DashboardSection>();
    for (const section of DASHBOARD_SECTIONS) {
      if (sameness(before[section]) !== sameness(next[section])) {
        changed.add(section);
      }
    }
    this.current = next;
    return changed;
  }

  private async read(client: AnyClient): Promise<DashboardSnapshot> {
    const now = this.options.now();
    const fleetName = this.options.fleet;
    const { rows } = await client.query<TickRow>(TICK_SQL, [
      fleetName,
      fleetName === null ? this.options.runId : null,
    ]);
    const tick = rows[0] ?? { ledger: null, fleet: null };
    const counts = emptyCounts();
    const lastFinish = new Map<string, string | null>();
    for (const [state, v] of Object.entries(tick.ledger ?? {})) {
      if ((LEDGER_STATES as readonly string[]).includes(state)) {
        counts[state as LedgerState] = Number(v.n);
      }
      lastFinish.set(state, v.last);
    }
    const finishedNow = FINAL_STATES.reduce((n, s) => n + counts[s], 0);
    const finishedBefore = FINAL_STATES.reduce((n, s) => n + this.counts[s], 0);
    const finishesMoved = FINAL_STATES.some(
      (s) =>
        (lastFinish.get(s) ?? null) !== (this.lastFinish.get(s) ?? null) ||
        counts[s] !== this.counts[s],
    );
    if (!this.historyLoaded || finishedNow < finishedBefore) {
      // The first poll, or the ledger emptied or requeued: read it all again.
      await this.loadHistory(client, 0, true);
      this.historyLoaded = true;
    } else if (finishesMoved) {
      const latest = this.latestBucket();
      await this.loadHistory(client, latest, false);
      // A worker's finished_at is its transaction's start: a long one
      // commits finishes older than what was read before, which a read from
      // the latest bucket on never sees (the high-water-mark hazard,
      // RELIABILITY.md section 3). The counts tell: fewer finishes in the
      // history than in the ledger. Then the last ten minutes are read
      // again, and if that is not enough, everything.
      if (this.historyTotal() < finishedNow) {
        await this.loadHistory(client, latest - LATE_COMMIT_SECONDS, false);
        if (this.historyTotal() < finishedNow) {
          await this.loadHistory(client, 0, true);
        }
      }
    }
    this.counts = counts;
    this.lastFinish = lastFinish;

    let progress = this.current.progress;
    const remaining = counts.queued + counts.active;
    // While work remains, time alone moves the rate and ETA (a stall shows
    // as a falling rate), so they are recomputed every ten seconds too.
    if (
      finishesMoved ||
      LEDGER_STATES.some((s) => counts[s] !== progress.counts[s]) ||
      (remaining > 0 && now - this.progressAt >= 10_000)
    ) {
      progress = this.progress();
      this.progressAt = now;
    }

    let failures = this.current.failures;
    const failuresMarker = `${counts.failed}|${lastFinish.get("failed") ?? ""}`;
    if (failuresMarker !== this.failuresMarker) {
      failures =
        counts.failed === 0
          ? { total: 0, failures: [] }
          : await listFailures(client, this.options.failuresLimit);
      this.failuresMarker = failuresMarker;
    }

    const marker = tick.fleet === null ? "" : JSON.stringify(tick.fleet);
    if (marker !== this.fleetMarker) {
      this.fleetRow =
        tick.fleet === null
          ? null
          : ((await client.query<FleetRow>(FLEET_SQL, [tick.fleet.name]))
              .rows[0] ?? null);
      this.fleetMarker = marker;
    }
    const fleet = this.fleet(now);

    const run =
      this.options.runId === null
        ? undefined
        : await this.options.loadRunState(client, this.options.runId);

    return {
      generatedAt: new Date(now).toISOString(),
      progress,
      failures,
      fleet,
      spend: this.spend(fleet === null ? null : (tick.fleet ?? null), run, now),
      steps: this.steps(run, now),
      error: null,
    };
  }

  private latestBucket(): number {
    let latest = 0;
    for (const k of this.buckets.keys()) {
      latest = Math.max(latest, k);
    }
    return latest;
  }

  private historyTotal(): number {
    let n = 0;
    for (const v of this.buckets.values()) {
      n += v;
    }
    return n;
  }

  private async loadHistory(
    client: AnyClient,
    from: number,
    all: boolean,
  ): Promise<void> {
    const { rows } = await client.query<{
      bucket: number;
      n: number;
      first_start: number | null;
    }>(HISTORY_SQL, [from, BUCKET_SECONDS]);
    if (all) {
      this.buckets.clear();
      this.firstStart = null;
    } else {
      // The buckets from `from` on are read whole again.
      for (const b of [...this.buckets.keys()]) {
        if (b >= from) {
          this.buckets.delete(b);
        }
      }
    }
    for (const r of rows) {
      this.buckets.set(r.bucket, r.n);
      if (r.first_start !== null) {
        this.firstStart = Math.min(this.firstStart ?? Infinity, r.first_start);
      }
    }
  }

  /** The rate, the ETA and the chart's points, from the buckets of finishes. */
  private progress(): DashboardProgress {
    const counts = { ...this.counts };
    const total = LEDGER_STATES.reduce((n, s) => n + counts[s], 0);
    const remaining = counts.queued + counts.active;
    const windowMinutes = this.options.windowMinutes;
    const nowS = this.options.now() / 1000;
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    if (keys.length === 0 || this.firstStart === null) {
      return {
        counts,
        total,
        filesPerSecond: 0,
        windowMinutes,
        etaSeconds: remaining === 0 ? 0 : null,
        history: [],
      };
    }
    const lastBucketEnd = keys[keys.length - 1]! + BUCKET_SECONDS;
    // A finished run keeps the rate it had at its end, as `rebuild status` does.
    const end = remaining > 0 ? Math.max(nowS, lastBucketEnd) : lastBucketEnd;
    const start = Math.min(this.firstStart, keys[0]!);
    const finishedIn = (from: number, to: number) => {
      let n = 0;
      for (const k of keys) {
        if (k >= from && k < to) {
          n += this.buckets.get(k)!;
        }
      }
      return n;
    };
    const windowSeconds = Math.max(
      1,
      Math.min(windowMinutes * 60, end - start),
    );
    const filesPerSecond = finishedIn(end - windowSeconds, end) / windowSeconds;
    const etaSeconds =
      remaining === 0
        ? 0
        : filesPerSecond > 0
          ? remaining / filesPerSecond
          : null;

    const width =
      Math.ceil((end - start) / MAX_POINTS / BUCKET_SECONDS) * BUCKET_SECONDS ||
      BUCKET_SECONDS;
    // Each point's rate is taken over a few of its neighbours' intervals (at
    // least a minute), or a chart of a few files a minute is all steps.
    const smooth = Math.max(width * 3, 60, (end - start) / 40);
    const allFinished = keys.reduce((n, k) => n + this.buckets.get(k)!, 0);
    const history: ProgressPoint[] = [];
    let finished = 0;
    let k = 0;
    const first = Math.floor(start / BUCKET_SECONDS) * BUCKET_SECONDS;
    for (let t = first + width; t < end + width; t += width) {
      while (k < keys.length && keys[k]! < t) {
        finished += this.buckets.get(keys[k]!)!;
        k += 1;
      }
      const at = Math.min(t, end);
      // From a bucket's start, so that no bucket is half in the window.
      const from = Math.max(
        Math.floor((at - smooth) / BUCKET_SECONDS) * BUCKET_SECONDS,
        Math.floor(start / BUCKET_SECONDS) * BUCKET_SECONDS,
      );
      const rate =
        finishedIn(from, at) / Math.max(1, at - Math.max(from, start));
      // What was left then: what is left now plus what finished since.
      const left = remaining + (allFinished - finished);
      history.push({
        t: at,
        finished,
        rate,
        etaSeconds: left === 0 ? 0 : rate > 0 ? left / rate : null,
      });
    }
    return {
      counts,
      total,
      filesPerSecond,
      windowMinutes,
      etaSeconds,
      history,
    };
  }

  private fleet(now: number): DashboardFleet | null {
    const f = this.fleetRow;
    if (f === null) {
      return null;
    }
    return {
      name: f.name,
      run: f.run,
      provider: f.provider,
      region: f.region,
      state: f.state,
      launchedAt: f.launched_at.toISOString(),
      deadline: f.deadline.toISOString(),
      endedAt: f.ended_at?.toISOString() ?? null,
      endReason: f.end_reason,
      instances: f.instances.map((i) => {
        const launched = Date.parse(i.launched_at);
        const ended = i.ended_at === null ? null : Date.parse(i.ended_at);
        return {
          id: i.id,
          type: i.type,
          state: ended === null ? "running" : "ended",
          zone: i.zone,
          lifecycle: i.lifecycle,
          hourlyPrice: i.hourly_price,
          launchedAt: new Date(launched).toISOString(),
          endedAt: ended === null ? null : new Date(ended).toISOString(),
          // Whole seconds, so that the section changes once a second at most.
          ageSeconds: Math.max(
            0,
            Math.floor(((ended ?? now) - launched) / 1000),
          ),
        };
      }),
    };
  }

  private spend(
    marker: FleetMarker | null,
    run: RunState | undefined,
    now = this.options.now(),
  ): DashboardSpend {
    const runDollars = run === undefined ? null : run.spendDollars;
    const f = this.fleetRow;
    if (marker === null || f === null) {
      return {
        source: run === undefined ? "none" : "run",
        dollars: runDollars ?? 0,
        budget: null,
        hourlyRate: 0,
        maxHourlyCost: null,
        runDollars,
      };
    }
    // Price x hours from launch to now (or the end), as the fleet's guard
    // records it, computed here so that it moves between the guard's writes.
    let dollars = 0;
    let hourlyRate = 0;
    for (const i of f.instances) {
      const ended = i.ended_at === null ? now : Date.parse(i.ended_at);
      dollars +=
        (i.hourly_price * Math.max(0, ended - Date.parse(i.launched_at))) /
        3_600_000;
      if (i.ended_at === null) {
        hourlyRate += i.hourly_price;
      }
    }
    const num = (v: string | null) => (v === null ? null : Number(v));
    return {
      source: "fleet",
      // To a hundredth of a cent, so that the section does not change on every tick for nothing.
      dollars: Math.round(dollars * 10_000) / 10_000,
      budget: num(marker.budget),
      hourlyRate,
      maxHourlyCost: num(marker.max_hourly_cost),
      runDollars,
    };
  }

  private steps(run: RunState | undefined, now = this.options.now()) {
    const runId = this.options.runId;
    if (run === undefined) {
      return {
        runId,
        status: "no run",
        provider: null,
        startedAt: null,
        endedAt: null,
        steps: [],
      } satisfies DashboardSteps;
    }
    return {
      runId: run.runId,
      status: run.status,
      provider: run.provider ?? null,
      startedAt: run.startedAt ?? null,
      endedAt: run.endedAt ?? null,
      steps: RUN_STEPS.map((step): DashboardStep => {
        const s = run.steps[step];
        const started =
          s.startedAt === undefined ? null : Date.parse(s.startedAt);
        const ended = s.endedAt === undefined ? null : Date.parse(s.endedAt);
        return {
          step,
          status: s.status,
          startedAt: s.startedAt ?? null,
          endedAt: s.endedAt ?? null,
          // To the millisecond: a step of a fraction of a second (init on
          // a migrated database) is not 0.
          seconds:
            started === null
              ? null
              : Math.max(
                  0,
                  (ended ?? (s.status === "running" ? now : started)) - started,
                ) / 1000,
          figures: s.figures ?? {},
          reason: s.reason ?? null,
        };
      }),
    } satisfies DashboardSteps;
  }
}

/** One snapshot, read afresh (the JSON of `/api/snapshot` without a server). */
export async function readDashboardSnapshot(
  client: AnyClient,
  options: DashboardSourceOptions = {},
): Promise<DashboardSnapshot> {
  const source = new DashboardSource(options);
  await source.poll(client);
  return source.snapshot();
}
