/**
 * The worker image: how big the bundle is, whether building it twice gives
 * the same sha256, and how long `ami bake` takes on the loopback AWS
 * endpoint (the builder runs the real user-data under its folder; its apt
 * and Node.js steps find this machine's and skip), step by step.
 *
 * Then boot-to-first-file: the seconds from the launch call to the first
 * ledger row done, for one synthetic archive rebuilt into a fresh database
 * per round and contender, taking turns:
 *
 *   baked: a fleet of the baked image: each instance boots through the
 *          image's systemd unit (test/ami/cloud-init.mjs), which runs the
 *          bundled `instance boot`: the bundle's check, IMDSv2 user-data,
 *          the secrets from SSM as its role, the bundled workers;
 *   plain: the same fleet from an image whose boot command is this
 *          checkout's `instance boot` (no unit, no bundle to check), as in
 *          bench/fleet-launch.ts;
 *   local: the same workers as processes here (the baseline).
 *
 * Usage: node --import tsx bench/ami-bake.ts [--rounds 3] [--files 100]
 *          [--instances 2] [--boot-rounds 3]
 * (after `npm run build`: the bundle carries dist/).
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

import { S3Client } from "@aws-sdk/client-s3";

import { bakeImage, type BakeResult } from "../ami/bake.js";
import { buildBundle } from "../ami/bundle.js";
import { verifyInstalledBundle } from "../ami/verify.js";
import { writeSyntheticArchive } from "../fixtures/synthetic/archive.js";
import { Ec2FleetProvider } from "../infra/ec2.js";
import { LocalFleetProvider } from "../infra/local.js";
import type { FleetProvider, FleetSpec } from "../infra/provider.js";
import { putFleetSecrets } from "../infra/secrets.js";
import { withClient } from "../lib/db/connect.js";
import { packageRoot } from "../lib/paths.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import { amiSetup, BUILDER_PROFILE } from "../test/ami/helpers.js";
import { launchUntilDrained } from "./fleet-drain.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}
const rounds = Number(option("--rounds", "3"));
const files = Number(option("--files", "100"));
const instances = Number(option("--instances", "2"));
const bootRounds = Number(option("--boot-rounds", "3"));
const run = promisify(execFile);
const CLI = join(packageRoot(), "dist", "cli", "main.js");
const ROLE = "fitsfleet-worker";
const PREFIX = "/fitsfleet/bench/";

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

  const setup = await amiSetup(t, {
    roles: { [ROLE]: { ssmReadPrefixes: [PREFIX] } },
  });
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

  // The boot's bundle check on its own, on the baked image's disk.
  const installed = join(
    setup.root,
    "images",
    bakes[bakes.length - 1]!.imageId,
    "opt",
    "fitsfleet",
  );
  const checks: number[] = [];
  let checked = 0;
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    const result = await verifyInstalledBundle(installed);
    checks.push((performance.now() - started) / 1000);
    checked = result.state === "verified" ? result.files : 0;
  }
  console.log(
    `\nthe boot's bundle check (archive sha256, then ${checked} files against the archive): ${median(checks).toFixed(2)} s (median of ${rounds})`,
  );

  // Boot-to-first-file.
  const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-stack-"));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  const { state } = await stackUp(stackDir, { unsafeFast: true });
  t.after(() => stackDown(stackDir, { purge: true }));
  const urls = stackUrls(state);
  const archive = mkdtempSync(join(tmpdir(), "fitsfleet-bench-archive-"));
  t.after(() => rmSync(archive, { recursive: true, force: true }));
  await writeSyntheticArchive(archive, {
    files,
    dataScale: "small",
    layout: "by-night",
  });
  const images = {
    baked: bakes[bakes.length - 1]!.imageId,
    plain: setup.aws.registerImage({
      name: "fitsfleet-checkout",
      argv: [process.execPath, CLI, "instance", "boot"],
    }),
  };
  const contenders = ["baked", "plain", "local"] as const;
  const firstFile = new Map<string, number[]>();
  for (let round = 1; round <= bootRounds; round++) {
    // Each contender goes first once in three rounds.
    const order = [
      ...contenders.slice(round % 3),
      ...contenders.slice(0, round % 3),
    ];
    for (const name of order) {
      const db = `boot_${name}_${round}`;
      await withClient(urls.adminUrl, (c) => c.query(`CREATE DATABASE ${db}`));
      const url = new URL(urls.adminUrl);
      url.pathname = `/${db}`;
      const databaseUrl = url.toString();
      const env = {
        ...process.env,
        FITSFLEET_DATABASE_URL: databaseUrl,
        FITSFLEET_REDIS_URL: urls.redisUrl,
        FITSFLEET_LOG_LEVEL: "error",
      };
      const queue = `boot-${name}-${round}`;
      await run(process.execPath, [CLI, "db", "init"], { env });
      await run(
        process.execPath,
        [CLI, "--storage", archive, "rebuild", "enqueue", "--queue", queue],
        { env },
      );
      let provider: FleetProvider;
      if (name === "local") {
        provider = new LocalFleetProvider({
          databaseUrl,
          redisUrl: urls.redisUrl,
        });
      } else {
        await putFleetSecrets(setup.aws.ssmClient(), {
          prefix: PREFIX,
          databaseUrl,
          redisUrl: urls.redisUrl,
        });
        provider = new Ec2FleetProvider(setup.aws.ec2Client(), {
          region: setup.aws.region,
          image: images[name],
          instanceTypes: ["c6i.large"],
          subnets: ["subnet-0000000000000001a", "subnet-0000000000000002b"],
          instanceProfile: ROLE,
          secretsPrefix: PREFIX,
        });
      }
      const spec: FleetSpec = {
        name: `boot-${name}-${round}`,
        run: `boot-${round}`,
        instances,
        ingestWorkers: 1,
        previewWorkers: 0,
        queue,
        fastRebuild: true,
        makePreviews: false,
        storage: archive,
        logLevel: "error",
        deadline: new Date(Date.now() + 3_600_000),
      };
      const started = Date.now();
      await launchUntilDrained(
        provider,
        spec,
        databaseUrl,
        `${name} round ${round}`,
      );
      if (name !== "local") {
        await setup.aws.waitFor(
          (all) => all.every((i) => i.state === "terminated"),
          120_000,
        );
      }
      const first = await withClient(databaseUrl, async (c) => {
        const { rows } = await c.query<{ first: Date }>(
          "SELECT min(finished_at) AS first FROM fitsfleet.ingest_ledger WHERE state = 'done'",
        );
        return (rows[0]!.first.getTime() - started) / 1000;
      });
      firstFile.set(name, [...(firstFile.get(name) ?? []), first]);
      console.log(
        `boot round ${round} ${name}: first file ${first.toFixed(2)} s`,
      );
    }
  }
  const m = (name: string) => median(firstFile.get(name)!);
  console.log(
    `\nlaunch call -> first file done, ${instances} instance(s) x 1 worker, medians of ${bootRounds}:`,
  );
  console.log("| contender | seconds | minus local |\n| --- | --- | --- |");
  for (const name of contenders) {
    console.log(
      `| ${name} | ${m(name).toFixed(2)} | ${name === "local" ? "-" : `+${(m(name) - m("local")).toFixed(2)}`} |`,
    );
  }
  console.log(
    `baked / local: ${(m("baked") / m("local")).toFixed(2)}x; baked - plain (the unit and the bundle's check): +${(m("baked") - m("plain")).toFixed(2)} s`,
  );
} finally {
  for (const fn of cleanups.reverse()) {
    await fn();
  }
}
