/**
 * Spot interruptions on the loopback AWS endpoint's instances (test/aws):
 * the watch of worker/interruption.ts against an instance's own metadata
 * service (IMDSv2 only, tokens renewed and replaced, faults survived), and
 * a real `worker ingest --spot-watch` on a spot instance, with real
 * PostgreSQL, Redis and FITS files, that gets a notice mid-run and leaves
 * its work to a second worker without failing or holding any of it.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { pathToFileURL } from "node:url";

import { RunInstancesCommand } from "@aws-sdk/client-ec2";

import { withClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import { ImdsClient } from "../../lib/imds.js";
import { createLogger } from "../../lib/logger.js";
import { packageRoot } from "../../lib/paths.js";
import { enqueue } from "../../lib/rebuild/enqueue.js";
import { openStorage } from "../../lib/storage/index.js";
import {
  type InterruptionNotice,
  REBALANCE_PATH,
  SPOT_ACTION_PATH,
  watchForInterruption,
} from "../../worker/interruption.js";
import type { AwsEndpoint, InstanceView } from "../aws/endpoint.js";
import { IDLE, SECURE_LAUNCH, testEndpoint } from "../aws/fixtures.js";
import { assertExactlyOnce, drillCorpus, waitFor } from "../drills/helpers.js";
import { CLI } from "../helpers/cli.js";
import { testDatabase, testEnv } from "../helpers/db.js";
import { testQueue } from "../helpers/queue.js";
import { tempDir } from "../helpers/tmp.js";

type LogLine = Record<string, unknown> & { msg: string; level: string };

/** Long enough for a loaded 2-core machine; outcomes are waited for, never timed. */
const PATIENCE_MS = 30_000;

async function spotInstance(
  aws: AwsEndpoint,
  imageId: string,
): Promise<InstanceView> {
  const launched = await aws.ec2Client().send(
    new RunInstancesCommand({
      ImageId: imageId,
      MinCount: 1,
      MaxCount: 1,
      InstanceMarketOptions: { MarketType: "spot" },
      InstanceInitiatedShutdownBehavior: "terminate",
      ...SECURE_LAUNCH,
    }),
  );
  const id = launched.Instances?.[0]?.InstanceId ?? "";
  await aws.waitFor((all) =>
    all.some((i) => i.id === id && i.state === "running"),
  );
  return aws.instance(id);
}

/** A watch in this process against `endpoint`, its notices and log lines kept. */
function startWatch(
  t: TestContext,
  options: { endpoint?: string; client?: ImdsClient; intervalMs: number },
) {
  const controller = new AbortController();
  const notices: InterruptionNotice[] = [];
  const lines: LogLine[] = [];
  const logger = createLogger({
    level: "debug",
    format: "json",
    write: (line) => lines.push(JSON.parse(line) as LogLine),
  });
  const done = watchForInterruption({
    ...options,
    signal: controller.signal,
    logger,
    onNotice: (notice) => notices.push(notice),
  });
  t.after(async () => {
    controller.abort();
    await done;
  });
  return { notices, lines, done };
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${what}`)),
      PATIENCE_MS,
    );
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function until(what: string, check: () => boolean): Promise<void> {
  return waitFor(what, () => Promise.resolve(check()), PATIENCE_MS);
}

function requestsTo(aws: AwsEndpoint, id: string, path: string) {
  return aws.imdsRequests(id).filter((r) => r.path === path);
}

/**
 * A TCP relay to an instance's IMDS that can turn into a service that
 * drops every connection, for faults the real IMDS does not make.
 */
async function faultyRelay(t: TestContext, target: string) {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  let down = false;
  let dropped = 0;
  const server = createServer((client) => {
    if (down) {
      dropped++;
      client.destroy();
      return;
    }
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on("close", () => open.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve()),
  );
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const s of open) {
          s.destroy();
        }
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  const relayPort =
    typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${relayPort}`,
    get dropped() {
      return dropped;
    },
    down() {
      down = true;
      for (const s of open) {
        s.destroy();
      }
    },
    up() {
      down = false;
    },
  };
}

describe("the spot interruption watch, against an instance's own IMDS", () => {
  it("sees a spot interruption notice on the first look after it is posted, then ends; over IMDSv2 only, with one token", async (t) => {
    const aws = await testEndpoint(t);
    const instance = await spotInstance(
      aws,
      aws.registerImage({ name: "idle", argv: IDLE }),
    );
    const watch = startWatch(t, {
      endpoint: instance.imdsUrl,
      intervalMs: 100,
    });
    await until(
      "two looks",
      () => requestsTo(aws, instance.id, SPOT_ACTION_PATH).length >= 2,
    );
    const before = aws.imdsRequests(instance.id).length;
    const posted = aws.injectSpotInterruption(instance.id);
    await within(watch.done, "the watch to end by itself");
    assert.deepEqual(watch.notices, [
      {
        kind: "spot-interruption",
        action: "terminate",
        time: new Date(posted.time),
      },
    ]);
    const requests = aws.imdsRequests(instance.id);
    assert.deepEqual(
      requests
        .slice(before)
        .filter((r) => r.path === SPOT_ACTION_PATH)
        .map((r) => r.status),
      [200],
      "the first look after the notice found it, and there was no look after that",
    );
    assert.ok(
      requests
        .slice(0, before)
        .filter((r) => r.path === SPOT_ACTION_PATH)
        .every((r) => r.status === 404),
    );
    assert.deepEqual([...new Set(requests.map((r) => r.kind))].sort(), [
      "token",
      "v2",
    ]);
    assert.equal(requests.filter((r) => r.kind === "token").length, 1);
    assert.deepEqual(
      watch.lines.filter((l) => l.level !== "debug"),
      [],
      "nothing went wrong",
    );
  });

  it("reports a rebalance recommendation once and goes on looking, until a spot notice", async (t) => {
    const aws = await testEndpoint(t);
    const instance = await spotInstance(
      aws,
      aws.registerImage({ name: "idle", argv: IDLE }),
    );
    const watch = startWatch(t, {
      endpoint: instance.imdsUrl,
      intervalMs: 100,
    });
    await until(
      "a first look",
      () => requestsTo(aws, instance.id, REBALANCE_PATH).length >= 1,
    );
    const recommended = aws.injectRebalanceRecommendation(instance.id);
    await until("the recommendation", () => watch.notices.length === 1);
    assert.deepEqual(watch.notices, [
      {
        kind: "rebalance-recommendation",
        noticeTime: new Date(recommended.noticeTime),
      },
    ]);
    const looks = requestsTo(aws, instance.id, SPOT_ACTION_PATH).length;
    await until(
      "three more looks",
      () => requestsTo(aws, instance.id, SPOT_ACTION_PATH).length >= looks + 3,
    );
    assert.equal(watch.notices.length, 1, "reported once");
    assert.equal(
      requestsTo(aws, instance.id, REBALANCE_PATH).filter(
        (r) => r.status === 200,
      ).length,
      1,
      "not asked for again once seen",
    );
    const posted = aws.injectSpotInterruption(instance.id, {
      action: "stop",
    });
    await within(watch.done, "the watch to end by itself");
    assert.deepEqual(watch.notices.slice(1), [
      {
        kind: "spot-interruption",
        action: "stop",
        time: new Date(posted.time),
      },
    ]);
    assert.ok(
      aws.imdsRequests(instance.id).every((r) => r.kind !== "v1"),
      "never IMDSv1",
    );
  });

  it("replaces a token refused before its time (401), and renews a token before it runs out", async (t) => {
    const aws = await testEndpoint(t);
    const instance = await spotInstance(
      aws,
      aws.registerImage({ name: "idle", argv: IDLE }),
    );
    const endpoint = instance.imdsUrl ?? "";
    // A clock that stands still: to the client its one-second token never
    // ages, as after a clock jump; IMDS lets it lapse.
    const stillClock = Date.now();
    const lagging = new ImdsClient({
      endpoint,
      tokenTtlSeconds: 1,
      now: () => stillClock,
    });
    assert.equal(await lagging.get(SPOT_ACTION_PATH), undefined);
    await sleep(1500);
    assert.equal(await lagging.get(SPOT_ACTION_PATH), undefined);
    assert.deepEqual(
      aws.imdsRequests(instance.id).map((r) => [r.method, r.kind, r.status]),
      [
        ["PUT", "token", 200],
        ["GET", "v2", 404],
        ["GET", "refused", 401],
        ["PUT", "token", 200],
        ["GET", "v2", 404],
      ],
    );

    const before = aws.imdsRequests(instance.id).length;
    const watch = startWatch(t, {
      client: new ImdsClient({ endpoint, tokenTtlSeconds: 3 }),
      intervalMs: 100,
    });
    const mine = () => aws.imdsRequests(instance.id).slice(before);
    await until(
      "a renewal",
      () => mine().filter((r) => r.kind === "token").length >= 2,
    );
    assert.deepEqual(
      mine().filter((r) => r.kind === "refused"),
      [],
      "every token was renewed before IMDS let it lapse",
    );
    assert.deepEqual(watch.notices, []);
  });

  it("logs IMDS faults once, not once a look, and goes on looking", async (t) => {
    const aws = await testEndpoint(t);
    const instance = await spotInstance(
      aws,
      aws.registerImage({ name: "idle", argv: IDLE }),
    );
    const relay = await faultyRelay(t, instance.imdsUrl ?? "");
    const watch = startWatch(t, { endpoint: relay.url, intervalMs: 50 });
    await until(
      "a first look",
      () => requestsTo(aws, instance.id, SPOT_ACTION_PATH).length >= 1,
    );
    relay.down();
    await until("five failed looks", () => relay.dropped >= 5);
    relay.up();
    await until("the watch to see IMDS again", () =>
      watch.lines.some((l) => l.msg === "instance metadata reachable again"),
    );
    const posted = aws.injectSpotInterruption(instance.id);
    await within(watch.done, "the watch to end by itself");
    assert.deepEqual(watch.notices, [
      {
        kind: "spot-interruption",
        action: "terminate",
        time: new Date(posted.time),
      },
    ]);
    const warnings = watch.lines.filter((l) => l.level === "warn");
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(
      warnings[0]?.msg,
      "instance metadata unreachable; still watching for spot notices",
    );
  });

  it("A worker's IMDSv1 request is refused", async (t) => {
    const aws = await testEndpoint(t);
    const root = tempDir(t, "ff-image-");
    const built = (...path: string[]) =>
      JSON.stringify(pathToFileURL(join(packageRoot(), "dist", ...path)).href);
    // The built client, as a worker on the instance has it, with the
    // endpoint it finds in its environment; and a plain IMDSv1 GET.
    writeFileSync(
      join(root, "boot.mjs"),
      `
import { writeFileSync } from "node:fs";
const { ImdsClient, imdsEndpoint } = await import(${built("lib", "imds.js")});
const { SPOT_ACTION_PATH } = await import(${built("worker", "interruption.js")});
const v1 = await fetch(imdsEndpoint() + SPOT_ACTION_PATH);
const imds = new ImdsClient();
writeFileSync("imds.json", JSON.stringify({
  endpoint: imds.endpoint,
  v1: v1.status,
  lifecycle: await imds.get("/latest/meta-data/instance-life-cycle"),
  spot: (await imds.get(SPOT_ACTION_PATH)) ?? null,
}));
`,
    );
    const instance = await spotInstance(
      aws,
      aws.registerImage({
        name: "probe",
        argv: [process.execPath, "boot.mjs"],
        root,
      }),
    );
    assert.equal(instance.metadataOptions.httpTokens, "required");
    const [done] = await aws.waitFor(
      (all) => all[0]?.state === "terminated",
      PATIENCE_MS,
    );
    assert.equal(
      done?.exitCode,
      0,
      readFileSync(join(instance.dir, "console.log"), "utf8"),
    );
    assert.deepEqual(
      JSON.parse(readFileSync(join(instance.dir, "imds.json"), "utf8")),
      { endpoint: instance.imdsUrl, v1: 401, lifecycle: "spot", spot: null },
    );
    const requests = aws.imdsRequests(instance.id);
    assert.deepEqual(
      requests.filter((r) => r.kind === "refused"),
      [{ method: "GET", path: SPOT_ACTION_PATH, kind: "refused", status: 401 }],
    );
    assert.ok(requests.every((r) => r.kind !== "v1"));
  });
});

interface LedgerState {
  done: number;
  failed: number;
  queued: number;
  active: number;
  activeBy: Record<string, number>;
  interruptions: number;
}

async function ledger(url: string): Promise<LedgerState> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{
      state: string;
      worker: string | null;
      n: string;
      interruptions: string;
    }>(
      `SELECT state, worker, count(*) AS n, sum(interruptions) AS interruptions
         FROM fitsfleet.ingest_ledger GROUP BY state, worker`,
    );
    const s: LedgerState = {
      done: 0,
      failed: 0,
      queued: 0,
      active: 0,
      activeBy: {},
      interruptions: 0,
    };
    for (const r of rows) {
      const n = Number(r.n);
      s.interruptions += Number(r.interruptions);
      if (r.state === "done" || r.state === "failed" || r.state === "queued") {
        s[r.state] += n;
      } else if (r.state === "active") {
        s.active += n;
        s.activeBy[r.worker ?? ""] = (s.activeBy[r.worker ?? ""] ?? 0) + n;
      }
    }
    return s;
  });
}

function consoleLog(instance: InstanceView): LogLine[] {
  return readFileSync(join(instance.dir, "console.log"), "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);
}

function down(instance: InstanceView | undefined): boolean {
  return instance?.state === "terminated" || instance?.state === "stopped";
}

/**
 * A rebuild's ledger and queue of real FITS files (good ones only: a failed
 * row is then the interruption's doing), and spot instances of an image
 * that runs `fitsfleet worker ingest --spot-watch --empty` on them.
 */
async function spotRebuild(
  t: TestContext,
  options: { copies: number; shutdownTimeout?: string },
) {
  const db = await testDatabase(t);
  const { redisUrl } = testEnv();
  const queue = testQueue(t, "spot");
  const archive = drillCorpus(t, options.copies);
  rmSync(join(archive.root, "broken"), { recursive: true });
  archive.corrupt = [];
  const storage = openStorage(archive.root);
  t.after(() => storage.close());
  await enqueue({
    databaseUrl: db.url,
    redisUrl,
    queue: queue.name,
    storage,
    storageLocation: archive.root,
    batchSize: 4,
  });
  const tag = process.env.FFTEST_FILE_TAG;
  const aws = await testEndpoint(t, {
    instanceEnv: {
      FITSFLEET_DATABASE_URL: db.url,
      FITSFLEET_REDIS_URL: redisUrl,
      // So the test runner finds an instance's processes should they outlive the file.
      ...(tag !== undefined && { FFTEST_FILE_TAG: tag }),
    },
  });
  const image = (name: string) =>
    aws.registerImage({
      name: `fitsfleet-worker-${name}`,
      argv: [
        process.execPath,
        CLI,
        "worker",
        "ingest",
        "--spot-watch",
        "--empty",
        "--name",
        name,
        "--queue",
        queue.name,
        ...(options.shutdownTimeout === undefined
          ? []
          : ["--shutdown-timeout", options.shutdownTimeout]),
      ],
      env: { FITSFLEET_LOG_FORMAT: "json", FITSFLEET_LOG_LEVEL: "info" },
    });
  /** Waits until the instance's worker has ended, by itself or not. */
  const ended = async (id: string): Promise<InstanceView> => {
    await aws.waitFor(
      (all) => down(all.find((i) => i.id === id)),
      PATIENCE_MS * 2,
    );
    return aws.instance(id);
  };
  return { db, archive, aws, image, ended };
}

/** An instance's worker ended by itself with exit 0, not by EC2's enforcement. */
function assertCleanExit(instance: InstanceView): void {
  assert.equal(
    instance.exitCode,
    0,
    JSON.stringify(consoleLog(instance).slice(-5)),
  );
  assert.equal(instance.stateReason?.code, "Client.InstanceInitiatedShutdown");
}

/**
 * With the default --shutdown-timeout the notice's time decides the
 * hand-back (30 s before it), and the batch in hand is finished first; with
 * none, whatever is in hand at the notice goes back at once.
 */
const DEADLINES = [
  { shutdownTimeout: "90s", handBack: "at the latest 30 s before EC2 acts" },
  { shutdownTimeout: "0s", handBack: "at once" },
] as const;

describe("a worker on a spot instance", () => {
  for (const { shutdownTimeout, handBack } of DEADLINES) {
    it(`given a spot interruption notice mid-run, takes no new work, hands back ${handBack}, exits 0 before EC2 acts, failing and holding nothing; a second worker finishes the queue (--shutdown-timeout ${shutdownTimeout})`, async (t) => {
      const { db, archive, aws, image, ended } = await spotRebuild(t, {
        copies: 6,
        shutdownTimeout,
      });
      const first = await spotInstance(aws, image("spot-1"));
      await waitFor(
        "spot-1 to be working",
        async () => {
          const s = await ledger(db.url);
          return s.done > 0 && (s.activeBy["spot-1"] ?? 0) > 0;
        },
        PATIENCE_MS,
      );
      const posted = aws.injectSpotInterruption(first.id, {
        enforceAfterMs: 120_000,
      });
      const gone = await ended(first.id);
      assertCleanExit(gone);
      const log = consoleLog(gone);
      const notice = log.find((l) => l.msg === "spot interruption notice");
      assert.ok(notice !== undefined, "the notice was logged");
      assert.equal(notice.action, "terminate");
      assert.equal(
        Date.parse(String(notice.interruptionTime)),
        Date.parse(posted.time),
      );
      const handBackBy = Date.parse(String(notice.handBackBy));
      if (shutdownTimeout === "90s") {
        assert.equal(handBackBy, Date.parse(posted.time) - 30_000);
      } else {
        assert.ok(
          handBackBy <= Date.parse(String(notice.time)),
          "handed back when the notice was seen",
        );
        assert.ok(
          log.some(
            (l) =>
              l.msg === "handing back unfinished work" &&
              l.reason === "shutdown deadline",
          ),
        );
      }
      assert.ok(
        log.some(
          (l) =>
            l.msg === "stopping: no new work; finishing what is in hand" &&
            l.reason === "spot interruption notice",
        ),
      );
      const left = await ledger(db.url);
      assert.equal(left.failed, 0, "an interruption fails no file");
      assert.equal(left.active, 0, "it holds no row");
      assert.ok(left.queued > 0, "work was left for another worker");
      assert.equal(
        left.interruptions,
        0,
        "no row waited for a lease to run out",
      );

      const second = await spotInstance(aws, image("spot-2"));
      assertCleanExit(await ended(second.id));
      const end = await ledger(db.url);
      assert.deepEqual(
        {
          done: end.done,
          failed: end.failed,
          interruptions: end.interruptions,
        },
        { done: archive.good.length, failed: 0, interruptions: 0 },
      );
      await assertExactlyOnce(db.url, archive);
    });
  }

  for (const kind of ["spot interruption notice", "rebalance recommendation"]) {
    it(`booting under a ${kind}, takes no work and exits 0`, async (t) => {
      const { db, aws, image, ended } = await spotRebuild(t, { copies: 0 });
      const launched = await aws.ec2Client().send(
        new RunInstancesCommand({
          ImageId: image("late-1"),
          MinCount: 1,
          MaxCount: 1,
          InstanceMarketOptions: { MarketType: "spot" },
          InstanceInitiatedShutdownBehavior: "terminate",
          ...SECURE_LAUNCH,
        }),
      );
      const id = launched.Instances?.[0]?.InstanceId ?? "";
      // Posted before the worker's process can have looked.
      if (kind === "spot interruption notice") {
        aws.injectSpotInterruption(id, { enforceAfterMs: 120_000 });
      } else {
        aws.injectRebalanceRecommendation(id);
      }
      const gone = await ended(id);
      assertCleanExit(gone);
      const log = consoleLog(gone);
      assert.ok(log.some((l) => l.msg === kind));
      assert.ok(
        log.some(
          (l) =>
            l.msg === "stopping: no new work; finishing what is in hand" &&
            l.reason === kind,
        ),
      );
      assert.ok(!log.some((l) => l.msg === "taking work"));
      const untouched = await withClient(db.url, (c) =>
        c.query<{ state: string; attempts: number }>(
          "SELECT DISTINCT state, attempts FROM fitsfleet.ingest_ledger",
        ),
      );
      assert.deepEqual(untouched.rows, [{ state: "queued", attempts: 0 }]);
    });
  }
});
