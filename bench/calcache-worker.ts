/**
 * `worker calcache` throughput, frames/s with 1 and 2 workers, against the
 * baseline of the reference's loop shape: pop one entry, evaluate the
 * frame, write its rows, delete the entry, one transaction per frame, no
 * batching (the same evaluator, so only the queue handling differs). Each
 * run drains a full queue over a generated calibration archive, in its own
 * clone of one template database on a throwaway stack; the contenders take
 * turns, round by round, so load on the machine falls on both alike.
 *
 * The worker runs with --no-dependents here, so that both evaluate every
 * frame exactly once; `--dependents` adds a run with them on (a bulk queue
 * over an empty cache then re-evaluates the neighbours of the first frames).
 *
 * Usage: node --import tsx bench/calcache-worker.ts [--frames-per-instrument 100]
 *          [--rounds 2] [--batch-size 4] [--dependents] [--durable]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { NOT_FAILED } from "../lib/archive-writer.js";
import { writeFrameAssociations } from "../lib/cal/calcache.js";
import { evaluateFrame } from "../lib/cal/evaluate.js";
import { connect, withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { createLogger } from "../lib/logger.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import { queueAll } from "../test/cal/worker-helpers.js";
import { generateCalArchive } from "../test/helpers/cal-archive.js";
import { runCalcacheWorker } from "../worker/calcache.js";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const perInstrument = Number(option("--frames-per-instrument", "100"));
const rounds = Number(option("--rounds", "2"));
const batchSize = Number(option("--batch-size", "4"));
const withDependents = process.argv.includes("--dependents");
// fsync on, as a production database runs: each commit waits for the disk.
const durable = process.argv.includes("--durable");
const logger = createLogger({ level: "error" });

function urlOf(admin: string, db: string): string {
  const url = new URL(admin);
  url.pathname = `/${db}`;
  return url.toString();
}

/** The reference's service loop: one frame per transaction. */
async function baselineLoop(url: string): Promise<number> {
  const c = await connect(url);
  let frames = 0;
  try {
    for (;;) {
      await c.query("BEGIN");
      const { rows } = await c.query<{ id: number; obs_hid: number }>(
        `SELECT id, obs_hid FROM calcachequeue
          WHERE fail_dt = $1 AND NOT inprogress
          ORDER BY sortkey DESC LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [NOT_FAILED],
      );
      const entry = rows[0];
      if (entry === undefined) {
        await c.query("COMMIT");
        return frames;
      }
      const evaluation = await evaluateFrame(c, entry.obs_hid);
      await writeFrameAssociations(c, evaluation);
      if (
        evaluation.outcome === "associated" ||
        evaluation.outcome === "skipped"
      ) {
        await c.query("DELETE FROM calcachequeue WHERE id = $1", [entry.id]);
      } else {
        await c.query(
          "UPDATE calcachequeue SET fail_dt = now(), error = $2 WHERE id = $1",
          [entry.id, evaluation.reason ?? "failed"],
        );
      }
      await c.query("COMMIT");
      frames++;
    }
  } finally {
    await c.end();
  }
}

interface Contender {
  name: string;
  workers: number;
  run: (url: string, workers: number) => Promise<number>;
}

const contenders: Contender[] = [1, 2].flatMap((workers) => [
  {
    name: `baseline, ${workers} worker(s)`,
    workers,
    run: async (url: string, n: number) =>
      (
        await Promise.all(Array.from({ length: n }, () => baselineLoop(url)))
      ).reduce((a, b) => a + b, 0),
  },
  {
    name: `worker calcache, ${workers} worker(s)`,
    workers,
    run: async (url: string, n: number) => {
      const runs = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          runCalcacheWorker({
            name: `bench-${i}`,
            databaseUrl: url,
            concurrency: 1,
            batchSize,
            empty: true,
            dependents: false,
            logger,
          }),
        ),
      );
      return runs.reduce((a, r) => a + r.frames, 0);
    },
  },
  ...(withDependents
    ? [
        {
          name: `worker calcache with dependents, ${workers} worker(s)`,
          workers,
          run: async (url: string, n: number) => {
            const runs = await Promise.all(
              Array.from({ length: n }, (_, i) =>
                runCalcacheWorker({
                  name: `bench-d-${i}`,
                  databaseUrl: url,
                  concurrency: 1,
                  batchSize,
                  empty: true,
                  logger,
                }),
              ),
            );
            return runs.reduce((a, r) => a + r.frames, 0);
          },
        },
      ]
    : []),
]);

const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-calq-"));
try {
  const { state } = await stackUp(stackDir, { unsafeFast: !durable });
  const admin = stackUrls(state).adminUrl;
  await withClient(admin, (c) => c.query("CREATE DATABASE calq_template"));
  const template = urlOf(admin, "calq_template");
  const queued = await withClient(template, async (c) => {
    await runMigrations(c);
    await generateCalArchive(c, 20190615, perInstrument);
    const ids = await queueAll(c);
    await c.query("VACUUM ANALYZE");
    return ids.length;
  });
  console.log(
    `${queued} queued frames (${perInstrument} per instrument), batch size ${batchSize}, ${rounds} round(s), fsync ${durable ? "on" : "off"}`,
  );
  const totals = new Map<string, { frames: number; seconds: number }>();
  let n = 0;
  for (let round = 0; round < rounds; round++) {
    // Alternate the order each round.
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const contender of order) {
      const db = `calq_${n++}`;
      await withClient(admin, (c) =>
        c.query(`CREATE DATABASE ${db} TEMPLATE calq_template`),
      );
      const url = urlOf(admin, db);
      const start = process.hrtime.bigint();
      const frames = await contender.run(url, contender.workers);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      await withClient(admin, (c) =>
        c.query(`DROP DATABASE ${db} WITH (FORCE)`),
      );
      console.log(
        `round ${round + 1} ${contender.name}: ${frames} frames in ${seconds.toFixed(1)} s = ${(frames / seconds).toFixed(1)} frames/s`,
      );
      const t = totals.get(contender.name) ?? { frames: 0, seconds: 0 };
      totals.set(contender.name, {
        frames: t.frames + frames,
        seconds: t.seconds + seconds,
      });
    }
  }
  console.log(
    "\ncontender                                  frames/s   vs baseline",
  );
  for (const workers of [1, 2]) {
    const base = totals.get(`baseline, ${workers} worker(s)`)!;
    const baseRate = base.frames / base.seconds;
    for (const c of contenders.filter((x) => x.workers === workers)) {
      const t = totals.get(c.name)!;
      const rate = t.frames / t.seconds;
      console.log(
        `${c.name.padEnd(42)} ${rate.toFixed(1).padStart(8)}   ${(rate / baseRate).toFixed(2)}x`,
      );
    }
  }
} finally {
  await stackDown(stackDir, { purge: true }).catch(() => undefined);
  rmSync(stackDir, { recursive: true, force: true });
}
