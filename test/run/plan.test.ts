/**
 * `rebuild plan`: the count of a disk storage is exact; an S3 store with
 * more folders than it samples is estimated with its error, and one with
 * fewer is listed in full (s3rver); the ingest's cost is measured on real
 * files, or taken from the last run's ledger, which reproduces that run's
 * drain; spot prices come from the EC2 price history (the loopback
 * endpoint), and a deadline or a budget picks the shape.
 */
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { PutObjectCommand } from "@aws-sdk/client-s3";

import { captureLogger } from "../../lib/logger.js";
import { runPipeline } from "../../lib/run/pipeline.js";
import {
  countStorage,
  planRebuild,
  recommend,
  type Shape,
} from "../../lib/run/plan.js";
import { DEFAULT_RUN_SETTINGS } from "../../lib/run/settings.js";
import { SPOT_PRICES } from "../aws/catalog.js";
import { testEndpoint } from "../aws/fixtures.js";
import { testArchive } from "../helpers/archive.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";
import { testS3 } from "../helpers/s3.js";

/** A seeded generator: the sample, and so the assertions, are the same every run. */
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

describe("rebuild plan", () => {
  it("on disk: an exact count, a measured cost, then the last run's ledger rates, which reproduce its drain", async (t) => {
    const archive = testArchive(t, { dumpsPerInstrument: 2 });
    const all = [...archive.good, ...archive.corrupt];
    const bytes = all.reduce(
      (n, f) => n + statSync(join(archive.root, f.path, f.name)).size,
      0,
    );
    const db = await testDatabase(t, { empty: true });
    const measured = await planRebuild({
      storage: archive.root,
      databaseUrl: db.url,
      provider: "local",
      localWorkers: [1, 2],
      sampleFiles: 10,
    });
    assert.equal(measured.count.method, "exact");
    assert.equal(measured.count.files, all.length);
    assert.equal(measured.count.bytes, bytes);
    assert.equal(measured.cost.source, "sample");
    assert.equal(measured.cost.files, 10);
    assert.ok(measured.cost.secondsPerByte > 0);
    assert.deepEqual(
      measured.shapes.map((s) => s.instances),
      [1, 2],
    );
    // Twice the workers, at most half the time after the start-up.
    const [one, two] = measured.shapes as [Shape, Shape];
    assert.ok(
      Math.abs(
        (two.hours * 3600 - measured.startupSeconds) * 2 -
          (one.hours * 3600 - measured.startupSeconds),
      ) < 1e-6,
    );

    const report = await runPipeline(
      {
        ...DEFAULT_RUN_SETTINGS,
        provider: "local",
        storage: archive.root,
        queue: uniqueQueueName("plan"),
        instances: 2,
        intervalMs: 300,
        calcache: false,
      },
      {
        databaseUrl: db.url,
        redisUrl: testEnv().redisUrl,
        logger: captureLogger("warn"),
      },
    );
    const drain = report.run.steps.find((s) => s.step === "drain")!;
    const fromLedger = await planRebuild({
      storage: archive.root,
      databaseUrl: db.url,
      provider: "local",
      localWorkers: [2],
    });
    assert.equal(fromLedger.cost.source, "ledger");
    assert.equal(fromLedger.cost.run, report.run.id);
    // The ledger's rate for the run's own shape gives back its workers' time
    // at work: its files at its rate (first file started to last finished).
    const estimate = fromLedger.shapes[0]!.hours * 3600;
    const atWork = drain.figures.done! + drain.figures.failed!;
    assert.ok(
      Math.abs(
        estimate -
          fromLedger.startupSeconds -
          atWork / drain.figures.filesPerSecond!,
      ) < 1e-6,
      `${estimate} against ${atWork / drain.figures.filesPerSecond!} + ${fromLedger.startupSeconds}`,
    );

    // The CLI, --json, with a deadline it can meet.
    const cli = await runCli(
      ["--json", "rebuild", "plan", "--workers", "1,2", "--deadline", "1h"],
      {
        FITSFLEET_DATABASE_URL: db.url,
        FITSFLEET_STORAGE: archive.root,
      },
    );
    assert.equal(cli.code, 0, cli.stderr);
    const plan = JSON.parse(cli.stdout) as {
      count: { files: number };
      recommended: { instances: number } | null;
      reason: string;
    };
    assert.equal(plan.count.files, all.length);
    assert.ok(plan.recommended !== null);
    assert.match(plan.reason, /cheapest shape that finishes within 1 h/);
    const bad = await runCli(["rebuild", "plan", "--budget", "-3"], {
      FITSFLEET_STORAGE: archive.root,
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--budget -3: US dollars/);
  });

  it("on S3 (s3rver): folders sampled with the error stated, or listed in full when few", async (t) => {
    const s3 = await testS3(t);
    let files = 0;
    let bytes = 0;
    for (let folder = 0; folder < 30; folder++) {
      const n = 1 + (folder % 5);
      for (let k = 0; k < n; k++) {
        const body = Buffer.alloc(2880 * (1 + ((folder + k) % 3)), 32);
        await s3.client.send(
          new PutObjectCommand({
            Bucket: s3.bucket,
            Key: `data/2021${String(folder).padStart(4, "0")}/N2021${String(folder).padStart(4, "0")}S${String(k).padStart(4, "0")}.fits`,
            Body: body,
          }),
        );
        files++;
        bytes += body.length;
      }
    }
    const storage = `s3://${s3.bucket}/data`;
    const sampled = await countStorage({
      storage,
      s3Endpoint: s3.endpoint,
      sampleFolders: 10,
      random: seeded(7),
    });
    assert.equal(sampled.method, "sampled");
    assert.equal(sampled.folders, 30);
    assert.equal(sampled.foldersSampled, 10);
    assert.ok(sampled.filesError > 0);
    assert.ok(
      Math.abs(sampled.files - files) <= sampled.filesError,
      `${sampled.files} ± ${sampled.filesError} against ${files}`,
    );
    assert.ok(
      Math.abs(sampled.bytes - bytes) <= sampled.bytesError,
      `${sampled.bytes} ± ${sampled.bytesError} against ${bytes}`,
    );
    const full = await countStorage({
      storage,
      s3Endpoint: s3.endpoint,
      sampleFolders: 50,
    });
    assert.equal(full.method, "exact");
    assert.equal(full.files, files);
    assert.equal(full.bytes, bytes);
  });

  it("EC2 shapes priced from the spot price history (loopback endpoint); a deadline or a budget picks the shape", async (t) => {
    const archive = testArchive(t, { dumpsPerInstrument: 1 });
    const aws = await testEndpoint(t);
    const ec2 = aws.ec2Client();
    const plan = await planRebuild({
      storage: archive.root,
      provider: "ec2",
      ec2,
      instanceTypes: ["c6i.large", "c5.xlarge"],
      instanceCounts: [1, 10],
      sampleFiles: 5,
    });
    assert.equal(plan.shapes.length, 4);
    const mean = (type: string) => {
      const zones = Object.values(SPOT_PRICES[type]!);
      return zones.reduce((a, b) => a + b, 0) / zones.length;
    };
    const c5 = plan.shapes.find(
      (s) => s.instanceType === "c5.xlarge" && s.instances === 10,
    )!;
    assert.ok(Math.abs(c5.hourlyPrice - mean("c5.xlarge")) < 1e-9);
    assert.equal(
      c5.hourlyPriceHigh,
      Math.max(...Object.values(SPOT_PRICES["c5.xlarge"]!)),
    );
    assert.equal(c5.workersPerInstance, 4);
    assert.ok(Math.abs(c5.dollars - c5.hours * 10 * c5.hourlyPrice) < 1e-12);

    // Made-up shapes: the choice is arithmetic, not timing.
    const shape = (
      instances: number,
      hours: number,
      dollars: number,
    ): Shape => ({
      provider: "ec2",
      instances,
      instanceType: "c6i.large",
      workersPerInstance: 2,
      hourlyPrice: 0,
      hourlyPriceHigh: 0,
      hours,
      dollars,
      dollarsHigh: dollars * 1.1,
      databaseBound: false,
    });
    const shapes = [shape(1, 40, 10), shape(10, 5, 12), shape(100, 1, 30)];
    assert.equal(recommend(shapes, 6).shape?.instances, 10);
    assert.equal(recommend(shapes, undefined, 14).shape?.instances, 10);
    assert.equal(recommend(shapes, undefined, 50).shape?.instances, 100);
    const none = recommend(shapes, 0.5);
    assert.equal(none.shape, null);
    assert.match(none.reason, /no shape considered finishes within 0.5 h/);
  });
});
