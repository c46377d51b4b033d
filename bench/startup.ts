/**
 * How long `fitsfleet --version` and `fitsfleet --help` take from process
 * start to exit, against a bare Node start (`node -e 0`) in the same run.
 * The contenders run interleaved, one after another in every round (in a
 * rotating order), so the machine's drifting speed falls on all of them alike;
 * wall time per run, median over the rounds.
 *
 *   npm run build && node --import tsx bench/startup.ts [rounds=15] [--runs=10]
 *     [--before=OTHER/dist/cli/main.js]
 *
 * --runs is the number of back-to-back runs of each contender in one slice;
 * --before adds another build of the CLI (an older commit's) as contenders.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

import { packageRoot } from "../lib/paths.js";

const args = process.argv.slice(2);
const rounds = Number(args.find((a) => /^\d+$/.test(a)) ?? 15);
const runs = Number(
  args.find((a) => a.startsWith("--runs="))?.split("=")[1] ?? 10,
);
const cli = join(packageRoot(), "dist", "cli", "main.js");
const before = args.find((a) => a.startsWith("--before="))?.split("=")[1];

const contenders: { name: string; argv: string[] }[] = [
  { name: "baseline: node -e 0", argv: ["-e", "0"] },
  { name: "fitsfleet --version", argv: [cli, "--version"] },
  { name: "fitsfleet --help", argv: [cli, "--help"] },
  ...(before === undefined
    ? []
    : [
        { name: "before: --version", argv: [before, "--version"] },
        { name: "before: --help", argv: [before, "--help"] },
      ]),
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function slice(argv: string[]): number {
  const start = performance.now();
  for (let i = 0; i < runs; i++) {
    const result = spawnSync(process.execPath, argv, { stdio: "ignore" });
    if (result.status !== 0) {
      throw new Error(`node ${argv.join(" ")} exited ${result.status}`);
    }
  }
  return (performance.now() - start) / runs;
}

const times = contenders.map(() => [] as number[]);
slice(contenders[1]!.argv); // warm the file cache
for (let round = 0; round < rounds; round++) {
  for (let k = 0; k < contenders.length; k++) {
    const i = (round + k) % contenders.length;
    times[i]!.push(slice(contenders[i]!.argv));
  }
}

const baseline = median(times[0]!);
console.log(
  `${rounds} rounds x ${runs} runs per slice, median wall time per run (node ${process.version})`,
);
for (const [i, { name }] of contenders.entries()) {
  const ms = median(times[i]!);
  console.log(
    `${name.padEnd(22)} ${ms.toFixed(1).padStart(7)} ms  ${(ms / baseline).toFixed(2)}x baseline, ${(ms - baseline).toFixed(1)} ms over it`,
  );
}
