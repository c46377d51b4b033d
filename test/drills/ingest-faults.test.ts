/**
 * Fault drills of the rebuild core, each on real PostgreSQL and Redis of
 * this file's own and real worker processes: a fault lands while work is in
 * flight, and afterwards every file has exactly one present diskfile with
 * its rows, every ledger row is done or failed with a reason, and every
 * worker exited 0.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";

import { withClient } from "../../lib/db/connect.js";
import { sleep } from "../../lib/exec.js";
import { enqueue } from "../../lib/rebuild/enqueue.js";
import { listFailures, reconcile } from "../../lib/rebuild/ledger.js";
import { openRedis, withIngestQueue } from "../../lib/rebuild/queue.js";
import { openStorage } from "../../lib/storage/index.js";
import { uniqueQueueName } from "../helpers/queue.js";
import {
  assertExactlyOnce,
  drillCorpus,
  type DrillStack,
  drillStack,
  ledgerCounts,
  spawnWorker,
  waitFor,
  type WorkerProcess,
} from "./helpers.js";

let stack: DrillStack;
const cleanups: (() => Promise<void>)[] = [];
before(async () => {
  stack = await drillStack((fn) => cleanups.push(fn));
});
after(async () => {
  for (const fn of cleanups) {
    await fn();
  }
});

async function setup(t: TestContext, copies = 4, batchSize = 10) {
  const archive = drillCorpus(t, copies);
  const url = await stack.database(`d_${randomBytes(5).toString("hex")}`);
  const queue = uniqueQueueName("drill");
  const storage = openStorage(archive.root);
  t.after(() => storage.close());
  await enqueue({
    databaseUrl: url,
    redisUrl: stack.redisUrl,
    queue,
    storage,
    storageLocation: archive.root,
    batchSize,
  });
  const env = { databaseUrl: url, redisUrl: stack.redisUrl };
  const workers = (fast: boolean, n = 2, extra: string[] = []) =>
    Array.from({ length: n }, (_, i) =>
      spawnWorker(t, env, [
        "--name",
        `w${i + 1}`,
        "--queue",
        queue,
        "--stall-timeout",
        "4",
        ...(fast ? ["--fast-rebuild"] : []),
        ...extra,
      ]),
    );
  return { archive, url, queue, workers };
}

/**
 * The header insert of one file is refused with a serialization failure
 * (SQLSTATE 40001), a fault that is retried, every time.
 */
function poison(url: string, filename: string): Promise<unknown> {
  return withClient(url, (c) =>
    c.query(`
      CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM diskfile d WHERE d.id = NEW.diskfile_id
                    AND d.filename = ${quoteLiteral(filename)}) THEN
          RAISE EXCEPTION 'poisoned' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER poison BEFORE INSERT ON header
        FOR EACH ROW EXECUTE FUNCTION poison();`),
  );
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

async function allExitZero(workers: WorkerProcess[]): Promise<void> {
  for (const w of workers) {
    const { code, stderr } = await w.exit;
    assert.equal(code, 0, `worker exit code; stderr:\n${stderr}`);
  }
}

async function midRun(url: string): Promise<void> {
  await waitFor(
    "the first files",
    async () => (await ledgerCounts(url)).done > 0,
  );
  assert.ok(
    (await ledgerCounts(url)).open > 0,
    "work was left when the fault landed",
  );
}

describe("fault drills (own PostgreSQL and Redis, worker processes)", () => {
  for (const fast of [true, false]) {
    const mode = fast ? "--fast-rebuild" : "careful";
    it(`reconcile during a run (${mode}): a second delivery of work in flight or done writes nothing`, async (t) => {
      const { archive, url, queue, workers } = await setup(t);
      const running = workers(fast);
      await midRun(url);
      // Three times over: every batch in flight, queued or done is delivered again.
      for (let i = 0; i < 3; i++) {
        await withIngestQueue(stack.redisUrl, queue, (q) =>
          withClient(url, (c) => reconcile(c, q)),
        );
        await sleep(50);
      }
      await allExitZero(running);
      await assertExactlyOnce(url, archive);
    });

    it(`PostgreSQL restarts (fast, then immediate) during ingest (${mode}): workers live on and finish`, async (t) => {
      const { archive, url, workers } = await setup(t, 6);
      const running = workers(fast);
      await midRun(url);
      await stack.stopPostgres("fast");
      await sleep(300);
      await stack.startPostgres();
      await waitFor(
        "more files",
        async () => (await ledgerCounts(url)).done > 0,
      );
      if ((await ledgerCounts(url)).open > 0) {
        await stack.stopPostgres("immediate");
        await sleep(300);
        await stack.startPostgres();
      }
      await allExitZero(running);
      await assertExactlyOnce(url, archive);
    });
  }

  it("Redis loses everything (FLUSHALL) mid-run: --empty workers find the unfinished files in the ledger and finish them", async (t) => {
    const { archive, url, workers } = await setup(t);
    const running = workers(true);
    await midRun(url);
    const redis = await openRedis(stack.redisUrl);
    await redis.flushall();
    redis.disconnect();
    await allExitZero(running);
    await assertExactlyOnce(url, archive);
  });

  it("a database that is down when the workers start: they wait for it, then finish", async (t) => {
    const { archive, url, workers } = await setup(t, 1);
    await stack.stopPostgres("fast");
    const running = workers(false);
    await sleep(1500);
    assert.deepEqual(
      running.map((w) => w.child.exitCode),
      [null, null],
      "the workers wait",
    );
    await stack.startPostgres();
    await allExitZero(running);
    await assertExactlyOnce(url, archive);
  });

  it("a batch whose write fails transiently every time ends as failed files within --max-retry-time; --empty workers exit 0; `rebuild failures` says why", async (t) => {
    const { archive, url, workers } = await setup(t, 0, 1000);
    const poisoned = archive.good.find((f) => f.path.startsWith("dumps/"))!;
    await poison(url, poisoned.name);
    // One batch of every file, under --fast-rebuild: the batch's one
    // transaction fails every time, so all its files fail.
    const running = workers(true, 1, ["--max-retry-time", "3s"]);
    await allExitZero(running);
    const { total, failures } = await withClient(url, (c) =>
      listFailures(c, 1000),
    );
    assert.equal(total, archive.good.length + archive.corrupt.length);
    const retried = failures.filter((f) =>
      /gave up after retrying/.test(f.error),
    );
    assert.equal(retried.length, archive.good.length);
    assert.match(retried[0]!.error, /poisoned/);
    // The damaged files failed at once with their own reasons, not the batch's.
    for (const c of archive.corrupt) {
      const failure = failures.find((f) => f.filename === c.name)!;
      assert.match(failure.error, c.why);
    }
    assert.equal(
      await withClient(url, async (c) =>
        Number(
          (await c.query<{ n: string }>("SELECT count(*) AS n FROM diskfile"))
            .rows[0]!.n,
        ),
      ),
      0,
    );
  });

  it("the same poisoned file in careful mode fails alone once retries run out; its neighbours are ingested", async (t) => {
    const { archive, url, workers } = await setup(t, 0, 1000);
    const poisoned = archive.good.find((f) => f.path.startsWith("dumps/"))!;
    await poison(url, poisoned.name);
    const running = workers(false, 1, ["--max-retry-time", "3s"]);
    await allExitZero(running);
    const { failures } = await withClient(url, (c) => listFailures(c, 1000));
    const retried = failures.filter((f) =>
      /gave up after retrying/.test(f.error),
    );
    // Files after the poisoned one in the batch never got their turn.
    assert.ok(retried.length >= 1);
    assert.ok(retried.some((f) => f.filename === poisoned.name));
    const counts = await ledgerCounts(url);
    assert.equal(counts.open, 0);
    assert.equal(
      counts.done + counts.failed,
      archive.good.length + archive.corrupt.length,
    );
  });

  it("a worker stopped by SIGTERM hands its batch back at once (--shutdown-timeout 0): no row waits for a lease", async (t) => {
    const { archive, url, queue, workers } = await setup(t, 6, 40);
    const [doomed] = workers(false, 1, ["--shutdown-timeout", "0s"]);
    await midRun(url);
    doomed!.child.kill("SIGTERM");
    const { code, stderr } = await doomed!.exit;
    assert.equal(code, 0, stderr);
    // Nothing is left active or claimed: another worker can take it all now.
    const held = await withClient(url, async (c) =>
      Number(
        (
          await c.query<{ n: string }>(
            "SELECT count(*) AS n FROM fitsfleet.ingest_ledger WHERE state = 'active' OR claim IS NOT NULL",
          )
        ).rows[0]!.n,
      ),
    );
    assert.equal(held, 0);
    const active = await withIngestQueue(stack.redisUrl, queue, (q) =>
      q.getJobCounts("active"),
    );
    assert.equal(active.active, 0, "the job went back to the queue");
    await allExitZero(workers(false, 1, ["--stall-timeout", "600"]));
    await assertExactlyOnce(url, archive);
  });
});
