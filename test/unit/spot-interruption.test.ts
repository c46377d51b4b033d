/**
 * The parts of spot interruption handling that need no instance: reading a
 * notice, when the work in hand goes back, a stop that brings the hand-back
 * forward (worker/runtime.ts), and how a worker is told to watch (the flag,
 * the variable, the launch spec). The watch against a real metadata
 * service, and a worker interrupted mid-run, are in
 * test/fleet/interruption.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { commonWorkerSettings } from "../../cli/commands/worker/common.js";
import { workerLaunchSpec } from "../../infra/launch-spec.js";
import { loadConfig } from "../../lib/config.js";
import { UsageError } from "../../lib/errors.js";
import { imdsEndpoint } from "../../lib/imds.js";
import { createLogger } from "../../lib/logger.js";
import {
  handBackTime,
  parseRebalance,
  parseSpotAction,
  SPOT_HAND_BACK_MARGIN_MS,
} from "../../worker/interruption.js";
import { WorkerRuntime } from "../../worker/runtime.js";

const NOW = Date.parse("2026-03-01T12:00:00Z");

/**
 * The runtime's deadline timer does not keep a process alive (a worker has
 * its own reasons to run); here nothing else would while the test waits.
 */
async function handedBack(rt: WorkerRuntime): Promise<void> {
  const alive = setInterval(() => undefined, 1000);
  try {
    await new Promise((resolve) => {
      if (rt.abandoning.aborted) {
        resolve(undefined);
      }
      rt.abandoning.addEventListener("abort", resolve, { once: true });
    });
  } finally {
    clearInterval(alive);
  }
}

describe("reading a notice", () => {
  it("takes a spot notice's action and time", () => {
    assert.deepEqual(
      parseSpotAction('{"action":"stop","time":"2026-03-01T12:02:00Z"}', NOW),
      {
        kind: "spot-interruption",
        action: "stop",
        time: new Date("2026-03-01T12:02:00Z"),
      },
    );
  });

  it("treats an unreadable spot notice as a termination in EC2's two minutes: its presence is the notice", () => {
    for (const body of ["", "not json", "[]", '{"time":"soon"}']) {
      assert.deepEqual(parseSpotAction(body, NOW), {
        kind: "spot-interruption",
        action: "terminate",
        time: new Date(NOW + 120_000),
      });
    }
  });

  it("takes a rebalance recommendation's notice time, or now", () => {
    assert.deepEqual(
      parseRebalance('{"noticeTime":"2026-03-01T11:59:30Z"}', NOW),
      {
        kind: "rebalance-recommendation",
        noticeTime: new Date("2026-03-01T11:59:30Z"),
      },
    );
    assert.deepEqual(parseRebalance("{}", NOW), {
      kind: "rebalance-recommendation",
      noticeTime: new Date(NOW),
    });
  });

  it("finds IMDS where the AWS SDK does, else at EC2's link-local address", () => {
    assert.equal(imdsEndpoint({}), "http://169.254.169.254");
    assert.equal(
      imdsEndpoint({ AWS_EC2_METADATA_SERVICE_ENDPOINT: "" }),
      "http://169.254.169.254",
    );
    assert.equal(
      imdsEndpoint({
        AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://127.0.0.1:4567/",
      }),
      "http://127.0.0.1:4567",
    );
  });
});

describe("when the work in hand goes back", () => {
  const spot = (inMs: number) =>
    parseSpotAction(
      JSON.stringify({
        action: "terminate",
        time: new Date(NOW + inMs).toISOString(),
      }),
      NOW,
    );

  it("for a spot notice, at the latest 30 s before EC2 acts", () => {
    assert.equal(SPOT_HAND_BACK_MARGIN_MS, 30_000);
    assert.equal(handBackTime(spot(120_000), NOW, 90_000), NOW + 90_000);
    assert.equal(handBackTime(spot(120_000), NOW, 100_000), NOW + 90_000);
    assert.equal(handBackTime(spot(60_000), NOW, 90_000), NOW + 30_000);
  });

  it("at the shutdown deadline when that is sooner", () => {
    assert.equal(handBackTime(spot(120_000), NOW, 10_000), NOW + 10_000);
  });

  it("at once when the notice was seen late", () => {
    assert.equal(handBackTime(spot(20_000), NOW, 90_000), NOW);
    assert.equal(handBackTime(spot(-5_000), NOW, 90_000), NOW);
  });

  it("for a rebalance recommendation, which gives no time, at the shutdown deadline", () => {
    assert.equal(
      handBackTime(parseRebalance("{}", NOW), NOW, 90_000),
      NOW + 90_000,
    );
  });
});

describe("a stop with a hand-back time (worker/runtime.ts)", () => {
  it("brings the hand-back forward, never back, and hands back then", async (t) => {
    const lines: Record<string, unknown>[] = [];
    const rt = await WorkerRuntime.start({
      kind: "ingest",
      name: "u1",
      // Never connected to: the runtime's pool connects on first use.
      databaseUrl: "postgres://nobody@127.0.0.1:1/none",
      concurrency: 1,
      logger: createLogger({
        format: "json",
        write: (line) =>
          lines.push(JSON.parse(line) as Record<string, unknown>),
      }),
      shutdownMs: 60_000,
    });
    t.after(() => rt.close());
    const handBackAt = () => rt.handBackBy?.getTime();
    assert.equal(handBackAt(), undefined);
    rt.stop("signal");
    assert.ok(rt.stopping.aborted);
    const first = handBackAt() ?? 0;
    assert.ok(first > Date.now() + 50_000);
    rt.stop("rebalance recommendation", { handBackBy: first + 10_000 });
    assert.equal(handBackAt(), first, "never back");
    rt.stop("spot interruption notice", { handBackBy: Date.now() + 50 });
    assert.ok((handBackAt() ?? first) < first, "forward");
    assert.equal(rt.abandoning.aborted, false);
    await handedBack(rt);
    assert.deepEqual(
      lines.map((l) => [l.msg, l.reason]),
      [
        ["stopping: no new work; finishing what is in hand", "signal"],
        ["hand-back brought forward", "spot interruption notice"],
        ["handing back unfinished work", "shutdown deadline"],
      ],
    );
    assert.equal(lines[0]?.handBackAfterSeconds, 60);
  });

  it("hands back at once when the time has passed", async (t) => {
    const rt = await WorkerRuntime.start({
      kind: "preview",
      name: "u2",
      databaseUrl: "postgres://nobody@127.0.0.1:1/none",
      concurrency: 1,
      logger: createLogger({ write: () => undefined }),
    });
    t.after(() => rt.close());
    rt.stop("spot interruption notice", { handBackBy: Date.now() - 1000 });
    await handedBack(rt);
    assert.ok(rt.stopping.aborted);
  });
});

describe("turning the watch on", () => {
  const flags = { name: "1", maxRetryTime: "15m", shutdownTimeout: "90s" };

  it("with --spot-watch, or FITSFLEET_SPOT_WATCH=1", () => {
    assert.equal(commonWorkerSettings(flags, {}).spotWatch, false);
    assert.deepEqual(
      commonWorkerSettings({ ...flags, spotWatch: true }, {}).spotWatch,
      { intervalMs: undefined },
    );
    for (const on of ["1", "true", " TRUE "]) {
      assert.deepEqual(
        commonWorkerSettings(flags, { FITSFLEET_SPOT_WATCH: on }).spotWatch,
        { intervalMs: undefined },
      );
    }
    assert.deepEqual(
      commonWorkerSettings(flags, {
        FITSFLEET_SPOT_WATCH: "1",
        FITSFLEET_SPOT_POLL_MS: "200",
      }).spotWatch,
      { intervalMs: 200 },
    );
    assert.throws(
      () =>
        commonWorkerSettings(flags, {
          FITSFLEET_SPOT_WATCH: "1",
          FITSFLEET_SPOT_POLL_MS: "5",
        }),
      /FITSFLEET_SPOT_POLL_MS=5: milliseconds between looks, from 50 to 60000/,
    );
    for (const off of ["", "0", "false"]) {
      assert.equal(
        commonWorkerSettings(flags, { FITSFLEET_SPOT_WATCH: off }).spotWatch,
        false,
      );
    }
  });

  it("refuses a FITSFLEET_SPOT_WATCH that is neither on nor off", () => {
    assert.throws(
      () => commonWorkerSettings(flags, { FITSFLEET_SPOT_WATCH: "yes please" }),
      (error: unknown) =>
        error instanceof UsageError &&
        /FITSFLEET_SPOT_WATCH=yes please: give 1 \(on\) or 0 \(off\)/.test(
          error.message,
        ),
    );
  });

  it("FITSFLEET_SPOT_WATCH is a variable the configuration knows", () => {
    assert.doesNotThrow(() =>
      loadConfig({ env: { FITSFLEET_SPOT_WATCH: "1" }, readFile: () => "" }),
    );
  });

  it("the launch spec asks for it on either kind of worker", () => {
    for (const role of ["ingest", "preview"] as const) {
      const spec = workerLaunchSpec({
        role,
        name: "fleet-1",
        spotWatch: true,
        databaseUrl: "postgres://u@db/archive",
      });
      assert.ok(spec.argv.includes("--spot-watch"), role);
    }
    assert.ok(
      !workerLaunchSpec({
        role: "ingest",
        name: "local-1",
        databaseUrl: "postgres://u@db/archive",
      }).argv.includes("--spot-watch"),
    );
  });
});
