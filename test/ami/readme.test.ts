/**
 * README.md's "Rebuilding on AWS": every command of its marked block runs,
 * as written, through bash and the real CLI, against the loopback AWS
 * endpoint (EC2, SSM, instances booting the baked image through its
 * unit), s3rver (the archive, the previews and the bundles), PostgreSQL
 * (the workers through a real pgbouncer in transaction pooling, the
 * operator's commands directly) and a Redis of its own. The block's
 * variables get this test's values; an unknown one fails the test, so the
 * block cannot grow what is not tested. Each command's exit code and what
 * it did are checked, and at the end every file is ingested once, the
 * previews are in S3, and nothing is left running.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { it } from "node:test";

import { DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";

import { withClient } from "../../lib/db/connect.js";
import { packageRoot } from "../../lib/paths.js";
import { freePort } from "../../lib/stack/index.js";
import { pgbouncerUrl, startPgbouncer } from "../../lib/stack/pgbouncer.js";
import { redisPid, startRedis } from "../../lib/stack/redis.js";
import { testArchive } from "../helpers/archive.js";
import { CLI } from "../helpers/cli.js";
import { testDatabase } from "../helpers/db.js";
import { tempDir } from "../helpers/tmp.js";
import { amiSetup } from "./helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/** The marked block of README.md: its variable names and its command lines. */
export function readmeBlock(readme: string): {
  variables: string[];
  commands: string[];
} {
  const begin = readme.indexOf("<!-- aws-rebuild:begin -->");
  const end = readme.indexOf("<!-- aws-rebuild:end -->");
  assert.ok(begin >= 0 && end > begin, "README.md has the marked block");
  const body = /```sh\n([\s\S]*?)```/.exec(readme.slice(begin, end))?.[1];
  assert.ok(body !== undefined, "the marked block is a sh code block");
  const variables: string[] = [];
  const commands: string[] = [];
  for (const line of body.split("\n")) {
    const text = line.trim();
    if (text === "" || text.startsWith("#")) {
      continue;
    }
    const assignment = /^(?:export )?([A-Z_][A-Z0-9_]*)=/.exec(text);
    if (assignment !== null) {
      variables.push(assignment[1]!);
    } else {
      assert.match(text, /^fitsfleet /, `a fitsfleet command: ${text}`);
      commands.push(text);
    }
  }
  return { variables, commands };
}

function run(
  command: string,
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // `fitsfleet` is this build's CLI; the line is run as bash runs it.
    const child = spawn(
      "bash",
      [
        "-c",
        `set -o pipefail; fitsfleet() { "${process.execPath}" "${CLI}" "$@"; }; ${command}`,
      ],
      { cwd, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: "utf8" })
    .map((f) => join(root, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => relative(root, f));
}

it("every command of README.md's 'Rebuilding on AWS' runs against the loopback endpoint and does what it says", async (t) => {
  const { variables, commands } = readmeBlock(
    readFileSync(join(packageRoot(), "README.md"), "utf8"),
  );
  const archive = testArchive(t, { dumpsPerInstrument: 2 });
  const db = await testDatabase(t);
  const setup = await amiSetup(t, {
    roles: { "fitsfleet-worker": { ssmReadPrefixes: ["/fitsfleet/"] } },
  });
  const { aws, s3 } = setup;

  // The archive in S3, as an operator's is.
  const files = filesUnder(archive.root);
  for (const file of files) {
    await s3.client.send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: `archive/${file}`,
        Body: readFileSync(join(archive.root, file)),
      }),
    );
  }
  // A Redis of its own: the block uses the default queue.
  const redisDir = tempDir(t, "ff-readme-redis-");
  const redisPort = await freePort();
  const redisPassword = randomBytes(12).toString("hex");
  await startRedis(redisDir, redisPort, redisPassword);
  // By its pid, as pgbouncer below: its folder may be gone by the time this runs.
  const redisServer = redisPid(redisDir);
  assert.ok(redisServer !== undefined, "redis-server wrote its pid");
  t.after(() => {
    try {
      process.kill(redisServer, "SIGTERM");
    } catch {
      // Gone already.
    }
  });
  // The workers' database URL through pgbouncer in transaction pooling.
  const server = new URL(db.url);
  const bouncer = {
    folder: tempDir(t, "ff-readme-pgbouncer-"),
    port: await freePort(),
    server: {
      host: server.hostname,
      port: Number(server.port),
      user: decodeURIComponent(server.username),
      password: decodeURIComponent(server.password),
    },
    poolMode: "transaction" as const,
  };
  const bouncerPid = await startPgbouncer(bouncer);
  // By its pid: the folder with its pid file may be gone by then.
  t.after(() => {
    try {
      process.kill(bouncerPid, "SIGTERM");
    } catch {
      // Gone already.
    }
  });
  const pooled = pgbouncerUrl(bouncer, server.pathname.slice(1));

  const values: Record<string, string> = {
    AWS_REGION: aws.region,
    FITSFLEET_STORAGE: `s3://${s3.bucket}/archive`,
    FITSFLEET_DATABASE_URL: db.url,
    FITSFLEET_REDIS_URL: `redis://:${redisPassword}@127.0.0.1:${redisPort}`,
    WORKERS_DATABASE_URL: pooled,
    BUNDLES: `s3://${s3.bucket}/bundles`,
    SUBNETS: "subnet-0000000000000001a,subnet-0000000000000002b",
    INSTANCES: "2",
  };
  assert.deepEqual(
    [...variables].sort(),
    Object.keys(values).sort(),
    "the block's variables are the ones this test gives values to",
  );
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(FITSFLEET_|FFTEST_|DEBUG$)/.test(key)) {
      env[key] = value;
    }
  }
  Object.assign(env, setup.env, values, {
    FITSFLEET_STACK_DIR: join(tempDir(t, "ff-readme-"), "no-stack"),
  });
  const cwd = tempDir(t, "ff-readme-cwd-");

  const outcomes: Record<string, (r: { stdout: string }) => Promise<void>> = {
    "infra iam-policy": async () => {
      const text = readFileSync(join(cwd, "fitsfleet-policies.txt"), "utf8");
      for (const title of [
        "# the operator's policy",
        "# the workers' role fitsfleet-worker",
        "# the operator's policy for `fitsfleet ami`",
        "# the image builder's role fitsfleet-ami-builder",
      ]) {
        assert.ok(text.includes(title), title);
      }
    },
    "fleet secrets put": async () => {
      const names = aws
        .parameters()
        .map((p) => p.name)
        .sort();
      assert.deepEqual(
        names.filter((n) => n.startsWith("/fitsfleet/")),
        ["/fitsfleet/database-url", "/fitsfleet/redis-url"],
      );
      const stored = aws
        .parameters()
        .find((p) => p.name === "/fitsfleet/database-url");
      assert.equal(stored?.value, pooled, "the workers get the pooled URL");
    },
    "fleet secrets show": async (r) => {
      assert.ok(!r.stdout.includes(redisPassword), "no secret shown");
    },
    "ami bake": async () => {
      const images = await aws.ec2Client().send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: [{ Name: "tag-key", Values: ["fitsfleet:version"] }],
        }),
      );
      assert.equal(images.Images?.length, 1);
    },
    "rebuild enqueue": async () => {
      await withClient(db.url, async (c) => {
        const { rows } = await c.query<{ n: string }>(
          "SELECT count(*) AS n FROM fitsfleet.ingest_ledger",
        );
        assert.equal(
          Number(rows[0]?.n),
          archive.good.length + archive.corrupt.length,
        );
      });
    },
    "--dry-run": async () => {
      assert.equal(
        aws.instances().filter((i) => !i.tags["fitsfleet:ami-build"]).length,
        0,
      );
    },
    "--max-hours 48": async () => {
      const fleet = aws
        .instances()
        .filter((i) => i.tags["fitsfleet:fleet"] === "archive-rebuild");
      assert.equal(fleet.length, 2);
    },
    "fleet watch": async () => {
      await withClient(db.url, async (c) => {
        const { rows } = await c.query<{ state: string }>(
          "SELECT state FROM fitsfleet.fleets WHERE name = 'archive-rebuild'",
        );
        assert.equal(rows[0]?.state, "ended");
      });
    },
    "rebuild failures": async (r) => {
      for (const bad of archive.corrupt) {
        assert.ok(r.stdout.includes(bad.name), bad.name);
      }
    },
  };

  for (const command of commands) {
    const r = await run(command, env, cwd);
    // To read what an operator would see: FFTEST_README_LOG=/tmp/readme.log.
    if (process.env.FFTEST_README_LOG !== undefined) {
      appendFileSync(
        process.env.FFTEST_README_LOG,
        `$ ${command}\n(exit ${r.code})\n${r.stdout}${r.stderr}\n`,
      );
    }
    assert.equal(
      r.code,
      0,
      `${command}\nexited ${r.code}\n${r.stdout}\n${r.stderr}`,
    );
    for (const [key, check] of Object.entries(outcomes)) {
      if (
        command.includes(key) &&
        (key !== "--max-hours 48" || !command.includes("--dry-run"))
      ) {
        await check(r);
      }
    }
  }

  // Every file once, the previews in S3, nothing left running.
  await withClient(db.url, async (c) => {
    const { rows } = await c.query<{ state: string; n: string }>(
      "SELECT state, count(*) AS n FROM fitsfleet.ingest_ledger GROUP BY state ORDER BY state",
    );
    assert.deepEqual(
      rows.map((r) => [r.state, Number(r.n)]),
      [
        ["done", archive.good.length],
        ["failed", archive.corrupt.length],
      ],
    );
    const present = await c.query<{ n: string; distinct: string }>(
      "SELECT count(*) AS n, count(DISTINCT (path, filename)) AS distinct FROM diskfile WHERE present",
    );
    assert.equal(Number(present.rows[0]?.n), archive.good.length);
    assert.equal(present.rows[0]?.distinct, present.rows[0]?.n);
  });
  const previews = await s3.client.send(
    new ListObjectsV2Command({
      Bucket: s3.bucket,
      Prefix: "archive/previews/",
    }),
  );
  assert.ok(
    (previews.Contents ?? []).length > 0,
    "previews were written to S3",
  );
  await aws.waitFor(
    (all) => all.every((i) => i.state === "terminated"),
    60_000,
  );
  assert.deepEqual(aws.launchTemplates(), []);
  assert.deepEqual(aws.secretLeaks(), []);
});
