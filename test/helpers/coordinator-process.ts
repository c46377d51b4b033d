/**
 * A coordinator in a process of its own, for the failover drill and the
 * takeover benchmark (until `rebuild run --standby` exists). Writes one JSON
 * line per fact to stdout.
 *
 *   node --import tsx test/helpers/coordinator-process.ts URL RUN active [--interval MS] [--snapshot-every N]
 *     becomes active and appends events until killed ({"ready":…}, then {"appended":seq} lines)
 *   node --import tsx test/helpers/coordinator-process.ts URL RUN standby [--continue N]
 *     waits for the lease, recovers, prints {"ready":…,"state":…}, appends N more events, lets go, exits
 */
import { createLogger } from "../../lib/logger.js";
import { Coordinator } from "../../lib/run/coordinator.js";
import { sampleEvent } from "./run-events.js";

const [url, runId, role] = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const say = (fact: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify(fact)}\n`);

if (
  url === undefined ||
  runId === undefined ||
  (role !== "active" && role !== "standby")
) {
  process.stderr.write(
    "usage: coordinator-process.ts URL RUN active|standby [options]\n",
  );
  process.exit(2);
}

const options = {
  // Log lines become facts too ({"log": "standing by"}), so a test can tell when the standby waits.
  logger: createLogger({
    format: "json",
    write: (line) => say({ log: (JSON.parse(line) as { msg: string }).msg }),
  }),
  pollMs: option("--poll", 100),
  snapshotEvery: option("--snapshot-every", 200),
  onLost: (reason: string) => {
    say({ lost: reason });
    process.exit(3);
  },
};

if (role === "active") {
  const c = await Coordinator.start(url, runId, options);
  say({
    ready: true,
    epoch: c.epoch,
    seq: c.state.seq,
    source: c.recovery.source,
  });
  const interval = option("--interval", 2);
  for (let i = c.state.seq === 0 ? 0 : 1; ; i++) {
    const batch = 1 + (i % 3);
    const seqs = await c.append(
      ...Array.from({ length: batch }, (_, j) => sampleEvent(i * 3 + j, runId)),
    );
    say({ appended: seqs[seqs.length - 1] });
    if (interval > 0) {
      await new Promise((r) => setTimeout(r, interval));
    }
  }
} else {
  const started = Date.now();
  const c = await Coordinator.standby(url, runId, options);
  say({
    ready: true,
    epoch: c.epoch,
    waitedMs: Date.now() - started,
    source: c.recovery.source,
    reason: c.recovery.reason,
    replayed: c.recovery.replayed,
    snapshotSeq: c.recovery.snapshotSeq,
    state: c.state,
  });
  const more = option("--continue", 3);
  const continued: number[] = [];
  for (let i = 0; i < more; i++) {
    continued.push(...(await c.append(sampleEvent(9, runId))));
  }
  say({ continued, state: c.state });
  await c.close({ release: true });
}
