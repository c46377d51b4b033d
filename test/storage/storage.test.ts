/**
 * lib/storage: the same behavioural tests against a temporary folder (with
 * both ways of stat'ing) and a real S3 endpoint (s3rver, one per run, a fresh
 * prefix per test); then what only one of them has (atomic writes and
 * symbolic links on disk; metadata, multipart uploads, unreachable endpoints
 * and missing buckets on S3); and the concurrent S3 lister against an
 * in-memory bucket that orders keys as S3 does, for exactness on key sets
 * s3rver cannot hold or order.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it, type TestContext } from "node:test";
import { promisify } from "node:util";

import {
  CreateBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

import {
  ExternalServiceError,
  FitsfleetError,
  PreconditionError,
  UsageError,
} from "../../lib/errors.js";
import { packageRoot } from "../../lib/paths.js";
import { freePort } from "../../lib/stack/index.js";
import { DiskStorage, TEMP_PREFIX } from "../../lib/storage/disk.js";
import {
  openStorage,
  type Storage,
  type StorageEntry,
} from "../../lib/storage/index.js";
import {
  compareKeys,
  type ListedObject,
  listKeys,
  type ListPage,
  type ListPageRequest,
  S3Storage,
  splitPoints,
} from "../../lib/storage/s3.js";
import { testS3 } from "../helpers/s3.js";
import { tempDir } from "../helpers/tmp.js";

// ---------------------------------------------------------------------------
// Backends

interface Backend {
  storage: Storage;
  /** Places a file behind the storage's back (not through `write`). */
  seed(path: string, name: string, body: Buffer | string): Promise<void>;
}

type MakeBackend = (t: TestContext) => Promise<Backend>;

function diskBackend(statMode: "adaptive" | "async"): MakeBackend {
  return async (t) => {
    const root = tempDir(t, "ff-storage-");
    return {
      storage: new DiskStorage(root, { statMode }),
      seed: async (path, name, body) => {
        const dir = join(root, path);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, name), body);
      },
    };
  };
}

let prefixes = 0;

function s3Backend(s3: Awaited<ReturnType<typeof testS3>>): MakeBackend {
  return async (t) => {
    const prefix = `run${++prefixes}/root`;
    const storage = openStorage(`s3://${s3.bucket}/${prefix}`, {
      s3Endpoint: s3.endpoint,
    });
    t.after(() => storage.close());
    return {
      storage,
      seed: async (path, name, body) => {
        await s3.client.send(
          new PutObjectCommand({
            Bucket: s3.bucket,
            Key: [prefix, path, name].filter((p) => p !== "").join("/"),
            Body: typeof body === "string" ? Buffer.from(body) : body,
          }),
        );
      },
    };
  };
}

/** Seeds `path/name` keys 16 at a time. */
async function seedMany(
  backend: Backend,
  names: readonly string[],
  body = "x",
): Promise<void> {
  const queue = [...names];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let name = queue.pop(); name !== undefined; name = queue.pop()) {
        const slash = name.lastIndexOf("/");
        await backend.seed(
          slash < 0 ? "" : name.slice(0, slash),
          name.slice(slash + 1),
          body,
        );
      }
    }),
  );
}

async function listAll(
  storage: Storage,
  options: Parameters<Storage["list"]>[0] = {},
): Promise<{ entries: StorageEntry[]; pages: number[] }> {
  const entries: StorageEntry[] = [];
  const pages: number[] = [];
  for await (const page of storage.list(options)) {
    pages.push(page.length);
    entries.push(...page);
  }
  return { entries, pages };
}

const show = (e: StorageEntry) =>
  `${e.path === "" ? "" : `${e.path}/`}${e.name}`;

async function listed(
  storage: Storage,
  options: Parameters<Storage["list"]>[0] = {},
): Promise<string[]> {
  const { entries } = await listAll(storage, options);
  const names = entries.map(show).sort();
  assert.equal(new Set(names).size, names.length, "no entry twice");
  return names;
}

async function bytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A stream of `body` in small chunks, with a pause between them. */
function slowStream(body: Buffer, chunk = 64 * 1024, pauseMs = 5): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0; at < body.length; at += chunk) {
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        yield body.subarray(at, at + chunk);
      }
    })(),
  );
}

const TREE: Record<string, string> = {
  "N20200127S0023.fits": "top level",
  "2020/N20200128S0001.fits.bz2": "compressed",
  "2020/01/N20200129S0002.fits": "deeper",
  "2020/01/with space.fits": "spaces",
  "2020/01/ünïcødé 日本.fits": "unicode",
  "masks/GN2020A-Q-1-mask.fits": "mask",
};

async function seedTree(backend: Backend): Promise<void> {
  for (const [rel, body] of Object.entries(TREE)) {
    const slash = rel.lastIndexOf("/");
    await backend.seed(
      slash < 0 ? "" : rel.slice(0, slash),
      rel.slice(slash + 1),
      body,
    );
  }
}

// ---------------------------------------------------------------------------
// The behaviour both kinds share

async function behaviour(t: TestContext, make: MakeBackend): Promise<void> {
  await t.test(
    "lists nested paths, names with spaces and unicode",
    async (t) => {
      const backend = await make(t);
      await seedTree(backend);
      const { entries } = await listAll(backend.storage);
      assert.deepEqual(entries.map(show).sort(), Object.keys(TREE).sort());
      for (const entry of entries) {
        const body = TREE[show(entry)]!;
        assert.equal(entry.size, Buffer.byteLength(body), show(entry));
        assert.ok(entry.lastModified instanceof Date);
        assert.ok(Math.abs(entry.lastModified.getTime() - Date.now()) < 3600e3);
        assert.equal(entry.md5, undefined, "listings carry no md5");
        assert.ok(!entry.path.startsWith("/") && !entry.path.endsWith("/"));
      }
    },
  );

  await t.test(
    "`path` restricts to a subtree; `recursive: false` to one level",
    async (t) => {
      const backend = await make(t);
      await seedTree(backend);
      const { storage } = backend;
      const under2020 = Object.keys(TREE).filter((k) => k.startsWith("2020/"));
      assert.deepEqual(
        await listed(storage, { path: "2020" }),
        under2020.sort(),
      );
      assert.deepEqual(
        await listed(storage, { path: "/2020/" }),
        under2020.sort(),
      );
      assert.deepEqual(await listed(storage, { path: "2020/01" }), [
        "2020/01/N20200129S0002.fits",
        "2020/01/with space.fits",
        "2020/01/ünïcødé 日本.fits",
      ]);
      assert.deepEqual(await listed(storage, { recursive: false }), [
        "N20200127S0023.fits",
      ]);
      assert.deepEqual(
        await listed(storage, { path: "2020", recursive: false }),
        ["2020/N20200128S0001.fits.bz2"],
      );
      // "20" is a prefix of "2020" as a string, never as a folder.
      if (storage.kind === "disk") {
        await assert.rejects(
          listed(storage, { path: "20" }),
          PreconditionError,
        );
      } else {
        assert.deepEqual(await listed(storage, { path: "20" }), []);
      }
      await assert.rejects(
        listed(storage, { path: "2020/../masks" }),
        UsageError,
      );
    },
  );

  await t.test(
    "stat: size and time of a file, undefined when missing",
    async (t) => {
      const backend = await make(t);
      await seedTree(backend);
      const { storage } = backend;
      const entry = await storage.stat("2020/01", "with space.fits");
      assert.ok(entry !== undefined);
      assert.equal(entry.path, "2020/01");
      assert.equal(entry.name, "with space.fits");
      assert.equal(entry.size, Buffer.byteLength("spaces"));
      assert.ok(entry.lastModified instanceof Date);
      assert.ok((await storage.stat("", "N20200127S0023.fits")) !== undefined);
      assert.equal(await storage.stat("", "N20990101S0001.fits"), undefined);
      assert.equal(await storage.stat("nowhere/at/all", "x.fits"), undefined);
      assert.equal(
        await storage.stat("", "2020"),
        undefined,
        "a folder is not a file",
      );
      await assert.rejects(storage.stat("..", "x.fits"), UsageError);
      await assert.rejects(storage.stat("", "a/b.fits"), UsageError);
      await assert.rejects(storage.stat("", ".."), UsageError);
    },
  );

  await t.test("read returns the exact stored bytes", async (t) => {
    const backend = await make(t);
    const body = randomBytes(700_000);
    await backend.seed("2021/02", "N20210201S0001.fits.bz2", body);
    const stream = await backend.storage.read(
      "2021/02",
      "N20210201S0001.fits.bz2",
    );
    assert.ok((await bytes(stream)).equals(body));
    await assert.rejects(
      backend.storage.read("2021/02", "missing.fits"),
      (error: unknown) =>
        error instanceof FitsfleetError &&
        error.code === "storage-not-found" &&
        error.message.includes("missing.fits"),
    );
  });

  await t.test(
    "write stores a Buffer or a stream whole, replacing what was there",
    async (t) => {
      const backend = await make(t);
      const { storage } = backend;
      const small = Buffer.from("preview bytes");
      await storage.write("previews/2020", "N20200127S0023.jpg", small);
      assert.ok(
        (
          await bytes(await storage.read("previews/2020", "N20200127S0023.jpg"))
        ).equals(small),
      );
      const big = randomBytes(1_500_000);
      await storage.write(
        "previews/2020",
        "N20200127S0023.jpg",
        slowStream(big, 100_000, 1),
      );
      assert.ok(
        (
          await bytes(await storage.read("previews/2020", "N20200127S0023.jpg"))
        ).equals(big),
      );
      assert.equal(
        (await storage.stat("previews/2020", "N20200127S0023.jpg"))?.size,
        big.length,
      );
      await storage.write("", "empty.fits", Buffer.alloc(0));
      assert.equal((await storage.stat("", "empty.fits"))?.size, 0);
      assert.deepEqual(await listed(storage), [
        "empty.fits",
        "previews/2020/N20200127S0023.jpg",
      ]);
      // md5 metadata round trip (S3); disk has nowhere to keep it.
      const md5 = createHash("md5").update(small).digest("hex");
      await storage.write("", "with-md5.fits", small, { md5 });
      const stat = await storage.stat("", "with-md5.fits");
      assert.equal(stat?.md5, storage.kind === "s3" ? md5 : undefined);
    },
  );

  await t.test("pages of at most 1000 entries, every entry once", async (t) => {
    const backend = await make(t);
    const names: string[] = [];
    // Flat, like the Gemini bucket, plus one folder that needs paging too.
    for (let i = 0; i < 1500; i++) {
      const day = String(1 + (i % 28)).padStart(2, "0");
      const name = `${i % 2 === 0 ? "N" : "S"}202001${day}S${String(i).padStart(4, "0")}.fits`;
      names.push(name);
    }
    for (let i = 0; i < 1100; i++) {
      names.push(
        `2019/N201901${String(1 + (i % 28)).padStart(2, "0")}S${String(i).padStart(4, "0")}.fits`,
      );
    }
    await seedMany(backend, names);
    const { entries, pages } = await listAll(backend.storage);
    assert.ok(
      pages.every((n) => n > 0 && n <= 1000),
      `page sizes ${pages.join(",")}`,
    );
    assert.ok(pages.length >= 3);
    const got = entries.map(show).sort();
    assert.equal(new Set(got).size, got.length, "no entry twice");
    assert.deepEqual(got, [...names].sort());
    assert.equal(
      (await listed(backend.storage, { path: "2019" })).length,
      1100,
    );
    assert.equal(
      (await listed(backend.storage, { recursive: false })).length,
      1500,
    );
  });

  await t.test(
    "stopping early or aborting ends the listing cleanly",
    async (t) => {
      const backend = await make(t);
      await seedMany(
        backend,
        Array.from({ length: 1200 }, (_, i) => `d${i % 3}/f${i}.fits`),
      );
      for await (const page of backend.storage.list()) {
        assert.ok(page.length > 0);
        break;
      }
      const aborted = AbortSignal.abort(new Error("stop here"));
      await assert.rejects(
        listAll(backend.storage, { signal: aborted }),
        /stop here/,
      );
      const controller = new AbortController();
      await assert.rejects(
        (async () => {
          for await (const _page of backend.storage.list({
            signal: controller.signal,
          })) {
            controller.abort(new Error("stopped midway"));
          }
        })(),
        /stopped midway/,
      );
    },
  );
}

// ---------------------------------------------------------------------------

describe("storage on disk", () => {
  it("behaves as specified (adaptive stats)", async (t) => {
    await behaviour(t, diskBackend("adaptive"));
  });

  it("behaves as specified (stats through the thread pool)", async (t) => {
    await behaviour(t, diskBackend("async"));
  });

  it("reads through one reused buffer with readTransient, in order, and returns it after a file", async (t) => {
    const root = tempDir(t);
    const storage = openStorage(root);
    assert.ok(storage.readTransient !== undefined);
    // Two and a half reads' worth, so the buffer is reused within a file.
    const body = randomBytes(2.5 * 1024 * 1024);
    await storage.write("2021/02", "N20210201S0002.fits", body);
    const read = async () => {
      const views: Uint8Array[] = [];
      const hash = createHash("md5");
      let size = 0;
      const { entry, bytes } = await storage.readTransient!(
        "2021/02",
        "N20210201S0002.fits",
      );
      assert.equal(entry.size, body.length);
      assert.equal(entry.name, "N20210201S0002.fits");
      for await (const chunk of bytes) {
        views.push(chunk);
        hash.update(chunk);
        size += chunk.length;
      }
      return { views, md5: hash.digest("hex"), size };
    };
    const first = await read();
    assert.equal(first.size, body.length);
    assert.equal(first.md5, createHash("md5").update(body).digest("hex"));
    assert.equal(first.views.length, 3);
    assert.ok(first.views.every((v) => v.buffer === first.views[0]!.buffer));
    const second = await read();
    assert.equal(second.views[0]!.buffer, first.views[0]!.buffer);
    await assert.rejects(
      storage.readTransient!("2021/02", "missing.fits"),
      (error: unknown) =>
        error instanceof FitsfleetError &&
        error.code === "storage-not-found" &&
        error.message.includes("missing.fits"),
    );
  });

  it("writes atomically: no partial file is ever visible, no temporary file remains", async (t) => {
    const root = tempDir(t);
    const storage = openStorage(root);
    const dir = join(root, "previews");
    const body = randomBytes(2_000_000);
    const writing = storage.write(
      "previews",
      "N1.jpg",
      slowStream(body, 100_000, 10),
    );
    const seen: string[][] = [];
    let done = false;
    void writing.finally(() => {
      done = true;
    });
    while (!done) {
      if (existsSync(dir)) {
        seen.push(readdirSync(dir));
        if (existsSync(join(dir, "N1.jpg"))) {
          // Visible means complete.
          assert.equal(readFileSync(join(dir, "N1.jpg")).length, body.length);
        }
        assert.deepEqual(
          await listed(storage),
          done ? ["previews/N1.jpg"] : [],
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    await writing;
    assert.ok(
      seen.some((names) => names.some((n) => n.startsWith(TEMP_PREFIX))),
      "the write went through a temporary file",
    );
    assert.deepEqual(readdirSync(dir), ["N1.jpg"]);
    assert.ok(readFileSync(join(dir, "N1.jpg")).equals(body));

    // A failing source leaves neither the file nor the temporary behind.
    const failing = Readable.from(
      (async function* () {
        yield Buffer.from("partial");
        throw new Error("source broke");
      })(),
    );
    await assert.rejects(
      storage.write("previews", "N2.jpg", failing),
      /source broke/,
    );
    assert.deepEqual(readdirSync(dir), ["N1.jpg"]);
  });

  it("follows symbolic links to files and folders, but not round a loop", async (t) => {
    const root = tempDir(t);
    const outside = tempDir(t);
    mkdirSync(join(root, "a/b"), { recursive: true });
    writeFileSync(join(root, "a/b/real.fits"), "12345");
    writeFileSync(join(outside, "other.fits"), "1");
    symlinkSync(join(root, "a/b/real.fits"), join(root, "a/link.fits"));
    symlinkSync(join(root, "nowhere.fits"), join(root, "a/dangling.fits"));
    symlinkSync("..", join(root, "a/b/up")); // a/b/up → a: a loop
    symlinkSync(outside, join(root, "elsewhere"));
    const storage = openStorage(root);
    const { entries } = await listAll(storage);
    assert.deepEqual(entries.map(show).sort(), [
      "a/b/real.fits",
      "a/link.fits",
      "elsewhere/other.fits",
    ]);
    assert.equal(entries.find((e) => e.name === "link.fits")?.size, 5);
    assert.equal((await storage.stat("a", "link.fits"))?.size, 5);
    assert.equal(await storage.stat("a", "dangling.fits"), undefined);
  });

  it("names an unreadable folder instead of skipping it", async (t) => {
    const root = tempDir(t);
    mkdirSync(join(root, "open"), { recursive: true });
    mkdirSync(join(root, "locked"), { recursive: true });
    writeFileSync(join(root, "open/a.fits"), "a");
    writeFileSync(join(root, "locked/b.fits"), "b");
    chmodSync(root, 0o755);
    chmodSync(join(root, "open"), 0o755);
    chmodSync(join(root, "locked"), 0o000);
    let outcome: { code?: string; message?: string; count?: number } = {};
    try {
      if (process.getuid?.() === 0) {
        // root reads everything: list as nobody, through the built module.
        const module = join(
          packageRoot(),
          "dist",
          "lib",
          "storage",
          "index.js",
        );
        const script = `
        const { openStorage } = await import(${JSON.stringify(module)});
        try {
          let count = 0;
          for await (const page of openStorage(${JSON.stringify(root)}).list()) count += page.length;
          console.log(JSON.stringify({ count }));
        } catch (e) {
          console.log(JSON.stringify({ code: e.code, message: e.message }));
        }`;
        const { stdout } = await promisify(execFile)("runuser", [
          "-u",
          "nobody",
          "--",
          process.execPath,
          "--input-type=module",
          "-e",
          script,
        ]);
        outcome = JSON.parse(stdout) as typeof outcome;
      } else {
        try {
          outcome = { count: (await listed(openStorage(root))).length };
        } catch (error) {
          outcome = {
            code: (error as FitsfleetError).code,
            message: (error as Error).message,
          };
        }
      }
    } finally {
      // Let tempDir remove it.
      chmodSync(join(root, "locked"), 0o755);
    }
    assert.equal(outcome.code, "storage-denied", JSON.stringify(outcome));
    assert.match(outcome.message ?? "", new RegExp(`${join(root, "locked")}`));
  });

  it("reports a missing storage root clearly", async (t) => {
    const root = join(tempDir(t), "not-mounted");
    await assert.rejects(
      listed(openStorage(root)),
      (error: unknown) =>
        error instanceof PreconditionError && error.message.includes(root),
    );
  });
});

describe("storage on S3", () => {
  it("behaves as specified (s3rver)", async (t) => {
    const s3 = await testS3(t);
    await behaviour(t, s3Backend(s3));

    await t.test(
      "stat returns the md5 metadata that upload_file sets",
      async (t) => {
        const { storage } = await s3Backend(s3)(t);
        const body = Buffer.from("a FITS file");
        const md5 = createHash("md5").update(body).digest("hex");
        await s3.client.send(
          new PutObjectCommand({
            Bucket: s3.bucket,
            Key: `${(storage as S3Storage).prefix}/N20200127S0023.fits`,
            Body: body,
            Metadata: { md5 },
          }),
        );
        assert.equal((await storage.stat("", "N20200127S0023.fits"))?.md5, md5);
        const { entries } = await listAll(storage);
        assert.equal(entries[0]?.md5, undefined);
      },
    );

    await t.test(
      "a large stream goes up in parts, with its md5 metadata",
      async () => {
        // Our own client, so the commands sent can be counted.
        const client = new S3Client({
          endpoint: s3.endpoint,
          region: "us-east-1",
          forcePathStyle: true,
        });
        const commands: string[] = [];
        client.middlewareStack.add(
          (next, context) => (args) => {
            commands.push(context.commandName ?? "?");
            return next(args);
          },
          { step: "initialize" },
        );
        const storage = new S3Storage(`s3://${s3.bucket}/multipart`, {
          client,
        });
        const body = randomBytes(9 * 1024 * 1024 + 12345);
        const md5 = createHash("md5").update(body).digest("hex");
        await storage.write(
          "big",
          "N1.fits",
          slowStream(body, 1024 * 1024, 0),
          { md5 },
        );
        assert.deepEqual(commands, [
          "CreateMultipartUploadCommand",
          "UploadPartCommand",
          "UploadPartCommand",
          "CompleteMultipartUploadCommand",
        ]);
        const head = await s3.client.send(
          new HeadObjectCommand({
            Bucket: s3.bucket,
            Key: "multipart/big/N1.fits",
          }),
        );
        assert.equal(head.ContentLength, body.length);
        try {
          assert.equal((await storage.stat("big", "N1.fits"))?.md5, md5);
          assert.ok(
            (await bytes(await storage.read("big", "N1.fits"))).equals(body),
          );
        } finally {
          await storage.close();
        }
      },
    );

    await t.test(
      "a whole bucket (no prefix), listed with and without concurrency",
      async (t) => {
        const bucket = "whole-bucket";
        await s3.client.send(new CreateBucketCommand({ Bucket: bucket }));
        const keys: string[] = [];
        for (let i = 0; i < 1300; i++) {
          keys.push(
            i % 10 === 0
              ? `sub/dir/N${i}.fits`
              : `N2020${String(i).padStart(6, "0")}.fits`,
          );
        }
        await Promise.all(
          Array.from({ length: 16 }, async (_, w) => {
            for (let i = w; i < keys.length; i += 16) {
              await s3.client.send(
                new PutObjectCommand({
                  Bucket: bucket,
                  Key: keys[i],
                  Body: "x",
                }),
              );
            }
          }),
        );
        for (const listConcurrency of [1, 16]) {
          const storage = openStorage(`s3://${bucket}`, {
            s3Endpoint: s3.endpoint,
            listConcurrency,
          });
          t.after(() => storage.close());
          assert.equal(storage.description, `s3://${bucket}`);
          assert.deepEqual(await listed(storage), [...keys].sort());
        }
      },
    );

    await t.test("a missing bucket is an error naming it", async () => {
      const storage = openStorage("s3://no-such-bucket/some/prefix", {
        s3Endpoint: s3.endpoint,
      });
      try {
        for (const attempt of [
          () => listed(storage),
          () => storage.stat("", "N1.fits"),
          () => storage.read("", "N1.fits"),
        ]) {
          await assert.rejects(
            attempt(),
            (error: unknown) =>
              error instanceof PreconditionError &&
              error.message.includes('"no-such-bucket"'),
          );
        }
      } finally {
        await storage.close();
      }
    });
  });

  it("an unreachable endpoint is an ExternalServiceError, soon", async (t) => {
    // Credentials must be found for the SDK to try the endpoint at all.
    for (const [name, value] of [
      ["AWS_ACCESS_KEY_ID", "unreachable"],
      ["AWS_SECRET_ACCESS_KEY", "unreachable"],
    ] as const) {
      if (process.env[name] === undefined) {
        process.env[name] = value;
        t.after(() => delete process.env[name]);
      }
    }
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const storage = openStorage("s3://archive/x", {
      s3Endpoint: endpoint,
      s3MaxAttempts: 2,
    });
    try {
      const started = Date.now();
      for (const attempt of [
        () => listed(storage),
        () => storage.stat("", "N1.fits"),
        () => storage.write("", "N1.fits", Buffer.from("x")),
      ]) {
        await assert.rejects(attempt(), (error: unknown) => {
          assert.ok(error instanceof ExternalServiceError, String(error));
          assert.match(
            error.message,
            new RegExp(`cannot reach the S3 endpoint ${endpoint}`),
          );
          assert.match(error.message, /ECONNREFUSED/);
          assert.match(error.suggestion ?? "", /--s3-endpoint/);
          assert.match(error.suggestion ?? "", /credentials/);
          return true;
        });
      }
      assert.ok(
        Date.now() - started < 15_000,
        `took ${Date.now() - started} ms`,
      );
    } finally {
      await storage.close();
    }
  });

  it("parses locations", () => {
    const s = new S3Storage("s3://bucket/a/b/");
    assert.equal(s.bucket, "bucket");
    assert.equal(s.prefix, "a/b");
    assert.equal(s.description, "s3://bucket/a/b");
    assert.equal(new S3Storage("s3://bucket").description, "s3://bucket");
    assert.equal(openStorage("s3://bucket/p").kind, "s3");
    assert.equal(openStorage(".").kind, "disk");
    assert.throws(() => openStorage("s3://"), UsageError);
  });
});

// ---------------------------------------------------------------------------
// The concurrent lister against an exact in-memory S3

/** ListObjectsV2 over sorted keys, as S3 answers it (MaxKeys counts common prefixes too). */
function memoryBucket(keys: readonly string[]): {
  listPage: ListPage;
  requests: ListPageRequest[];
} {
  const sorted = [...keys].sort(compareKeys);
  const requests: ListPageRequest[] = [];
  const listPage: ListPage = async (request) => {
    requests.push(request);
    await new Promise((resolve) => setImmediate(resolve));
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
    let last: string | undefined;
    let i = lo;
    for (; i < sorted.length && objects.length + prefixes.length < 1000; i++) {
      const key = sorted[i]!;
      if (!key.startsWith(request.prefix)) {
        if (compareKeys(key, request.prefix) > 0) {
          break;
        }
        continue;
      }
      const slash = request.delimiter
        ? key.indexOf("/", request.prefix.length)
        : -1;
      if (slash >= 0) {
        const common = key.slice(0, slash + 1);
        if (prefixes.at(-1) !== common) {
          prefixes.push(common);
        }
        // Skip the rest of this common prefix.
        while (i + 1 < sorted.length && sorted[i + 1]!.startsWith(common)) {
          i++;
        }
        last = sorted[i];
      } else {
        objects.push({ key, size: key.length, lastModified: new Date(0) });
        last = key;
      }
    }
    let more = false;
    for (let j = i; j < sorted.length; j++) {
      if (sorted[j]!.startsWith(request.prefix)) {
        more = true;
        break;
      }
      if (compareKeys(sorted[j]!, request.prefix) > 0) {
        break;
      }
    }
    return {
      objects,
      prefixes,
      truncated: more,
      continuationToken: more ? last : undefined,
    };
  };
  return { listPage, requests };
}

async function collect(
  listPage: ListPage,
  prefix: string,
  recursive: boolean,
  concurrency: number,
): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of listKeys(listPage, {
    prefix,
    recursive,
    concurrency,
  })) {
    assert.ok(page.length > 0 && page.length <= 1000);
    keys.push(...page.map((o) => o.key));
  }
  return keys.sort(compareKeys);
}

function geminiNames(count: number, seed: number): string[] {
  // mulberry32: reproducible names without a dependency.
  let x = seed;
  const random = () => {
    x = (x + 0x6d2b79f5) | 0;
    let r = Math.imul(x ^ (x >>> 15), 1 | x);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
  const names = new Set<string>();
  while (names.size < count) {
    const site = random() < 0.5 ? "N" : "S";
    const year = 2001 + Math.floor(random() * 25);
    const month = String(1 + Math.floor(random() * 12)).padStart(2, "0");
    const day = String(1 + Math.floor(random() * 28)).padStart(2, "0");
    const n = String(Math.floor(random() * 1000)).padStart(4, "0");
    const ext = random() < 0.7 ? ".fits.bz2" : ".fits";
    names.add(`${site}${year}${month}${day}S${n}${ext}`);
  }
  return [...names];
}

describe("the concurrent S3 lister", () => {
  it("orders keys as S3 does (UTF-8 bytes)", () => {
    const samples = [
      "a",
      "b",
      "a/b",
      "a-b",
      "ab",
      "é",
      "z",
      "\u{ffff}",
      "\u{10000}",
      "\u{1f600}x",
      "日本",
      "",
      "A",
      "0",
    ];
    for (const a of samples) {
      for (const b of samples) {
        assert.equal(
          Math.sign(compareKeys(a, b)),
          Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))),
          `${a} vs ${b}`,
        );
      }
    }
  });

  it("cuts the rest of a range just above the page's last key", () => {
    const points = splitPoints(
      0,
      "N20010101S0001.fits",
      "N20010315S0100.fits",
      undefined,
    );
    assert.ok(points.includes("N200104"));
    assert.ok(points.includes("N2002"));
    assert.ok(points.includes("N201"));
    assert.ok(points.includes("S"));
    assert.ok(points.every((p) => compareKeys(p, "N20010315S0100.fits") > 0));
    assert.deepEqual(points, [...points].sort(compareKeys));
    const bounded = splitPoints(
      0,
      "N20010101S0001.fits",
      "N20010315S0100.fits",
      "N2005",
    );
    assert.ok(bounded.every((p) => compareKeys(p, "N2005") < 0));
    assert.ok(bounded.includes("N2004"));
  });

  it("lists every key exactly once, whatever the layout and concurrency", async () => {
    const layouts: Record<string, string[]> = {
      "flat (Gemini)": geminiNames(20_000, 1),
      nested: geminiNames(6000, 2).map(
        (n, i) => `${i % 7}/${n.slice(1, 5)}/${i % 3 === 0 ? "x/" : ""}${n}`,
      ),
      "odd characters": [
        ...geminiNames(3000, 3),
        ...Array.from(
          { length: 2500 },
          (_, i) =>
            `${["~", "é", "日", "\u{1f600}", " ", "-", "a/", "Z"][i % 8]}${i}${i % 5 === 0 ? "/" : ""}`,
        ),
        "N2010/",
        "N2010/inside.fits",
      ],
    };
    for (const [layout, keys] of Object.entries(layouts)) {
      const expected = keys.filter((k) => !k.endsWith("/")).sort(compareKeys);
      for (const concurrency of [1, 4, 16]) {
        const bucket = memoryBucket(keys);
        assert.deepEqual(
          await collect(bucket.listPage, "", true, concurrency),
          expected,
          `${layout}, concurrency ${concurrency}`,
        );
        if (layout === "flat (Gemini)" && concurrency === 16) {
          assert.ok(
            bucket.requests.some((r) => r.startAfter !== undefined),
            "the flat level was cut into ranges",
          );
          // Cutting costs some empty requests, not many (20 pages' worth here).
          assert.ok(
            bucket.requests.length < 20 * 6,
            `${bucket.requests.length} requests`,
          );
        }
      }
      const bucket = memoryBucket(keys);
      assert.deepEqual(
        await collect(bucket.listPage, "", false, 16),
        expected.filter((k) => !k.includes("/")),
        `${layout}, one level`,
      );
    }
    const nested = memoryBucket(layouts.nested!);
    assert.deepEqual(
      await collect(nested.listPage, "3/", true, 8),
      layouts.nested!.filter((k) => k.startsWith("3/")).sort(compareKeys),
    );
  });

  it("stops every request when one fails", async () => {
    const bucket = memoryBucket(geminiNames(5000, 4));
    let calls = 0;
    const failing: ListPage = async (request, signal) => {
      if (++calls === 3) {
        throw new Error("boom");
      }
      return bucket.listPage(request, signal);
    };
    await assert.rejects(collect(failing, "", true, 8), /boom/);
  });
});
