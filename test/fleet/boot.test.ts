/**
 * `fitsfleet instance boot` on instances of the loopback AWS endpoint: an
 * image whose boot command is the real CLI, launched with the fleet
 * configuration as user-data and the workers' instance profile, against
 * the test PostgreSQL and Redis. The instance reads its configuration over
 * IMDSv2 and its secrets from SSM as itself, runs real workers that drain
 * an enqueued corpus, and shuts itself down; the secrets appear in no
 * console log, user-data or command line. Also: a missing secret, bad
 * user-data or a role that may not read gives a clear error and a non-zero
 * exit; the deadline and a SIGTERM stop the workers; a worker that keeps
 * crashing is restarted, then given up on.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import {
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";

import {
  type FleetInstanceConfig,
  renderFleetConfig,
} from "../../infra/fleet-config.js";
import { putFleetSecrets } from "../../infra/secrets.js";
import { withClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import { enqueue } from "../../lib/rebuild/enqueue.js";
import { withIngestQueue } from "../../lib/rebuild/queue.js";
import { openStorage } from "../../lib/storage/index.js";
import type { AwsEndpoint, InstanceView } from "../aws/endpoint.js";
import { testEndpoint } from "../aws/fixtures.js";
import { type TestArchive, testArchive } from "../helpers/archive.js";
import { CLI } from "../helpers/cli.js";
import { type TestDatabase, testDatabase, testEnv } from "../helpers/db.js";
import { uniqueQueueName } from "../helpers/queue.js";

// The SDK's notice that its 2027 releases need Node 22 (cli/main.ts says why it is off).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const ROLE = "fitsfleet-worker";
const PREFIX = "/fitsfleet/test/";

async function fleetEndpoint(
  t: TestContext,
  bootFlags: string[] = [],
  readPrefixes = [PREFIX],
): Promise<{ aws: AwsEndpoint; ami: string }> {
  const aws = await testEndpoint(t, {
    roles: { [ROLE]: { ssmReadPrefixes: readPrefixes } },
    // The SDK in the instance fetches the role's credentials over IMDSv2, as on EC2.
    instanceCredentials: "imds",
    // Longer than the workers take to stop, so that a termination is a clean stop.
    terminateGraceMs: 30_000,
  });
  const ami = aws.registerImage({
    name: "fitsfleet-worker",
    argv: [process.execPath, CLI, "instance", "boot", ...bootFlags],
    imdsSupport: "v2.0",
  });
  return { aws, ami };
}

function fleetConfig(
  aws: AwsEndpoint,
  settings: Partial<FleetInstanceConfig>,
): FleetInstanceConfig {
  return {
    fitsfleet: 1,
    fleet: "fleet-test",
    run: "run-test",
    region: aws.region,
    secretsPrefix: PREFIX,
    queue: "unused",
    ingestWorkers: 2,
    previewWorkers: 1,
    fastRebuild: true,
    makePreviews: false,
    logLevel: "info",
    deadline: new Date(Date.now() + 10 * 60_000).toISOString(),
    ...settings,
  };
}

async function launch(
  aws: AwsEndpoint,
  ami: string,
  userData: string,
): Promise<string> {
  const out = await aws.ec2Client().send(
    new RunInstancesCommand({
      ImageId: ami,
      MinCount: 1,
      MaxCount: 1,
      InstanceType: "c6i.large",
      UserData: Buffer.from(userData).toString("base64"),
      IamInstanceProfile: { Name: ROLE },
      MetadataOptions: { HttpTokens: "required", HttpPutResponseHopLimit: 1 },
      InstanceInitiatedShutdownBehavior: "terminate",
    }),
  );
  const id = out.Instances?.[0]?.InstanceId;
  assert.ok(id !== undefined, "an instance was launched");
  return id;
}

async function ended(
  aws: AwsEndpoint,
  ids: string[],
  timeoutMs = 60_000,
): Promise<InstanceView[]> {
  const all = await aws.waitFor(
    (instances) =>
      ids.every(
        (id) => instances.find((i) => i.id === id)?.state === "terminated",
      ),
    timeoutMs,
  );
  return ids.map((id) => all.find((i) => i.id === id)!);
}

function consoleLog(instance: InstanceView): string {
  return readFileSync(join(instance.dir, "console.log"), "utf8");
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern, "g"))?.length ?? 0;
}

interface Corpus {
  archive: TestArchive;
  db: TestDatabase;
  queue: string;
}

/** The test archive's good files, enqueued for a queue of the test's own. */
async function corpus(t: TestContext): Promise<Corpus> {
  const archive = testArchive(t, { dumpsPerInstrument: 2 });
  // Only files that ingest: then "drained" means every ledger row is done.
  rmSync(join(archive.root, "broken"), { recursive: true, force: true });
  const db = await testDatabase(t);
  const queue = uniqueQueueName("boot");
  const { redisUrl } = testEnv();
  t.after(() =>
    withIngestQueue(redisUrl, queue, (q) => q.obliterate({ force: true })),
  );
  const storage = openStorage(archive.root);
  t.after(() => storage.close());
  await enqueue({
    databaseUrl: db.url,
    redisUrl,
    queue,
    storage,
    storageLocation: archive.root,
    batchSize: 4,
  });
  return { archive, db, queue };
}

async function ledger(url: string): Promise<Record<string, number>> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ state: string; n: string }>(
      "SELECT state, count(*) AS n FROM fitsfleet.ingest_ledger GROUP BY state",
    );
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  });
}

/** The fleet's secrets, put as the operator would. */
async function putSecrets(
  aws: AwsEndpoint,
  databaseUrl: string,
  prefix = PREFIX,
): Promise<void> {
  const ssm = aws.ssmClient();
  await putFleetSecrets(ssm, {
    prefix,
    databaseUrl,
    redisUrl: testEnv().redisUrl,
    kmsKeyId: "alias/fitsfleet",
  });
}

function passwords(databaseUrl: string): string[] {
  const found = [databaseUrl, testEnv().redisUrl].map((u) =>
    decodeURIComponent(new URL(u).password),
  );
  assert.ok(
    found.every((p) => p.length >= 8),
    "the test stack's URLs carry passwords",
  );
  return found;
}

interface ProcessSeen {
  pid: number;
  cmdline: string;
  environ: string;
}

/** Every process of the instance's process group seen while it runs, read from /proc every 20 ms. */
function watchProcesses(
  aws: AwsEndpoint,
  id: string,
): { seen: Map<number, ProcessSeen>; stop(): void } {
  const seen = new Map<number, ProcessSeen>();
  const look = () => {
    const group = aws.instance(id).pid;
    if (group === undefined) {
      return;
    }
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) {
        continue;
      }
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
        const pgrp = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2];
        if (Number(pgrp) !== group) {
          continue;
        }
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "latin1")
          .split("\0")
          .join(" ");
        const environ = readFileSync(`/proc/${pid}/environ`, "latin1");
        if (cmdline.trim() !== "") {
          seen.set(pid, { pid, cmdline, environ });
        }
      } catch {
        // Gone between the listing and the read.
      }
    }
  };
  const timer = setInterval(look, 20);
  return { seen, stop: () => clearInterval(timer) };
}

describe("instance boot", () => {
  it("reads its configuration over IMDSv2 and its secrets from SSM as itself, runs workers that drain the queue, and shuts itself down; no secret in its log, user-data or command lines", async (t) => {
    const { aws, ami } = await fleetEndpoint(t);
    const { archive, db, queue } = await corpus(t);
    await putSecrets(aws, db.url);
    const secrets = passwords(db.url);
    // More than the SDK's own three attempts: the boot tries again itself.
    aws.injectThrottle("GetParameters", 4);
    const id = await launch(
      aws,
      ami,
      renderFleetConfig(
        fleetConfig(aws, { queue, storage: archive.root, previewWorkers: 1 }),
      ),
    );
    const processes = watchProcesses(aws, id);
    t.after(() => processes.stop());
    const [instance] = await ended(aws, [id]);
    processes.stop();
    const log = consoleLog(instance!);

    assert.equal(instance!.exitCode, 0, log);
    assert.equal(
      instance!.stateReason?.code,
      "Client.InstanceInitiatedShutdown",
    );
    assert.deepEqual(await ledger(db.url), { done: archive.good.length });

    // What the instance said, in order.
    assert.match(
      log,
      new RegExp(
        `INFO  \\[fitsfleet\\] booted instance=${id} fleet=fleet-test run=run-test workers=\\{"ingest":2,"preview":1\\}`,
      ),
    );
    for (const name of [
      `${id}-ingest-1`,
      `${id}-ingest-2`,
      `${id}-preview-1`,
    ]) {
      assert.match(log, new RegExp(`worker started worker=${name} `));
      assert.match(log, new RegExp(`worker exited worker=${name} exitCode=0`));
    }
    assert.match(log, /all workers ended .*clean=true/);
    assert.match(
      log,
      /WARN {2}\[fitsfleet\] reading the fleet's secrets failed: trying again error=".*throttled GetParameters/,
    );
    assert.ok(log.indexOf("booted") < log.indexOf("worker started"));
    assert.ok(
      log.indexOf("all workers ended") > log.lastIndexOf("worker exited"),
    );

    // The secrets: read once by the instance itself, decrypted, through its role.
    const reads = aws.ssmReads().filter((r) => r.principal === id);
    assert.deepEqual(reads.map((r) => r.name).sort(), [
      `${PREFIX}database-url`,
      `${PREFIX}redis-url`,
    ]);
    assert.ok(
      reads.every(
        (r) =>
          r.allowed &&
          r.withDecryption &&
          r.type === "SecureString" &&
          r.accessKeyId === instance!.accessKeyId,
      ),
    );
    const imds = aws.imdsRequests(id);
    assert.ok(
      imds.some((r) => r.path === "/latest/user-data" && r.kind === "v2"),
    );
    assert.deepEqual(
      imds.filter((r) => r.kind === "v1"),
      [],
      "IMDSv2 only",
    );

    // And nowhere else.
    assert.deepEqual(aws.secretLeaks(), []);
    const userData = readFileSync(join(instance!.dir, "user-data"), "utf8");
    const seen = [...processes.seen.values()];
    // The instance's init runs the same command line behind its own script.
    const boot = seen.filter((p) =>
      p.cmdline.startsWith(`${process.execPath} ${CLI} instance boot`),
    );
    const workers = seen.filter((p) =>
      / worker (ingest|preview) /.test(p.cmdline),
    );
    assert.equal(boot.length, 1, "the boot process was seen");
    assert.ok(workers.length >= 2, "worker processes were seen");
    for (const secret of secrets) {
      assert.ok(!log.includes(secret), "no secret in the console log");
      assert.ok(!userData.includes(secret), "no secret in the user-data");
      for (const p of seen) {
        assert.ok(
          !p.cmdline.includes(secret),
          `no secret in the command line of ${p.cmdline}`,
        );
      }
      // Only in the workers' environment, which only they (and root) can read.
      assert.ok(
        !boot[0]!.environ.includes(secret),
        "not in boot's environment",
      );
    }
    assert.ok(
      workers.some((w) => w.environ.includes(secrets[0]!)),
      "the workers have the database URL in their environment",
    );
  });

  it("fails clearly without starting a worker: a secret missing, user-data not a fleet configuration, a role that may not read the prefix", async (t) => {
    const { aws, ami } = await fleetEndpoint(
      t,
      [],
      [PREFIX, "/fitsfleet/empty/"],
    );
    const db = await testDatabase(t);
    await putSecrets(aws, db.url, "/fitsfleet/other/");
    const missing = await launch(
      aws,
      ami,
      renderFleetConfig(
        fleetConfig(aws, { secretsPrefix: "/fitsfleet/empty/" }),
      ),
    );
    const notJson = await launch(aws, ami, "#!/bin/bash\necho hello\n");
    const wrongShape = await launch(
      aws,
      ami,
      JSON.stringify({ fitsfleet: 1, fleet: "f" }),
    );
    const denied = await launch(
      aws,
      ami,
      renderFleetConfig(
        fleetConfig(aws, { secretsPrefix: "/fitsfleet/other/" }),
      ),
    );
    const [a, b, c, d] = await ended(aws, [
      missing,
      notJson,
      wrongShape,
      denied,
    ]);

    const logA = consoleLog(a!);
    assert.equal(a!.exitCode, 3, logA);
    assert.match(
      logA,
      /error: the fleet's secrets \/fitsfleet\/empty\/database-url, \/fitsfleet\/empty\/redis-url are not in SSM Parameter Store/,
    );
    assert.match(
      logA,
      /hint: as the operator, run `fitsfleet fleet secrets put --secrets-prefix \/fitsfleet\/empty\/`/,
    );

    const logB = consoleLog(b!);
    assert.equal(b!.exitCode, 2, logB);
    assert.match(
      logB,
      new RegExp(
        `error: the user-data of instance ${notJson}: not a fitsfleet fleet configuration \\(not JSON`,
      ),
    );
    const logC = consoleLog(c!);
    assert.equal(c!.exitCode, 2, logC);
    assert.match(
      logC,
      /not a valid fitsfleet fleet configuration: run: .*secretsPrefix: /,
    );

    const logD = consoleLog(d!);
    assert.equal(d!.exitCode, 4, logD);
    assert.match(
      logD,
      /error: SSM Parameter Store refused GetParameters on \/fitsfleet\/other\/database-url, \/fitsfleet\/other\/redis-url: the caller may not/,
    );
    assert.match(logD, /hint: the instance role needs ssm:GetParameters/);

    for (const instance of [a!, b!, c!, d!]) {
      const log = consoleLog(instance);
      assert.equal(
        instance.stateReason?.code,
        "Client.InstanceInitiatedShutdown",
      );
      assert.doesNotMatch(log, /worker started/);
      for (const secret of passwords(db.url)) {
        assert.ok(!log.includes(secret));
      }
    }
  });

  it("stops its workers at the configuration's deadline, and on SIGTERM, then ends; past the deadline it starts none", async (t) => {
    const { aws, ami } = await fleetEndpoint(t);
    const { archive, db, queue } = await corpus(t);
    await putSecrets(aws, db.url);
    // Paused: the workers wait for work that never comes, until they are stopped.
    await withIngestQueue(testEnv().redisUrl, queue, (q) => q.pause());
    const settings = { queue, storage: archive.root, previewWorkers: 0 };
    // Far enough ahead for its workers to start on a busy machine.
    const deadline = new Date(Date.now() + 12_000);
    const byDeadline = await launch(
      aws,
      ami,
      renderFleetConfig(
        fleetConfig(aws, { ...settings, deadline: deadline.toISOString() }),
      ),
    );
    const bySignal = await launch(
      aws,
      ami,
      renderFleetConfig(fleetConfig(aws, settings)),
    );
    const late = await launch(
      aws,
      ami,
      renderFleetConfig(
        fleetConfig(aws, {
          ...settings,
          deadline: new Date(Date.now() - 60_000).toISOString(),
        }),
      ),
    );
    // Both of its workers are waiting for work (their own log line).
    await aws.waitFor(
      () => count(consoleLog(aws.instance(bySignal)), /taking work/) === 2,
      60_000,
    );
    await sleep(300);
    assert.equal(aws.instance(bySignal).state, "running");
    await aws
      .ec2Client()
      .send(new TerminateInstancesCommand({ InstanceIds: [bySignal] }));
    const [d, s, l] = await ended(aws, [byDeadline, bySignal, late]);

    const logD = consoleLog(d!);
    assert.equal(d!.exitCode, 0, logD);
    assert.equal(d!.stateReason?.code, "Client.InstanceInitiatedShutdown");
    assert.match(logD, /the fleet's deadline has come: stopping every worker/);
    assert.equal(count(logD, /worker exited .*stoppedByUs=true/), 2, logD);
    assert.match(logD, /all workers ended .*clean=true stoppedBy=deadline/);
    const deadlineAt = logD.indexOf("deadline has come");
    assert.ok(deadlineAt > logD.lastIndexOf("worker started"));
    assert.ok(
      Date.now() >= deadline.getTime(),
      "it ended after the deadline, not before",
    );

    const logS = consoleLog(s!);
    assert.equal(s!.exitCode, 0, logS);
    assert.equal(s!.stateReason?.code, "Client.UserInitiatedShutdown");
    assert.match(logS, /stopping every worker/);
    assert.equal(
      count(logS, /worker exited .*exitCode=0 .*stoppedByUs=true/),
      2,
    );
    assert.match(logS, /all workers ended .*clean=true stoppedBy=signal/);

    const logL = consoleLog(l!);
    assert.equal(l!.exitCode, 0, logL);
    assert.match(logL, /the fleet's deadline has passed: starting no workers/);
    assert.doesNotMatch(logL, /worker started/);

    // Stopped, not finished: the work is still there for another run.
    assert.deepEqual(await ledger(db.url), { queued: archive.good.length });
  });

  it("restarts a worker that crashes, then gives up on it after --max-crashes within --crash-window, and exits 1", async (t) => {
    const { aws, ami } = await fleetEndpoint(t, [
      "--max-crashes",
      "3",
      "--crash-window",
      "1m",
      "--restart-delay",
      "0.2",
    ]);
    const db = await testDatabase(t);
    await putSecrets(aws, db.url);
    // Not a valid S3 location: every start of the worker ends in a configuration error (exit 2).
    const id = await launch(
      aws,
      ami,
      renderFleetConfig(
        fleetConfig(aws, {
          queue: uniqueQueueName("crash"),
          storage: "s3://X",
          ingestWorkers: 1,
          previewWorkers: 0,
        }),
      ),
    );
    const [instance] = await ended(aws, [id]);
    const log = consoleLog(instance!);
    assert.equal(instance!.exitCode, 1, log);
    assert.equal(
      instance!.stateReason?.code,
      "Client.InstanceInitiatedShutdown",
    );
    const worker = `${id}-ingest-1`;
    assert.equal(count(log, new RegExp(`worker started worker=${worker}`)), 1);
    assert.equal(
      count(log, new RegExp(`worker restarted worker=${worker}`)),
      2,
    );
    assert.equal(
      count(log, new RegExp(`worker exited worker=${worker} exitCode=2 `)),
      3,
    );
    assert.match(
      log,
      /worker crashed: restarting it .*crashes=1 restartInSeconds=0\.2/,
    );
    assert.match(
      log,
      /worker crashed: restarting it .*crashes=2 restartInSeconds=0\.4/,
    );
    assert.match(
      log,
      new RegExp(
        `worker crashed too often: given up worker=${worker} crashes=3 windowSeconds=60`,
      ),
    );
    assert.match(
      log,
      new RegExp(
        `error: 1 worker\\(s\\) of instance ${id} did not end cleanly: ${worker} gave-up \\(exit 2\\)`,
      ),
    );
    for (const secret of passwords(db.url)) {
      assert.ok(!log.includes(secret));
    }
  });
});
