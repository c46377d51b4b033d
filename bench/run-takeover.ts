/**
 * Standby takeover of a run's coordinator (issue 22): the time from the
 * active coordinator's loss of its lease connection (what a kill -9 does)
 * to the standby's recovered state, against the number of events in the
 * run's log, with a snapshot (as a coordinator that snapshots every 1,000
 * events leaves it: the youngest snapshot about 500 events back) and
 * without one: the full replay, which is the baseline. Both take turns in
 * the same process against the same log, on one throwaway stack.
 *
 * The standby is the real `Coordinator.standby` (polling every 50 ms); the
 * "active" holds the lease on a connection of its own, which is closed to
 * start the clock.
 *
 * Usage: node --import tsx bench/run-takeover.ts [--sizes 1000,10000,100000,1000000]
 *          [--rounds 3] [--json]
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { connect, type PgClient, withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { RateMeter } from "../lib/progress.js";
import { Coordinator } from "../lib/run/coordinator.js";
import { appendEvents, readEvents } from "../lib/run/events.js";
import { fold, initialState } from "../lib/run/fold.js";
import { acquireLease } from "../lib/run/lease.js";
import { deleteSnapshots, saveSnapshot } from "../lib/run/snapshots.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import { sampleEvent } from "../test/helpers/run-events.js";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}
const sizes = option("--sizes", "1000,10000,100000,1000000")
  .split(",")
  .map(Number);
const rounds = Number(option("--rounds", "3"));
const json = process.argv.includes("--json");
const log = (line: string) => process.stderr.write(`${line}\n`);

const BATCH = 5_000;
/** Events after the youngest snapshot: half a snapshot interval of 1,000. */
const TAIL = 500;

/** Appends n events to the run, with progress; returns the seq of event n - TAIL - 1. */
async function populate(c: PgClient, runId: string, n: number) {
  const meter = new RateMeter();
  let snapshotSeq = 0;
  for (let i = 0; i < n; i += BATCH) {
    const count = Math.min(BATCH, n - i);
    const seqs = await appendEvents(
      c,
      runId,
      Array.from({ length: count }, (_, j) => sampleEvent(i + j, runId)),
    );
    const cut = n - TAIL - 1 - i;
    if (cut >= 0 && cut < count) {
      snapshotSeq = seqs[cut]!;
    }
    meter.sample(i + count);
    if ((i / BATCH) % 20 === 19) {
      log(
        `  ${runId}: ${i + count}/${n} events, ${Math.round(meter.rate())}/s, ETA ${Math.round(meter.eta(n) ?? 0)} s`,
      );
    }
  }
  return snapshotSeq;
}

/** The state at `seq`, folded page by page. */
async function stateAt(c: PgClient, runId: string, seq: number) {
  let state = initialState(runId);
  for (let from = 1; ;) {
    const page = await readEvents(c, runId, { from, to: seq, limit: 10_000 });
    state = fold(state, page.events);
    if (page.events.length < 10_000) {
      return state;
    }
    from = page.safeTo + 1;
  }
}

interface Sample {
  events: number;
  variant: "snapshot" | "full";
  takeoverMs: number;
  replayed: number;
  source: string;
}

async function takeover(
  url: string,
  runId: string,
  variant: "snapshot" | "full",
): Promise<Omit<Sample, "events">> {
  const active = await connect(url);
  const lease = await acquireLease(active, runId, "bench-active", {
    ttlMs: 600_000,
  });
  if (lease === undefined) {
    throw new Error(`${runId}: the bench's active could not take the lease`);
  }
  let lossAt = 0;
  const standby = Coordinator.standby(url, runId, {
    holder: "bench-standby",
    pollMs: 50,
    renewMs: 600_000,
  });
  // Let the standby connect and look once before the active goes.
  await new Promise((r) => setTimeout(r, 300));
  lossAt = performance.now();
  await active.end();
  const c = await standby;
  const takeoverMs = performance.now() - lossAt;
  const result = {
    variant,
    takeoverMs,
    replayed: c.recovery.replayed,
    source: c.recovery.source,
  };
  await c.close({ release: true });
  return result;
}

const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-takeover-"));
const samples: Sample[] = [];
try {
  const { state } = await stackUp(stackDir, { unsafeFast: true });
  const urls = stackUrls(state);
  await withClient(urls.adminUrl, (c) =>
    c.query("CREATE DATABASE bench_takeover"),
  );
  const u = new URL(urls.adminUrl);
  u.pathname = "/bench_takeover";
  const url = u.toString();
  await withClient(url, (c) => runMigrations(c));
  const c = await connect(url);
  try {
    for (const n of sizes) {
      const runId = `bench-${n}`;
      log(`${runId}: writing ${n} events`);
      const snapshotSeq = await populate(c, runId, n);
      // A log that grew over a run's hours has been analysed by autovacuum;
      // one written in seconds has not, and its planner estimates (a few
      // rows) would sort each page instead of walking the primary key.
      await c.query("ANALYZE fitsfleet.run_events");
      await saveSnapshot(
        c,
        runId,
        snapshotSeq,
        await stateAt(c, runId, snapshotSeq),
      );
      for (let round = 1; round <= rounds; round++) {
        const order: ("snapshot" | "full")[] =
          round % 2 === 1 ? ["snapshot", "full"] : ["full", "snapshot"];
        for (const variant of order) {
          // Only the planned snapshot: the standby saves one after recovering.
          await deleteSnapshots(c, runId, { minSeq: snapshotSeq + 1 });
          if (variant === "full") {
            await c.query(
              "UPDATE fitsfleet.run_snapshots SET run_id = run_id || ':aside' WHERE run_id = $1",
              [runId],
            );
          }
          const s = await takeover(url, runId, variant);
          if (variant === "full") {
            await deleteSnapshots(c, runId, {});
            await c.query(
              "UPDATE fitsfleet.run_snapshots SET run_id = $1 WHERE run_id = $1 || ':aside'",
              [runId],
            );
          }
          samples.push({ events: n, ...s });
          log(
            `  round ${round} ${variant}: ${s.takeoverMs.toFixed(0)} ms (${s.source}, ${s.replayed} events replayed)`,
          );
        }
      }
    }
  } finally {
    await c.end();
  }
} finally {
  await stackDown(stackDir, { purge: true });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};
const rows = sizes.map((n) => {
  const of = (v: string) =>
    median(
      samples
        .filter((s) => s.events === n && s.variant === v)
        .map((s) => s.takeoverMs),
    );
  const snapshot = of("snapshot");
  const full = of("full");
  return {
    events: n,
    snapshotMs: snapshot,
    fullReplayMs: full,
    ratio: full / snapshot,
  };
});
if (json) {
  process.stdout.write(
    `${JSON.stringify({ rounds, rows, samples }, null, 2)}\n`,
  );
} else {
  process.stdout.write(
    `events     | takeover, snapshot + ${TAIL} events | takeover, full replay | full / snapshot\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `${String(r.events).padEnd(10)} | ${`${r.snapshotMs.toFixed(0)} ms`.padEnd(31)} | ${`${r.fullReplayMs.toFixed(0)} ms`.padEnd(21)} | ${r.ratio.toFixed(1)}x\n`,
    );
  }
  process.stdout.write(`(median of ${rounds} rounds each, interleaved)\n`);
}
