/**
 * The calibration cache at scale: the set-based rebuild (`rebuildCalcache`)
 * against the per-frame path (`evaluateFrame` + `writeFrameAssociations`,
 * one transaction per frame, what the queue worker does), in the same run
 * on the same archive, interleaved: per-frame slice, rebuild, per-frame
 * slice, rebuild, … (`rounds` rebuilds). The per-frame path runs on a random sample of the
 * covered frames, with as many connections as the rebuild's jobs, and is
 * scaled to the whole archive.
 *
 * The archive: test/helpers/cal-archive.ts's generator (every mode, near
 * misses at every boundary, non-canonical versions, engineering, failed QA,
 * processed calibrations, NULL ut_datetime), copied with INSERT … SELECT,
 * each copy `shift` days after the one before, until it holds at least
 * `science` science-class OBJECT frames.
 *
 * Usage: node --import tsx bench/calcache.ts [science=100000] [sample=600] [jobs=cores] [batch=150000] [rounds=2]
 */
import { mkdtempSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";

import { writeFrameAssociations } from "../lib/cal/calcache.js";
import { evaluateFrame } from "../lib/cal/evaluate.js";
import { rebuildCalcache } from "../lib/cal/rebuild/index.js";
import { withClient, withTransaction } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import {
  generateCalArchive,
  replicateCalArchive,
} from "../test/helpers/cal-archive.js";

const science = Number(process.argv[2] ?? 100_000);
const sampleSize = Number(process.argv[3] ?? 600);
const jobs = Number(process.argv[4] ?? availableParallelism());
const batchSize = Number(process.argv[5] ?? 150_000);
const rounds = Number(process.argv[6] ?? 2);
const SEED_FRAMES = 400;
const SHIFT_DAYS = 1000;
const dir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-cal-"));

function dbUrl(admin: string, name: string): string {
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A fixed pseudo-random sample, so two runs time the same frames. */
function sample(ids: number[], n: number): number[] {
  let x = 12345;
  const out = new Set<number>();
  while (out.size < Math.min(n, ids.length)) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.add(ids[x % ids.length]!);
  }
  return [...out];
}

async function perFrame(url: string, hids: number[]): Promise<number> {
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: jobs }, () =>
      withClient(url, async (c) => {
        for (;;) {
          const hid = hids[next++];
          if (hid === undefined) {
            return;
          }
          await withTransaction(c, async () => {
            await writeFrameAssociations(c, await evaluateFrame(c, hid));
          });
        }
      }),
    ),
  );
  return (performance.now() - t) / 1000;
}

try {
  const { state } = await stackUp(dir, { unsafeFast: true });
  const { adminUrl } = stackUrls(state);
  await withClient(adminUrl, (c) => c.query("CREATE DATABASE bench_cal"));
  const url = dbUrl(adminUrl, "bench_cal");
  let t = performance.now();
  const { covered, sciencePerCopy, headers } = await withClient(
    url,
    async (c) => {
      await runMigrations(c);
      await generateCalArchive(c, 20190615, SEED_FRAMES);
      const { rows } = await c.query<{ n: string }>(
        `SELECT count(*) AS n FROM header
          WHERE observation_type = 'OBJECT' AND observation_class = 'science'`,
      );
      const perCopy = Number(rows[0]!.n);
      const copies = Math.ceil(science / perCopy) - 1;
      const total = await replicateCalArchive(c, copies, SHIFT_DAYS);
      await c.query("VACUUM ANALYZE");
      const { rows: ids } = await c.query<{ id: number }>(
        `SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id
          WHERE d.canonical AND d.mdready IS NOT FALSE AND h.engineering = false`,
      );
      return {
        covered: ids.map((r) => r.id),
        sciencePerCopy: perCopy,
        headers: total,
      };
    },
  );
  const scienceFrames = sciencePerCopy * Math.ceil(science / sciencePerCopy);
  console.log(
    `archive: ${headers.toLocaleString("en-US")} headers (${scienceFrames.toLocaleString("en-US")} science OBJECT frames), ${covered.length.toLocaleString("en-US")} covered by the rebuild; generated in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  const chosen = sample(covered, sampleSize);
  const sliceSize = Math.ceil(chosen.length / (rounds + 1));
  const slices = Array.from({ length: rounds + 1 }, (_, i) =>
    chosen.slice(i * sliceSize, (i + 1) * sliceSize),
  );
  let perFrameSeconds = 0;
  const timePerFrame = async (slice: number[]) => {
    const s = await perFrame(url, slice);
    perFrameSeconds += s;
    console.log(
      `per-frame sample: ${slice.length} frames in ${s.toFixed(1)} s (${((s * 1000) / slice.length).toFixed(2)} ms per frame with ${jobs} connections)`,
    );
  };
  // per-frame, set-based, per-frame, …: the machine's load moves both alike.
  const setSeconds: number[] = [];
  await timePerFrame(slices[0]!);
  for (let round = 1; round <= rounds; round++) {
    t = performance.now();
    const cpu = process.cpuUsage();
    let shown = 0;
    const report = await rebuildCalcache({
      databaseUrl: url,
      jobs,
      batchSize,
      onProgress: (p) => {
        if (Date.now() - shown > 15_000 || p.phase !== "search") {
          shown = Date.now();
          process.stderr.write(
            `  ${p.phase} ${p.framesDone}/${p.framesTotal} ${p.framesPerSecond.toFixed(0)} frames/s\n`,
          );
        }
      },
    });
    setSeconds.push((performance.now() - t) / 1000);
    const used = process.cpuUsage(cpu);
    // This process's CPU (its search threads included) is the rebuild's
    // JavaScript; the statements are the server's, on the same cores.
    console.log(
      `set-based rebuild ${round}: ${((used.user + used.system) / 1e6).toFixed(1)} s of CPU in this process`,
    );
    console.log(
      `set-based rebuild ${round}: ${report.framesTotal.toLocaleString("en-US")} frames, ${report.rowsWritten.toLocaleString("en-US")} rows, ${report.shapes} shapes, ${report.statements} statements, ${setSeconds[setSeconds.length - 1]!.toFixed(1)} s`,
    );
    await timePerFrame(slices[round]!);
  }
  // The mean of the rounds, as the per-frame rate is the whole sample's.
  const setMean = setSeconds.reduce((a, b) => a + b, 0) / setSeconds.length;
  const setRate = covered.length / setMean;
  const perFrameRate = chosen.length / perFrameSeconds;
  console.log("");
  console.log(
    `jobs: ${jobs} (per-frame: connections; set-based: search threads); batches of at most ${batchSize} frames; set-based rounds: ${setSeconds.map((x) => x.toFixed(1)).join(", ")} s`,
  );
  console.log(
    `set-based:  ${setRate.toFixed(0)} frames/s, ${((setMean * 1000) / covered.length).toFixed(3)} ms per frame`,
  );
  console.log(
    `per-frame:  ${perFrameRate.toFixed(1)} frames/s, ${(1000 / perFrameRate).toFixed(2)} ms per frame (sample of ${chosen.length}); whole archive ${(covered.length / perFrameRate / 60).toFixed(1)} min`,
  );
  console.log(`ratio:      ${(setRate / perFrameRate).toFixed(1)}x`);
  const projected = 3_000_000 / setRate;
  console.log(
    `projected for 3,000,000 frames: set-based ${(projected / 60).toFixed(1)} min, per-frame ${(3_000_000 / perFrameRate / 3600).toFixed(1)} h (linear in frames, this machine)`,
  );
} finally {
  await stackDown(dir, { purge: true });
}
