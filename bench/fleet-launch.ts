/**
 * A fleet's launch-to-first-file latency and drain time on the loopback
 * EC2 endpoint, against the same workers as local processes (the
 * baseline: no launch template, fleet request, boot, metadata or SSM on the
 * way). Each round rebuilds one synthetic archive into a fresh database,
 * once per contender, in alternating order:
 *
 *   ec2:   launchFleet → CreateLaunchTemplate + CreateFleet → each
 *          instance boots `fitsfleet instance boot` (IMDSv2 user-data,
 *          secrets from SSM as its role) → ingest workers with --spot-watch
 *          → they drain the queue, the instances power off, the guard ends
 *          the fleet;
 *   local: launchFleet → worker processes here → the guard ends the fleet.
 *
 * Reported per contender (medians): seconds from the launch call to the
 * first finished file, to the last finished file (drain), and to the fleet
 * ended (every instance terminated, template and fleet deleted).
 *
 * Usage: node --import tsx bench/fleet-launch.ts [--files 200] [--instances 2]
 *          [--workers-per-instance 1] [--rounds 3] [--data-scale small]
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { writeSyntheticArchive } from "../fixtures/synthetic/archive.js";
import { Ec2FleetProvider } from "../infra/ec2.js";
import { LocalFleetProvider } from "../infra/local.js";
import type { FleetProvider, FleetSpec } from "../infra/provider.js";
import { putFleetSecrets } from "../infra/secrets.js";
import { withClient } from "../lib/db/connect.js";
import { packageRoot } from "../lib/paths.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import { startAwsEndpoint } from "../test/aws/endpoint.js";
import { launchUntilDrained } from "./fleet-drain.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const run = promisify(execFile);

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const files = Number(option("--files", "200"));
const instances = Number(option("--instances", "2"));
const perInstance = Number(option("--workers-per-instance", "1"));
const rounds = Number(option("--rounds", "3"));
const dataScale = option("--data-scale", "small") as "tiny" | "small" | "full";
const CLI = join(packageRoot(), "dist", "cli", "main.js");
const ROLE = "fitsfleet-worker";
const PREFIX = "/fitsfleet/bench/";

interface Sample {
  firstFile: number;
  drained: number;
  ended: number;
}

const work = mkdtempSync(join(tmpdir(), "fitsfleet-bench-fleet-"));
const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-stack-"));
const aws = await startAwsEndpoint({
  root: join(work, "aws"),
  roles: { [ROLE]: { ssmReadPrefixes: [PREFIX] } },
  instanceCredentials: "imds",
  terminateGraceMs: 30_000,
});
try {
  const { state } = await stackUp(stackDir, { unsafeFast: true });
  const urls = stackUrls(state);
  const archive = join(work, "archive");
  await writeSyntheticArchive(archive, {
    files,
    dataScale,
    layout: "by-night",
  });
  const image = aws.registerImage({
    name: "fitsfleet-worker",
    argv: [process.execPath, CLI, "instance", "boot"],
  });
  const results = new Map<string, Sample[]>();
  const contenders = ["ec2", "local"] as const;
  for (let round = 1; round <= rounds; round++) {
    for (const name of round % 2 === 1
      ? contenders
      : [...contenders].reverse()) {
      const db = `fleet_${name}_${round}`;
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
      const queue = `fleet-${name}-${round}`;
      await run(process.execPath, [CLI, "db", "init"], { env });
      await run(
        process.execPath,
        [
          CLI,
          "--storage",
          archive,
          "rebuild",
          "enqueue",
          "--queue",
          queue,
          "--batch-size",
          "5",
        ],
        { env },
      );
      let provider: FleetProvider;
      if (name === "ec2") {
        await putFleetSecrets(aws.ssmClient(), {
          prefix: PREFIX,
          databaseUrl,
          redisUrl: urls.redisUrl,
        });
        provider = new Ec2FleetProvider(aws.ec2Client(), {
          region: aws.region,
          image,
          instanceTypes: ["c6i.large"],
          subnets: ["subnet-0000000000000001a", "subnet-0000000000000002b"],
          instanceProfile: ROLE,
          secretsPrefix: PREFIX,
        });
      } else {
        provider = new LocalFleetProvider({
          databaseUrl,
          redisUrl: urls.redisUrl,
        });
      }
      const spec: FleetSpec = {
        name: `bench-${name}-${round}`,
        run: `bench-${round}`,
        instances,
        ingestWorkers: perInstance,
        previewWorkers: 0,
        queue,
        fastRebuild: true,
        makePreviews: true,
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
      if (name === "ec2") {
        await aws.waitFor(
          (all) => all.every((i) => i.state === "terminated"),
          120_000,
        );
      }
      const ended = (Date.now() - started) / 1000;
      const times = await withClient(databaseUrl, async (c) => {
        const { rows } = await c.query<{
          first: Date;
          last: Date;
          failed: string;
        }>(
          `SELECT min(finished_at) AS first, max(finished_at) AS last,
                  count(*) FILTER (WHERE state NOT IN ('done', 'failed')) AS failed
             FROM fitsfleet.ingest_ledger`,
        );
        return rows[0]!;
      });
      if (Number(times.failed) > 0) {
        throw new Error(
          `${name} round ${round}: ${times.failed} file(s) neither done nor failed`,
        );
      }
      const sample = {
        firstFile: (times.first.getTime() - started) / 1000,
        drained: (times.last.getTime() - started) / 1000,
        ended,
      };
      results.set(name, [...(results.get(name) ?? []), sample]);
      console.log(
        `round ${round} ${name}: first file ${sample.firstFile.toFixed(2)} s, drained ${sample.drained.toFixed(2)} s, fleet ended ${sample.ended.toFixed(2)} s`,
      );
    }
  }
  const median = (xs: number[]) =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const summary = (name: string) => {
    const s = results.get(name)!;
    return {
      firstFile: median(s.map((x) => x.firstFile)),
      drained: median(s.map((x) => x.drained)),
      ended: median(s.map((x) => x.ended)),
    };
  };
  const e = summary("ec2");
  const l = summary("local");
  console.log(
    `\n${files} files (${dataScale}), ${instances} instance(s) x ${perInstance} ingest worker(s), medians of ${rounds} rounds:`,
  );
  console.log(
    `ec2 (loopback): first file ${e.firstFile.toFixed(2)} s, drained ${e.drained.toFixed(2)} s, ended ${e.ended.toFixed(2)} s`,
  );
  console.log(
    `local:          first file ${l.firstFile.toFixed(2)} s, drained ${l.drained.toFixed(2)} s, ended ${l.ended.toFixed(2)} s`,
  );
  console.log(
    `ec2 - local: first file +${(e.firstFile - l.firstFile).toFixed(2)} s, drained +${(e.drained - l.drained).toFixed(2)} s, ended +${(e.ended - l.ended).toFixed(2)} s; drain ratio ec2/local ${(e.drained / l.drained).toFixed(2)}`,
  );
} finally {
  await aws.close();
  await stackDown(stackDir, { purge: true });
  rmSync(stackDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
