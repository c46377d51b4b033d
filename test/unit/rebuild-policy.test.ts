/**
 * The pieces of the retry policy and the worker launch that need no server:
 * durations, the one fault classification, the capped backoff, batch sizes,
 * and the launch spec that keeps secrets out of argv.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { duration } from "../../cli/parse.js";
import { workerLaunchSpec } from "../../infra/launch-spec.js";
import { parseDuration } from "../../lib/duration.js";
import {
  ExternalServiceError,
  faultKind,
  FitsfleetError,
  UsageError,
} from "../../lib/errors.js";
import { FitsFormatError } from "../../lib/fits/errors.js";
import { batchSizeFor, retryDelayMs } from "../../lib/rebuild/queue.js";

describe("retry policy", () => {
  it("reads durations as operators write them", () => {
    assert.equal(parseDuration("90s"), 90_000);
    assert.equal(parseDuration("15m"), 900_000);
    assert.equal(parseDuration("2h"), 7_200_000);
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("60"), 60_000);
    assert.equal(parseDuration("15 minutes"), undefined);
    assert.equal(parseDuration("-5s"), undefined);
    assert.equal(parseDuration(""), undefined);
    assert.equal(parseDuration("1d"), 86_400_000);
    assert.equal(parseDuration("1.5s"), 1500);
  });

  it("reads milliseconds, alone and inside combinations, and still refuses nonsense", () => {
    assert.equal(parseDuration("300ms"), 300);
    assert.equal(parseDuration("1s500ms"), 1500);
    assert.equal(parseDuration("1m30s250ms"), 90_250);
    assert.equal(parseDuration("2m"), 120_000); // `m` alone is still minutes
    assert.equal(parseDuration("1m5s"), 65_000);
    for (const bad of [
      "ms",
      "5x",
      "-300ms",
      "300 ms",
      "5msx",
      "s500",
      "1.ms",
    ]) {
      assert.equal(parseDuration(bad), undefined, bad);
    }
  });

  it("names the flag and the smallest duration it takes when a duration is refused", () => {
    assert.equal(duration("--interval", "300ms", 100), 300);
    assert.equal(duration("--interval", "1s500ms", 1000), 1500);
    assert.throws(
      () => duration("--interval", "50ms", 100),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message ===
          "--interval 50ms: a duration of at least 100ms, such as 500ms, 90s, 15m or 2h",
    );
    for (const bad of ["5x", "ms", "", "-1s"]) {
      assert.throws(
        () => duration("--stall-after", bad, 10_000),
        (e: unknown) =>
          e instanceof UsageError &&
          e.message ===
            `--stall-after ${bad}: a duration of at least 10 s, such as 90s, 15m or 2h`,
        bad,
      );
    }
  });

  it("classifies faults in one place: markers, SQLSTATE classes, errno, AWS, driver words, causes", () => {
    const sql = (code: string) => Object.assign(new Error("x"), { code });
    assert.equal(faultKind(sql("40001")), "transient");
    assert.equal(faultKind(sql("40P01")), "transient");
    assert.equal(faultKind(sql("57P01")), "transient"); // admin shutdown
    assert.equal(faultKind(sql("08006")), "transient");
    assert.equal(faultKind(sql("53300")), "transient"); // too many connections
    assert.equal(faultKind(sql("23505")), "permanent"); // unique violation
    assert.equal(faultKind(sql("22003")), "permanent"); // numeric out of range
    assert.equal(faultKind(sql("ECONNRESET")), "transient");
    assert.equal(
      faultKind(new Error("Connection terminated unexpectedly")),
      "transient",
    );
    assert.equal(
      faultKind(Object.assign(new Error("slow"), { name: "SlowDown" })),
      "transient",
    );
    assert.equal(
      faultKind(
        Object.assign(new Error("oops"), {
          $metadata: { httpStatusCode: 503 },
        }),
      ),
      "transient",
    );
    assert.equal(
      faultKind(new ExternalServiceError("s3", "down")),
      "transient",
    );
    // A storage path a worker cannot use is the file's problem, not a service's.
    assert.equal(faultKind(new UsageError("bad name")), "permanent");
    assert.equal(
      faultKind(new FitsFormatError("not-fits", "not FITS")),
      "permanent",
    );
    // A generic error wrapping a reset connection is transient through its cause.
    assert.equal(
      faultKind(
        new FitsfleetError("storage", 1, "cannot read", {
          cause: sql("ECONNRESET"),
        }),
      ),
      "transient",
    );
    // Unknown errors are permanent: a bug is not retried into hiding.
    assert.equal(faultKind(new TypeError("x is undefined")), "permanent");
  });

  it("backs off from 1 s, doubling, capped at 30 s, with a little jitter", () => {
    const mid = () => 0.5;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 20].map((n) => retryDelayMs(n, mid)),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
    );
    assert.equal(
      retryDelayMs(1, () => 0),
      900,
    );
    assert.equal(
      retryDelayMs(30, () => 1),
      33000,
    );
  });

  it("sizes batches so that every worker gets a share of a small archive", () => {
    assert.equal(batchSizeFor(60, 2), 8);
    assert.equal(batchSizeFor(3, 2), 1);
    assert.equal(batchSizeFor(1_000_000, 16), 200);
  });
});

describe("worker launch spec", () => {
  it("keeps the URLs with passwords out of argv, in the secret environment only", () => {
    const spec = workerLaunchSpec({
      role: "ingest",
      name: "fleet-7",
      queue: "q",
      empty: true,
      fastRebuild: true,
      makePreviews: true,
      databaseUrl: "postgres://u:s3cretpw@db/archive",
      redisUrl: "redis://default:r3dispw@redis:6379",
      storage: "s3://archive/data",
    });
    assert.deepEqual(spec.argv, [
      "worker",
      "ingest",
      "--name",
      "fleet-7",
      "--empty",
      "--queue",
      "q",
      "--fast-rebuild",
      "--make-previews",
    ]);
    assert.equal(
      spec.secretEnv.FITSFLEET_DATABASE_URL,
      "postgres://u:s3cretpw@db/archive",
    );
    assert.equal(spec.env.FITSFLEET_STORAGE, "s3://archive/data");
    assert.deepEqual(spec.nodeOptions, ["--max-semi-space-size=64"]);
    assert.doesNotMatch(
      JSON.stringify([spec.argv, spec.env, spec.nodeOptions]),
      /s3cretpw|r3dispw/,
    );
  });
});
