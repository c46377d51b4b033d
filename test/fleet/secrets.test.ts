/**
 * `fitsfleet fleet secrets put|show` through the real CLI against the
 * loopback SSM endpoint: SecureStrings with the fleet's names, overwritten
 * on a second put, listed without their values; failures (no credentials,
 * no region, a caller that may not, an endpoint out of reach) as clear
 * errors that name the parameter and never hold a secret. And the
 * instance side, readFleetSecrets, refusing what a fleet must not run with.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";

import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";

import { readFleetSecrets } from "../../infra/secrets.js";
import { PreconditionError } from "../../lib/errors.js";
import { freePort } from "../../lib/stack/index.js";
import type { AwsEndpoint } from "../aws/endpoint.js";
import { IDLE, SECURE_LAUNCH, testEndpoint } from "../aws/fixtures.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

const DB_PASSWORD = "db-Pa55word-4f1c9e";
const REDIS_PASSWORD = "redis-Pa55word-77ab02";
const DATABASE_URL = `postgres://ingest:${DB_PASSWORD}@db.internal:5432/fitsdata`;
const REDIS_URL = `redis://default:${REDIS_PASSWORD}@queue.internal:6379`;
const PREFIX = "/fitsfleet/test/";

/** The CLI's environment: the endpoint, and no AWS settings of the machine's own. */
function cliEnv(
  aws: AwsEndpoint,
  nowhere: string,
  overrides: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    AWS_ENDPOINT_URL_SSM: aws.url,
    AWS_ENDPOINT_URL: undefined,
    AWS_ACCESS_KEY_ID: aws.operatorCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.operatorCredentials.secretAccessKey,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_REGION: aws.region,
    AWS_DEFAULT_REGION: undefined,
    // No profile files and no metadata service: the SDK's chain finds nothing else.
    AWS_CONFIG_FILE: join(nowhere, "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(nowhere, "credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
    FITSFLEET_DATABASE_URL: DATABASE_URL,
    FITSFLEET_REDIS_URL: REDIS_URL,
    ...overrides,
  };
}

function assertNoSecret(text: string, where: string): void {
  for (const secret of [DB_PASSWORD, REDIS_PASSWORD, "s3cond-Pa55"]) {
    assert.ok(!text.includes(secret), `${where} holds a secret:\n${text}`);
  }
}

interface ShowJson {
  prefix: string;
  parameters: Record<string, unknown>[];
}

describe("fleet secrets", () => {
  it("put writes SecureStrings under the prefix and overwrites them; show lists them without values", async (t) => {
    const aws = await testEndpoint(t);
    const env = cliEnv(aws, tempDir(t));
    const put = await runCli(
      ["fleet", "secrets", "put", "--secrets-prefix", PREFIX],
      env,
    );
    assert.equal(put.code, 0, put.stderr);
    assertNoSecret(put.stdout + put.stderr, "put's output");
    assert.match(put.stdout, /\/fitsfleet\/test\/database-url\s+1\s+created/);
    assert.match(put.stdout, /\/fitsfleet\/test\/redis-url\s+1\s+created/);
    assert.match(put.stderr, /no --kms-key-id/);
    assert.doesNotMatch(put.stderr, /points at/, "no loopback warning");
    const first = new Map(aws.parameters().map((p) => [p.name, p]));
    assert.deepEqual([...first.keys()].sort(), [
      "/fitsfleet/test/database-url",
      "/fitsfleet/test/redis-url",
    ]);
    assert.deepEqual(
      [...first.values()].map((p) => [p.type, p.version]),
      [
        ["SecureString", 1],
        ["SecureString", 1],
      ],
    );
    assert.equal(
      first.get("/fitsfleet/test/database-url")?.value,
      DATABASE_URL,
    );
    assert.equal(first.get("/fitsfleet/test/redis-url")?.value, REDIS_URL);

    const show = await runCli(
      ["fleet", "secrets", "show", "--secrets-prefix", "/fitsfleet/test"],
      env,
    );
    assert.equal(show.code, 0, show.stderr);
    assertNoSecret(show.stdout + show.stderr, "show's output");
    assert.doesNotMatch(show.stdout, /postgres:|redis:\/\//);
    assert.match(
      show.stdout,
      /\/fitsfleet\/test\/database-url\s+SecureString\s+1\s+\d{4}-\d\d-\d\dT/,
    );
    assert.match(
      show.stdout,
      /\/fitsfleet\/test\/redis-url\s+SecureString\s+1/,
    );

    const second = await runCli(
      [
        "fleet",
        "secrets",
        "put",
        "--secrets-prefix",
        PREFIX,
        "--kms-key-id",
        "alias/fitsfleet",
        "--json",
      ],
      {
        ...env,
        FITSFLEET_DATABASE_URL: DATABASE_URL.replace(
          DB_PASSWORD,
          "s3cond-Pa55",
        ),
      },
    );
    assert.equal(second.code, 0, second.stderr);
    assertNoSecret(second.stdout + second.stderr, "the second put's output");
    const written = JSON.parse(second.stdout) as {
      kmsKeyId: string;
      warnings: string[];
      parameters: { name: string; version: number; created: boolean }[];
    };
    assert.equal(written.kmsKeyId, "alias/fitsfleet");
    assert.deepEqual(written.warnings, []);
    assert.deepEqual(
      written.parameters.map((p) => [p.name, p.version, p.created]),
      [
        ["/fitsfleet/test/database-url", 2, false],
        ["/fitsfleet/test/redis-url", 2, false],
      ],
    );
    const db = aws
      .parameters()
      .find((p) => p.name === "/fitsfleet/test/database-url");
    assert.equal(db?.version, 2);
    assert.equal(db?.keyId, "alias/fitsfleet");
    assert.equal(db?.value, DATABASE_URL.replace(DB_PASSWORD, "s3cond-Pa55"));

    const shown = await runCli(
      ["fleet", "secrets", "show", "--secrets-prefix", PREFIX, "--json"],
      env,
    );
    assert.equal(shown.code, 0, shown.stderr);
    assertNoSecret(shown.stdout, "show --json");
    const listed = JSON.parse(shown.stdout) as ShowJson;
    assert.equal(listed.prefix, PREFIX);
    assert.deepEqual(
      listed.parameters.map((p) => [p.name, p.type, p.version, p.present]),
      [
        ["/fitsfleet/test/database-url", "SecureString", 2, true],
        ["/fitsfleet/test/redis-url", "SecureString", 2, true],
      ],
    );
    assert.ok(listed.parameters.every((p) => !("value" in p)));

    // Every write was the operator's, and the show read nothing decrypted.
    assert.ok(
      aws
        .calls()
        .filter((c) => c.action === "PutParameter")
        .every((c) => c.principal === "operator"),
    );
    assert.ok(aws.ssmReads().every((r) => !r.withDecryption));
    assert.deepEqual(aws.secretLeaks(), []);

    const empty = await runCli(
      ["fleet", "secrets", "show", "--secrets-prefix", "/fitsfleet/none/"],
      env,
    );
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /database-url\s+missing/);
    assert.match(empty.stdout, /2 missing: run `fitsfleet fleet secrets put/);
  });

  it("warns when a URL points at the loopback address, which on an instance is the instance itself", async (t) => {
    const aws = await testEndpoint(t);
    const result = await runCli(
      ["fleet", "secrets", "put", "--kms-key-id", "alias/k"],
      cliEnv(aws, tempDir(t), {
        FITSFLEET_DATABASE_URL: `postgres://ingest:${DB_PASSWORD}@127.0.0.1:5432/fitsdata`,
      }),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /database URL points at 127\.0\.0\.1/);
    assert.doesNotMatch(result.stderr, /Redis URL points at/);
    assertNoSecret(result.stdout + result.stderr, "put's output");
    // The default prefix.
    assert.deepEqual(
      aws
        .parameters()
        .map((p) => p.name)
        .sort(),
      ["/fitsfleet/database-url", "/fitsfleet/redis-url"],
    );
  });

  it("fails clearly, naming the parameter and never a secret: a caller that may not, no credentials, no region, no endpoint, a bad prefix", async (t) => {
    const aws = await testEndpoint(t, {
      roles: { "fitsfleet-worker": { ssmReadPrefixes: [PREFIX] } },
    });
    const nowhere = tempDir(t);
    const put = ["fleet", "secrets", "put", "--secrets-prefix", PREFIX];

    // An instance's role credentials: a principal that may read, not write.
    const launched = await aws.ec2Client().send(
      new RunInstancesCommand({
        ImageId: aws.registerImage({ name: "idle", argv: IDLE }),
        MinCount: 1,
        MaxCount: 1,
        IamInstanceProfile: { Name: "fitsfleet-worker" },
        ...SECURE_LAUNCH,
      }),
    );
    const instance = aws.instance(
      launched.Instances?.[0]?.InstanceId ?? "none",
    );
    const denied = await runCli(
      put,
      cliEnv(aws, nowhere, { AWS_ACCESS_KEY_ID: instance.accessKeyId }),
    );
    assert.equal(denied.code, 4, denied.stderr);
    assert.match(
      denied.stderr,
      /SSM Parameter Store refused PutParameter on \/fitsfleet\/test\/database-url: the caller may not/,
    );
    assert.match(
      denied.stderr,
      /hint: you need ssm:PutParameter on \/fitsfleet\/test\/database-url/,
    );
    assertNoSecret(denied.stderr + denied.stdout, "the refusal");

    const anonymous = await runCli(
      put,
      cliEnv(aws, nowhere, {
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
      }),
    );
    assert.equal(anonymous.code, 2, anonymous.stderr);
    assert.match(
      anonymous.stderr,
      /AWS credentials: none found for ssm:PutParameter on \/fitsfleet\/test\/database-url/,
    );
    assert.match(anonymous.stderr, /hint: set AWS_PROFILE/);

    const noRegion = await runCli(
      put,
      cliEnv(aws, nowhere, { AWS_REGION: undefined }),
    );
    assert.equal(noRegion.code, 2, noRegion.stderr);
    assert.match(noRegion.stderr, /region: not set .*Pass --region/);

    const closed = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await runCli(
      [...put, "--json"],
      cliEnv(aws, nowhere, { AWS_ENDPOINT_URL_SSM: closed }),
    );
    assert.equal(unreachable.code, 4, unreachable.stderr);
    const { error } = JSON.parse(
      unreachable.stderr.trim().split("\n").pop()!,
    ) as {
      error: { code: string; message: string; suggestion: string };
    };
    assert.equal(error.code, "external");
    assert.match(
      error.message,
      new RegExp(
        `SSM Parameter Store at ${closed} could not be reached .*PutParameter on /fitsfleet/test/database-url`,
      ),
    );
    assert.match(error.suggestion, /AWS_ENDPOINT_URL_SSM/);
    assertNoSecret(unreachable.stderr + unreachable.stdout, "the failure");

    const badPrefix = await runCli(
      ["fleet", "secrets", "put", "--secrets-prefix", "fitsfleet"],
      cliEnv(aws, nowhere),
    );
    assert.equal(badPrefix.code, 2, badPrefix.stderr);
    assert.match(badPrefix.stderr, /--secrets-prefix "fitsfleet": an SSM path/);

    // Nothing was written by any of them.
    assert.deepEqual(aws.parameters(), []);
  });

  it("readFleetSecrets gives an instance both URLs, and refuses missing, unencrypted or malformed ones without showing them", async (t) => {
    const aws = await testEndpoint(t);
    const ssm = aws.ssmClient();
    const put = (name: string, value: string, type = "SecureString") =>
      ssm.send(
        new PutParameterCommand({
          Name: name,
          Value: value,
          Type: type as "SecureString",
          Overwrite: true,
        }),
      );
    await assert.rejects(readFleetSecrets(ssm, "/ff/a"), (error) => {
      assert.ok(error instanceof PreconditionError);
      assert.match(
        error.message,
        /the fleet's secrets \/ff\/a\/database-url, \/ff\/a\/redis-url are not in SSM Parameter Store/,
      );
      assert.match(
        error.suggestion ?? "",
        /fitsfleet fleet secrets put --secrets-prefix \/ff\/a\//,
      );
      return true;
    });
    await put("/ff/a/database-url", DATABASE_URL);
    await put("/ff/a/redis-url", REDIS_URL, "String");
    await assert.rejects(readFleetSecrets(ssm, "/ff/a/"), (error) => {
      assert.ok(error instanceof PreconditionError);
      assert.match(
        error.message,
        /\/ff\/a\/redis-url is a String, not a SecureString/,
      );
      assertNoSecret(error.message, "the error");
      return true;
    });
    await put("/ff/b/database-url", `mysql://u:${DB_PASSWORD}@h/db`);
    await put("/ff/b/redis-url", REDIS_URL);
    await assert.rejects(readFleetSecrets(ssm, "/ff/b/"), (error) => {
      assert.ok(error instanceof PreconditionError);
      assert.match(
        error.message,
        /\/ff\/b\/database-url does not hold a postgres:\/\/ or postgresql:\/\/ URL/,
      );
      assertNoSecret(error.message, "the error");
      return true;
    });
    await put("/ff/b/database-url", DATABASE_URL);
    assert.deepEqual(await readFleetSecrets(ssm, "/ff/b/"), {
      databaseUrl: DATABASE_URL,
      redisUrl: REDIS_URL,
    });
    // A client that cannot reach SSM: a clear external error, not the SDK's.
    const away = new SSMClient({
      endpoint: `http://127.0.0.1:${await freePort()}`,
      region: aws.region,
      credentials: aws.operatorCredentials,
      maxAttempts: 1,
    });
    t.after(() => away.destroy());
    await assert.rejects(readFleetSecrets(away, "/ff/b/"), {
      name: "ExternalServiceError",
      message:
        /could not be reached .*GetParameters on \/ff\/b\/database-url, \/ff\/b\/redis-url/,
    });
  });
});
