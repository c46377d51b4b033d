/**
 * How fast lib/storage lists, in the same run as its baselines:
 *
 * 1. Disk: a tree of N empty files (100 per folder, 100 folders per parent)
 *    listed by DiskStorage (adaptive stats, and stats through the thread
 *    pool only) against `find DIR -type f -printf '%s %T@ %p\n' | wc -l`.
 *    Median of 3 interleaved rounds, warm cache.
 * 2. S3 on s3rver (loopback, one process): 5,000 small objects with
 *    Gemini-like names, listed with listConcurrency 1 and 16. s3rver scans its
 *    folder for every request, so this shows the overhead, not S3's speed.
 * 3. S3 simulated: an in-memory bucket of Gemini-like keys that answers
 *    ListObjectsV2 as S3 does, after a fixed latency per request, listed by
 *    the same lister (listKeys) with concurrency 1 and 16.
 *
 *   node --import tsx bench/storage-list.ts [files=200000] [--no-s3]
 *     [--sim-keys=500000] [--sim-latency-ms=20]
 */
import { execFile, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

import { freePort } from "../lib/stack/index.js";
import { DiskStorage } from "../lib/storage/disk.js";
import { openStorage, type Storage } from "../lib/storage/index.js";
import {
  compareKeys,
  type ListedObject,
  listKeys,
  type ListPage,
} from "../lib/storage/s3.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.split("=")[1]);
};
const files = Number(args.find((a) => /^\d+$/.test(a)) ?? 200_000);
const withS3 = !args.includes("--no-s3");
const simKeys = flag("sim-keys", 500_000);
const simLatency = flag("sim-latency-ms", 20);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const rate = (n: number, ms: number) =>
  `${Math.round((n / ms) * 1000).toLocaleString("en")} files/s`;

async function countListing(storage: Storage): Promise<number> {
  let n = 0;
  for await (const page of storage.list()) {
    n += page.length;
  }
  return n;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

// ---------------------------------------------------------------------------
// 1. Disk

async function disk(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "ff-bench-storage-"));
  try {
    const [, createMs] = await timed(async () => {
      for (let d = 0; d * 100 < files; d++) {
        const dir = join(
          root,
          String(Math.floor(d / 100)).padStart(4, "0"),
          String(d).padStart(6, "0"),
        );
        mkdirSync(dir, { recursive: true });
        for (let i = 0; i < 100 && d * 100 + i < files; i++) {
          const n = String(d * 100 + i).padStart(4, "0");
          closeSync(openSync(join(dir, `N20200127S${n}.fits`), "w"));
        }
      }
    });
    console.log(
      `disk: ${files.toLocaleString("en")} files in ${Math.ceil(files / 100)} folders (created in ${(createMs / 1000).toFixed(1)} s), ${root}`,
    );
    const find = async () => {
      const { stdout } = await promisify(execFile)(
        "sh",
        ["-c", `find "$1" -type f -printf '%s %T@ %p\\n' | wc -l`, "sh", root],
        { maxBuffer: 1024 * 1024 },
      );
      return Number(stdout.trim());
    };
    const runs = {
      find: [] as number[],
      adaptive: [] as number[],
      async: [] as number[],
    };
    await find(); // warm the cache
    for (let round = 0; round < 3; round++) {
      const [n1, ms1] = await timed(find);
      const [n2, ms2] = await timed(() =>
        countListing(new DiskStorage(root, { statMode: "adaptive" })),
      );
      const [n3, ms3] = await timed(() =>
        countListing(new DiskStorage(root, { statMode: "async" })),
      );
      if (n1 !== files || n2 !== files || n3 !== files) {
        throw new Error(`counts differ: find ${n1}, ours ${n2} and ${n3}`);
      }
      runs.find.push(ms1);
      runs.adaptive.push(ms2);
      runs.async.push(ms3);
    }
    const f = median(runs.find);
    const a = median(runs.adaptive);
    const p = median(runs.async);
    console.log(
      `  find -printf | wc -l          ${rate(files, f)} (${f.toFixed(0)} ms)`,
    );
    console.log(
      `  DiskStorage (adaptive)         ${rate(files, a)} (${a.toFixed(0)} ms), ${(f / a).toFixed(2)}x find`,
    );
    console.log(
      `  DiskStorage (thread pool only) ${rate(files, p)} (${p.toFixed(0)} ms), ${(f / p).toFixed(2)}x find`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// 2. s3rver

function geminiName(i: number): string {
  const site = i % 2 === 0 ? "N" : "S";
  const day = 1 + (Math.floor(i / 2) % 3650);
  const date = new Date(Date.UTC(2015, 0, day)).toISOString().slice(0, 10);
  const sequence = String(1 + Math.floor(i / 7300)).padStart(4, "0");
  return `${site}${date.replaceAll("-", "")}S${sequence}.fits.bz2`;
}

async function s3rver(): Promise<void> {
  const require = createRequire(import.meta.url);
  const bin = join(
    dirname(require.resolve("s3rver/package.json")),
    "bin",
    "s3rver.js",
  );
  const dir = mkdtempSync(join(tmpdir(), "ff-bench-s3-"));
  const port = await freePort();
  const bucket = "archive";
  const child = spawn(
    process.execPath,
    [
      "--openssl-legacy-provider",
      bin,
      "-d",
      dir,
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "--configure-bucket",
      bucket,
      "--silent",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(() => reject(new Error(output)), 15_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        if (/listening/i.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      // --silent may print nothing: poll the port instead.
      const poll = setInterval(() => {
        fetch(`http://127.0.0.1:${port}/`).then(
          () => {
            clearInterval(poll);
            clearTimeout(timer);
            resolve();
          },
          () => undefined,
        );
      }, 100);
      child.on("exit", () => clearInterval(poll));
    });
    process.env.AWS_ACCESS_KEY_ID ??= "S3RVER";
    process.env.AWS_SECRET_ACCESS_KEY ??= "S3RVER";
    const endpoint = `http://127.0.0.1:${port}`;
    const count = 5000;
    const writer = openStorage(`s3://${bucket}`, { s3Endpoint: endpoint });
    const [, uploadMs] = await timed(async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          for (let i = next++; i < count; i = next++) {
            await writer.write("", geminiName(i), Buffer.from("x"));
          }
        }),
      );
    });
    await writer.close();
    console.log(
      `s3rver: ${count} objects uploaded in ${(uploadMs / 1000).toFixed(1)} s`,
    );
    for (const listConcurrency of [1, 16]) {
      const times: number[] = [];
      for (let round = 0; round < 3; round++) {
        const storage = openStorage(`s3://${bucket}`, {
          s3Endpoint: endpoint,
          listConcurrency,
        });
        const [n, ms] = await timed(() => countListing(storage));
        await storage.close();
        if (n !== count) {
          throw new Error(`listed ${n} of ${count}`);
        }
        times.push(ms);
      }
      const ms = median(times);
      console.log(
        `  listConcurrency ${String(listConcurrency).padStart(2)}: ${ms.toFixed(0)} ms, ${rate(count, ms)}`,
      );
    }
  } finally {
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// 3. Simulated S3

function memoryBucket(keys: string[], latencyMs: number): ListPage {
  const sorted = [...keys].sort(compareKeys);
  return async (request) => {
    await new Promise((resolve) => setTimeout(resolve, latencyMs));
    const after = request.continuationToken ?? request.startAfter;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (after !== undefined && compareKeys(sorted[mid]!, after) <= 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    const objects: ListedObject[] = [];
    const prefixes: string[] = [];
    let i = lo;
    for (; i < sorted.length && objects.length + prefixes.length < 1000; i++) {
      const key = sorted[i]!;
      const slash = request.delimiter
        ? key.indexOf("/", request.prefix.length)
        : -1;
      if (slash >= 0) {
        const common = key.slice(0, slash + 1);
        prefixes.push(common);
        while (i + 1 < sorted.length && sorted[i + 1]!.startsWith(common)) {
          i++;
        }
      } else {
        objects.push({ key, size: 1, lastModified: new Date(0) });
      }
    }
    const more = i < sorted.length;
    return {
      objects,
      prefixes,
      truncated: more,
      continuationToken: more ? sorted[i - 1] : undefined,
    };
  };
}

async function simulated(): Promise<void> {
  const unique = Array.from({ length: simKeys }, (_, i) => geminiName(i));
  console.log(
    `simulated S3: ${unique.length.toLocaleString("en")} flat Gemini-like keys, ${simLatency} ms per ListObjectsV2 request`,
  );
  for (const concurrency of [1, 16]) {
    const listPage = memoryBucket(unique, simLatency);
    let requests = 0;
    const [n, ms] = await timed(async () => {
      let n = 0;
      for await (const page of listKeys(listPage, {
        prefix: "",
        recursive: true,
        concurrency,
        onRequest: () => requests++,
      })) {
        n += page.length;
      }
      return n;
    });
    if (n !== unique.length) {
      throw new Error(`listed ${n} of ${unique.length}`);
    }
    console.log(
      `  concurrency ${String(concurrency).padStart(2)}: ${(ms / 1000).toFixed(2)} s, ${requests} requests, ${rate(n, ms)}`,
    );
  }
}

await disk();
if (withS3) {
  await s3rver();
}
await simulated();
