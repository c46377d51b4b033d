/**
 * `rebuild plan`: before a run, what it will take. It counts the files and
 * bytes in storage (an S3 store with many folders by a random sample of
 * them, with the error stated), measures the per-byte cost of an ingest on
 * a sample of the real files (reading, checksums, decompression, headers
 * and rows: the worker's work without the database write) or takes it from
 * the last finished run's ledger, then estimates wall time and money for
 * fleet shapes (instances × type, priced from the spot price history) or
 * local workers, and recommends a shape for a deadline or a budget.
 */
import { execFile } from "node:child_process";
import { cpus } from "node:os";
import { join } from "node:path";

import type { EC2Client } from "@aws-sdk/client-ec2";

import { workerLaunchSpec } from "../../infra/launch-spec.js";
import { connect } from "../db/connect.js";
import { ExternalServiceError, UsageError } from "../errors.js";
import { readFitsStream } from "../fits/read.js";
import { archiveRows } from "../gemini/rows.js";
import { packageRoot } from "../paths.js";
import { isIngestable } from "../rebuild/names.js";
import {
  openStorage,
  S3Storage,
  type Storage,
  type StorageEntry,
} from "../storage/index.js";

export interface StorageCount {
  storage: string;
  files: number;
  bytes: number;
  /** exact: every file listed; sampled: folders sampled, the rest estimated. */
  method: "exact" | "sampled";
  /** Half-width of the 95% interval of `files` and `bytes` (0 when exact). */
  filesError: number;
  bytesError: number;
  foldersSampled: number;
  folders: number;
}

export interface CostSample {
  source: "sample" | "ledger";
  /** Files measured (sample) or finished (ledger). */
  files: number;
  bytes: number;
  /** Worker-seconds per byte, on this machine's cores (sample) or the run's workers (ledger). */
  secondsPerByte: number;
  /** Worker-seconds per file, the fixed part (ledger: 0; the per-byte figure carries it all). */
  secondsPerFile: number;
  /** The run the ledger rates came from. */
  run?: string;
}

export interface Shape {
  provider: "local" | "ec2";
  instances: number;
  instanceType: string;
  workersPerInstance: number;
  /** USD per instance-hour (spot, mean of the history window); 0 locally. */
  hourlyPrice: number;
  hourlyPriceHigh: number;
  hours: number;
  dollars: number;
  dollarsHigh: number;
  /** The central database's ceiling limits this shape, not its workers. */
  databaseBound: boolean;
}

export interface RebuildPlan {
  count: StorageCount;
  cost: CostSample;
  /** Seconds before the first worker works: start-up, or an instance's boot. */
  startupSeconds: number;
  /** The database's ceiling in files/s (docs/BENCHMARKS.md). */
  databaseFilesPerSecond: number;
  shapes: Shape[];
  recommended: Shape | null;
  reason: string;
}

export interface PlanOptions {
  storage: string;
  s3Endpoint?: string;
  /** Use the last finished run's rates from this database, when it has one; the start-up probe connects to it. */
  databaseUrl?: string;
  /** Local: the queue's Redis, which the start-up probe's workers connect to. */
  redisUrl?: string;
  /** Measure on a sample even when a ledger has rates. */
  measure?: boolean;
  /** Files to measure the ingest on (default 20). */
  sampleFiles?: number;
  /** S3: folders to list in full when there are more (default 50). */
  sampleFolders?: number;
  provider: "local" | "ec2";
  /** Local: worker counts to consider (default 1 … the cores). */
  localWorkers?: number[];
  /** EC2: instance counts and types to consider, priced by `ec2`. */
  instanceCounts?: number[];
  instanceTypes?: string[];
  ec2?: EC2Client;
  /** Days of spot price history to average (default 7). */
  priceDays?: number;
  deadlineHours?: number;
  budget?: number;
  databaseFilesPerSecond?: number;
  /** Seconds before the first worker works (default: local, measured; ec2, 120). */
  startupSeconds?: number;
  random?: () => number;
}

/** fitsfleet's batches through pgbouncer, docs/BENCHMARKS.md (the central database at fleet scale). */
export const DATABASE_FILES_PER_SECOND = 6000;
/**
 * Worker-seconds a file's database write and bookkeeping add to what a
 * sample measures: about 1,000 small files/s by two workers, docs/BENCHMARKS.md
 * (ingest), where reading is nearly free.
 */
export const DATABASE_SECONDS_PER_FILE = 0.002;
const LOCAL_STARTUP_FLOOR_SECONDS = 1;
const EC2_STARTUP_SECONDS = 120;

function inTotals(entries: StorageEntry[]) {
  let files = 0;
  let bytes = 0;
  for (const e of entries) {
    if (isIngestable(e.name)) {
      files++;
      bytes += e.size;
    }
  }
  return { files, bytes };
}

async function listAll(storage: Storage, path = "", recursive = true) {
  let files = 0;
  let bytes = 0;
  const sample: StorageEntry[] = [];
  for await (const page of storage.list({ path, recursive })) {
    const t = inTotals(page);
    files += t.files;
    bytes += t.bytes;
    for (const e of page) {
      if (isIngestable(e.name) && sample.length < 2000) {
        sample.push(e);
      }
    }
  }
  return { files, bytes, sample };
}

/** The top-level folders of an S3 storage (CommonPrefixes with the "/" delimiter). */
async function s3Folders(
  storage: S3Storage,
  endpoint?: string,
): Promise<string[]> {
  const { S3Client, ListObjectsV2Command } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    region:
      process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
    ...(endpoint === undefined ? {} : { endpoint, forcePathStyle: true }),
  });
  const base = storage.prefix === "" ? "" : `${storage.prefix}/`;
  const folders: string[] = [];
  try {
    let token: string | undefined;
    do {
      const out = await client.send(
        new ListObjectsV2Command({
          Bucket: storage.bucket,
          Prefix: base,
          Delimiter: "/",
          ContinuationToken: token,
        }),
      );
      for (const p of out.CommonPrefixes ?? []) {
        const folder = (p.Prefix ?? "").slice(base.length).replace(/\/$/, "");
        if (folder !== "") {
          folders.push(folder);
        }
      }
      token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
    } while (token !== undefined);
  } finally {
    client.destroy();
  }
  return folders;
}

/**
 * Files and bytes in storage. A disk is listed whole. An S3 store whose
 * top level has more folders than `sampleFolders` has that many of them,
 * chosen at random, listed whole; the rest is estimated from them (a
 * cluster sample: the mean per folder times the folders, with the 95%
 * interval from the folders' spread and the finite population correction).
 */
export async function countStorage(
  options: Pick<
    PlanOptions,
    "storage" | "s3Endpoint" | "sampleFolders" | "random"
  >,
): Promise<StorageCount & { sample: StorageEntry[] }> {
  const storage = openStorage(options.storage, {
    s3Endpoint: options.s3Endpoint,
  });
  try {
    const want = options.sampleFolders ?? 50;
    if (!(storage instanceof S3Storage)) {
      const all = await listAll(storage);
      return exact(storage.description, all);
    }
    const folders = await s3Folders(storage, options.s3Endpoint);
    if (folders.length <= want) {
      const all = await listAll(storage);
      return {
        ...exact(storage.description, all),
        folders: folders.length,
        foldersSampled: folders.length,
      };
    }
    const random = options.random ?? Math.random;
    const pool = [...folders];
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    const chosen = pool.slice(0, want);
    const top = await listAll(storage, "", false);
    const per: { files: number; bytes: number }[] = [];
    const sample: StorageEntry[] = [...top.sample];
    for (const folder of chosen) {
      const one = await listAll(storage, folder);
      per.push(one);
      sample.push(...one.sample.slice(0, 50));
    }
    const N = folders.length;
    const n = chosen.length;
    const estimate = (k: "files" | "bytes") => {
      const values = per.map((p) => p[k]);
      const mean = values.reduce((a, b) => a + b, 0) / n;
      const variance =
        values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1);
      const se = N * Math.sqrt((variance / n) * (1 - n / N));
      return { total: N * mean, error: 1.96 * se };
    };
    const files = estimate("files");
    const bytes = estimate("bytes");
    return {
      storage: storage.description,
      files: Math.round(files.total) + top.files,
      bytes: Math.round(bytes.total) + top.bytes,
      method: "sampled",
      filesError: Math.round(files.error),
      bytesError: Math.round(bytes.error),
      folders: N,
      foldersSampled: n,
      sample,
    };
  } finally {
    await storage.close();
  }

  function exact(
    description: string,
    all: { files: number; bytes: number; sample: StorageEntry[] },
  ) {
    return {
      storage: description,
      files: all.files,
      bytes: all.bytes,
      method: "exact" as const,
      filesError: 0,
      bytesError: 0,
      folders: 0,
      foldersSampled: 0,
      sample: all.sample,
    };
  }
}

/**
 * The ingest's cost on real files: each sampled file read from the
 * storage, checksummed, decompressed, scanned and turned into its rows, one
 * at a time, timed. The database write is not in it; a ledger's rates are.
 */
export async function measureSample(
  storageLocation: string,
  entries: StorageEntry[],
  options: { files: number; s3Endpoint?: string; random?: () => number },
): Promise<CostSample> {
  const random = options.random ?? Math.random;
  const pool = [...entries];
  const chosen: StorageEntry[] = [];
  while (chosen.length < options.files && pool.length > 0) {
    chosen.push(pool.splice(Math.floor(random() * pool.length), 1)[0]!);
  }
  const storage = openStorage(storageLocation, {
    s3Endpoint: options.s3Endpoint,
  });
  let seconds = 0;
  let bytes = 0;
  let files = 0;
  try {
    for (const e of chosen) {
      const started = performance.now();
      try {
        const stream = await storage.read(e.path, e.name);
        const read = await readFitsStream(e.name, stream);
        archiveRows(read.structure, e.name.replace(/\.bz2$/, ""));
      } catch {
        // A broken file costs what it took to find out, as in a rebuild.
      }
      seconds += (performance.now() - started) / 1000;
      bytes += e.size;
      files++;
    }
  } finally {
    await storage.close();
  }
  return {
    source: "sample",
    files,
    bytes,
    secondsPerByte: bytes === 0 ? 0 : seconds / bytes,
    secondsPerFile: DATABASE_SECONDS_PER_FILE,
  };
}

/** The newest finished run's rates from its ledger: worker-seconds per byte. */
export async function ledgerRates(
  databaseUrl: string,
): Promise<CostSample | undefined> {
  const client = await connect(databaseUrl, {
    applicationName: "fitsfleet rebuild plan",
  });
  try {
    const { rows: tables } = await client.query<{ ok: boolean }>(
      "SELECT to_regclass('fitsfleet.run_steps') IS NOT NULL AS ok",
    );
    if (tables[0]?.ok !== true) {
      return undefined;
    }
    const { rows } = await client.query<{
      id: string;
      options: { instances?: number; workersPerInstance?: number };
      drain: { seconds?: number; filesPerSecond?: number } | null;
      enqueue: { bytes?: number; matched?: number } | null;
    }>(
      `SELECT r.id, r.options,
              (SELECT figures FROM fitsfleet.run_steps WHERE run_id = r.id AND step = 'drain') AS drain,
              (SELECT figures FROM fitsfleet.run_steps WHERE run_id = r.id AND step = 'enqueue') AS enqueue
         FROM fitsfleet.runs r
        WHERE r.state = 'succeeded'
        ORDER BY r.ended_at DESC LIMIT 1`,
    );
    const r = rows[0];
    const files = r?.enqueue?.matched ?? 0;
    const rate = r?.drain?.filesPerSecond ?? 0;
    const bytes = r?.enqueue?.bytes ?? 0;
    if (r === undefined || rate <= 0 || bytes <= 0) {
      return undefined;
    }
    // From the first file started to the last finished: the workers' time
    // at work, without their start-up (the plan adds its own).
    const seconds = files / rate;
    const workers =
      (r.options.instances ?? 1) * (r.options.workersPerInstance ?? 1);
    return {
      source: "ledger",
      files,
      bytes,
      secondsPerByte: (seconds * workers) / bytes,
      secondsPerFile: 0,
      run: r.id,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Spot USD per hour by type over the last `days`: the mean and the highest, over every zone. */
export async function spotPrices(
  ec2: EC2Client,
  types: string[],
  days: number,
): Promise<Map<string, { mean: number; high: number; vcpus: number }>> {
  const { DescribeSpotPriceHistoryCommand, DescribeInstanceTypesCommand } =
    await import("@aws-sdk/client-ec2");
  const { awsCall } = await import("../../infra/aws.js");
  const described = await awsCall(
    ec2,
    {
      service: "ec2",
      action: "DescribeInstanceTypes",
      resource: types.join(","),
      flag: "--instance-types",
    },
    () =>
      ec2.send(
        new DescribeInstanceTypesCommand({
          InstanceTypes: types as never[],
        }),
      ),
  );
  const vcpus = new Map(
    (described.InstanceTypes ?? []).map((t) => [
      String(t.InstanceType),
      t.VCpuInfo?.DefaultVCpus ?? 1,
    ]),
  );
  const prices = new Map<string, number[]>();
  let token: string | undefined;
  do {
    const page = await awsCall(
      ec2,
      {
        service: "ec2",
        action: "DescribeSpotPriceHistory",
        resource: types.join(","),
        flag: "--instance-types",
      },
      () =>
        ec2.send(
          new DescribeSpotPriceHistoryCommand({
            InstanceTypes: types as never[],
            ProductDescriptions: ["Linux/UNIX"],
            StartTime: new Date(Date.now() - days * 86_400_000),
            EndTime: new Date(),
            NextToken: token,
          }),
        ),
    );
    for (const p of page.SpotPriceHistory ?? []) {
      const list = prices.get(String(p.InstanceType)) ?? [];
      list.push(Number(p.SpotPrice));
      prices.set(String(p.InstanceType), list);
    }
    token = page.NextToken === "" ? undefined : page.NextToken;
  } while (token !== undefined);
  const out = new Map<string, { mean: number; high: number; vcpus: number }>();
  for (const t of types) {
    const list = prices.get(t) ?? [];
    if (list.length > 0) {
      out.set(t, {
        mean: list.reduce((a, b) => a + b, 0) / list.length,
        high: Math.max(...list),
        vcpus: vcpus.get(t) ?? 1,
      });
    }
  }
  if (out.size === 0) {
    throw new UsageError(
      `no spot price history for ${types.join(", ")} in the last ${days} day(s)`,
      { suggestion: "check --instance-types and the region" },
    );
  }
  return out;
}

/** Wall time and money of one shape for the counted work. */
export function estimateShape(
  work: { files: number; bytes: number; cost: CostSample },
  shape: Omit<Shape, "hours" | "dollars" | "dollarsHigh" | "databaseBound">,
  startupSeconds: number,
  databaseFilesPerSecond: number,
): Shape {
  const workerSeconds =
    work.bytes * work.cost.secondsPerByte +
    work.files * work.cost.secondsPerFile;
  const workers = shape.instances * shape.workersPerInstance;
  const byWorkers = workerSeconds / Math.max(1, workers);
  const byDatabase = work.files / databaseFilesPerSecond;
  const seconds = startupSeconds + Math.max(byWorkers, byDatabase);
  const hours = seconds / 3600;
  return {
    ...shape,
    hours,
    dollars: hours * shape.instances * shape.hourlyPrice,
    dollarsHigh: hours * shape.instances * shape.hourlyPriceHigh,
    databaseBound: byDatabase > byWorkers,
  };
}

/** The shape for a deadline (the cheapest that meets it), a budget (the fastest within it), both, or neither (the cheapest of the fastest tenth). */
export function recommend(
  shapes: Shape[],
  deadlineHours?: number,
  budget?: number,
): { shape: Shape | null; reason: string } {
  const fits = shapes.filter(
    (s) =>
      (deadlineHours === undefined || s.hours <= deadlineHours) &&
      (budget === undefined || s.dollarsHigh <= budget),
  );
  if (fits.length === 0) {
    return {
      shape: null,
      reason: `no shape considered finishes within ${deadlineHours === undefined ? "any time" : `${deadlineHours} h`}${budget === undefined ? "" : ` for $${budget} or less`}; consider more instances, bigger types, or a later deadline`,
    };
  }
  const byCost = (a: Shape, b: Shape) =>
    a.dollars - b.dollars || a.hours - b.hours;
  const byTime = (a: Shape, b: Shape) =>
    a.hours - b.hours || a.dollars - b.dollars;
  if (deadlineHours !== undefined) {
    const s = [...fits].sort(byCost)[0]!;
    return {
      shape: s,
      reason: `the cheapest shape that finishes within ${deadlineHours} h${budget === undefined ? "" : ` and $${budget}`}`,
    };
  }
  if (budget !== undefined) {
    const s = [...fits].sort(byTime)[0]!;
    return {
      shape: s,
      reason: `the fastest shape within $${budget} (at the highest price in the history)`,
    };
  }
  const fastest = [...fits].sort(byTime)[0]!;
  const near = fits.filter((s) => s.hours <= fastest.hours * 1.1);
  return {
    shape: near.sort(byCost)[0]!,
    reason:
      "no --deadline or --budget: the cheapest of the shapes within 10% of the fastest",
  };
}

/**
 * A local fleet's start-up on this machine now: `workers` real ingest
 * workers started at once, as the run starts them (the same launch spec),
 * each loading what a worker loads and connecting to the database and
 * Redis it is given (`worker ingest --startup-probe`), then exiting; plus
 * a second for the drain's first look. A probe that fails is an error: a
 * run on these endpoints would fail the same way.
 */
export async function localStartup(
  workers = 1,
  endpoints: { databaseUrl?: string; redisUrl?: string } = {},
): Promise<number> {
  const cli = join(packageRoot(), "dist", "cli", "main.js");
  const probe = (n: number) => {
    const spec = workerLaunchSpec({
      role: "ingest",
      name: `plan-startup-${n}`,
      // Replaced below: the spec wants one, the probe may have none.
      databaseUrl: "",
      redisUrl: endpoints.redisUrl,
      logLevel: "error",
      extraArgs: ["--startup-probe"],
    });
    const env: NodeJS.ProcessEnv = { ...process.env, ...spec.env };
    delete env.FITSFLEET_DATABASE_URL;
    delete env.FITSFLEET_REDIS_URL;
    if (endpoints.databaseUrl !== undefined) {
      env.FITSFLEET_DATABASE_URL = endpoints.databaseUrl;
    }
    if (endpoints.redisUrl !== undefined) {
      env.FITSFLEET_REDIS_URL = endpoints.redisUrl;
    }
    return new Promise<void>((resolve, reject) => {
      execFile(
        process.execPath,
        [...spec.nodeOptions, cli, ...spec.argv],
        // The URLs in the environment, never in argv.
        { env, timeout: 120_000 },
        (error, _stdout, stderr) => {
          if (error === null) {
            resolve();
            return;
          }
          // The CLI's own error line (secrets masked there), not its hint.
          const lines = stderr.trim().split("\n");
          const why = (
            lines.find((l) => l.startsWith("error: ")) ??
            lines.at(-1) ??
            error.message
          ).replace(/^error: /, "");
          reject(
            new ExternalServiceError(
              "worker",
              `timing a worker's start-up: \`fitsfleet worker ingest --startup-probe\` failed (${why})`,
              {
                suggestion:
                  "a run's workers would fail to start the same way: check --database-url and --redis-url (or pass the plan no database)",
              },
            ),
          );
        },
      );
    });
  };
  const started = performance.now();
  // As many at once as the run starts: they share the cores as they will then.
  await Promise.all(
    Array.from({ length: Math.max(1, workers) }, (_, i) => probe(i + 1)),
  );
  return LOCAL_STARTUP_FLOOR_SECONDS + (performance.now() - started) / 1000;
}

export async function planRebuild(options: PlanOptions): Promise<RebuildPlan> {
  const counted = await countStorage(options);
  const { sample, ...count } = counted;
  let cost: CostSample | undefined;
  if (options.measure !== true && options.databaseUrl !== undefined) {
    cost = await ledgerRates(options.databaseUrl);
  }
  cost ??= await measureSample(options.storage, sample, {
    files: options.sampleFiles ?? 20,
    s3Endpoint: options.s3Endpoint,
    random: options.random,
  });
  const databaseFilesPerSecond =
    options.databaseFilesPerSecond ?? DATABASE_FILES_PER_SECOND;
  const work = { files: count.files, bytes: count.bytes, cost };
  const shapes: Shape[] = [];
  let startupSeconds: number;
  if (options.provider === "local") {
    const counts =
      options.localWorkers ??
      Array.from({ length: Math.max(1, cpus().length) }, (_, i) => i + 1);
    startupSeconds =
      options.startupSeconds ??
      (await localStartup(Math.max(...counts), {
        databaseUrl: options.databaseUrl,
        redisUrl: options.redisUrl,
      }));
    for (const n of counts) {
      shapes.push(
        estimateShape(
          work,
          {
            provider: "local",
            instances: n,
            instanceType: "local",
            workersPerInstance: 1,
            hourlyPrice: 0,
            hourlyPriceHigh: 0,
          },
          startupSeconds,
          databaseFilesPerSecond,
        ),
      );
    }
  } else {
    if (options.ec2 === undefined || options.instanceTypes === undefined) {
      throw new UsageError("an EC2 plan needs --instance-types and a region");
    }
    startupSeconds = EC2_STARTUP_SECONDS;
    const prices = await spotPrices(
      options.ec2,
      options.instanceTypes,
      options.priceDays ?? 7,
    );
    for (const [type, price] of prices) {
      for (const n of options.instanceCounts ?? [
        1, 2, 5, 10, 20, 50, 100, 200, 500,
      ]) {
        shapes.push(
          estimateShape(
            work,
            {
              provider: "ec2",
              instances: n,
              instanceType: type,
              workersPerInstance: price.vcpus,
              hourlyPrice: price.mean,
              hourlyPriceHigh: price.high,
            },
            startupSeconds,
            databaseFilesPerSecond,
          ),
        );
      }
    }
  }
  const { shape, reason } = recommend(
    shapes,
    options.deadlineHours,
    options.budget,
  );
  return {
    count,
    cost,
    startupSeconds,
    databaseFilesPerSecond,
    shapes,
    recommended: shape,
    reason,
  };
}
