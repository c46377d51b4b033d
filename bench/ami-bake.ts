/**
 * The worker image: how big the bundle is, whether building it twice gives
 * the same sha256, and how long `ami bake` takes on the loopback AWS
 * endpoint (the builder runs the real user-data under its folder; its apt
 * and Node.js steps find this machine's and skip), step by step.
 *
 * Usage: node --import tsx bench/ami-bake.ts [--rounds 3]
 * (after `npm run build`: the bundle carries dist/).
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname } from "node:path";

import { S3Client } from "@aws-sdk/client-s3";

import { bakeImage, type BakeResult } from "../ami/bake.js";
import { buildBundle } from "../ami/bundle.js";
import { amiSetup, BUILDER_PROFILE } from "../test/ami/helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const at = process.argv.indexOf("--rounds");
const rounds = at >= 0 ? Number(process.argv[at + 1]) : 3;

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

const cleanups: (() => unknown)[] = [];
const t = { after: (fn: () => unknown) => void cleanups.push(fn) };

try {
  const builds: number[] = [];
  const shas = new Set<string>();
  let bytes = 0;
  let unpacked = 0;
  let packages = 0;
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    const bundle = await buildBundle();
    builds.push((performance.now() - started) / 1000);
    shas.add(bundle.sha256);
    bytes = bundle.bytes;
    packages = bundle.packages;
    unpacked = Number(
      execFileSync("sh", [
        "-c",
        `tar -xzOf '${bundle.path}' | wc -c`,
      ]).toString(),
    );
    rmSync(dirname(bundle.path), { recursive: true, force: true });
  }
  console.log(
    `bundle: ${(bytes / 1e6).toFixed(1)} MB (${(unpacked / 1e6).toFixed(0)} MB unpacked, ${packages} production packages); built in ${median(builds).toFixed(1)} s (median of ${rounds}); ${shas.size === 1 ? "the same sha256 every time" : `${shas.size} different sha256s`}`,
  );

  const setup = await amiSetup(t);
  const bakes: BakeResult[] = [];
  for (let i = 0; i < rounds; i++) {
    bakes.push(
      await bakeImage({
        ec2: setup.aws.ec2Client(),
        ssm: setup.aws.ssmClient(),
        s3: new S3Client({
          endpoint: setup.s3.endpoint,
          region: setup.aws.region,
          forcePathStyle: true,
          credentials: setup.aws.operatorCredentials,
          requestChecksumCalculation: "WHEN_REQUIRED",
        }),
        region: setup.aws.region,
        bundleLocation: `s3://${setup.s3.bucket}/bundles`,
        instanceProfile: BUILDER_PROFILE,
        pollMs: 200,
      }),
    );
  }
  const steps = Object.keys(
    bakes[0]!.seconds,
  ) as (keyof BakeResult["seconds"])[];
  console.log(`\nami bake on the loopback endpoint, medians of ${rounds}:`);
  console.log("| step | seconds |\n| --- | --- |");
  for (const step of steps) {
    console.log(
      `| ${step} | ${median(bakes.map((b) => b.seconds[step] ?? 0)).toFixed(2)} |`,
    );
  }
} finally {
  for (const fn of cleanups.reverse()) {
    await fn();
  }
}
