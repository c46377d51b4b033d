/**
 * `rebuild dashboard` in a real headless Chromium over a real ledger: the
 * page shows the ledger's numbers and failures with their reasons, follows
 * the ledger as files complete (through server-sent events), agrees with
 * the JSON API, and nothing is served without the token.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { startRebuildDashboard } from "../../cli/commands/rebuild/dashboard.js";
import type {
  DashboardFailures,
  DashboardSnapshot,
} from "../../lib/dashboard/source.js";
import { withClient } from "../../lib/db/connect.js";
import { testDatabase } from "../helpers/db.js";
import {
  browser,
  claim,
  enqueueFiles,
  ingest,
  openPage,
  tableRows,
  textOf,
  waitForText,
} from "./helpers.js";

const PATHS = [
  "/",
  "/dashboard.js",
  "/api/snapshot",
  "/api/failures",
  "/api/fleet",
  "/api/steps",
  "/api/events",
];

describe("rebuild dashboard", () => {
  it("shows a known ledger's numbers and failures, follows it as files complete, and agrees with the JSON API", async (t) => {
    const db = await testDatabase(t);
    const ids = await withClient(db.url, async (c) => {
      const ids = await enqueueFiles(c, 20);
      // Five done, two failed with reasons, one still active, twelve queued.
      await ingest(
        c,
        ids.slice(0, 7),
        "host-a-1",
        new Map([
          [ids[5]!, "HDU 1, byte 2880: no END card in the header"],
          [ids[6]!, "truncated data unit: 1440 of 2880 bytes"],
        ]),
      );
      await claim(c, ids.slice(7, 8), "host-a-2");
      return ids;
    });
    const server = await startRebuildDashboard({
      databaseUrl: db.url,
      pollMs: 200,
    });
    t.after(() => server.close());

    const b = await browser(t);
    const { page, problems } = await openPage(b);
    const response = await page.goto(server.tokenUrl);
    assert.equal(response?.status(), 200);
    assert.equal(page.url(), server.url, "the token leaves the address bar");
    await waitForText(page, "#live", "live");
    assert.equal(await textOf(page, "#count-total"), "20");
    assert.equal(await textOf(page, "#count-queued"), "12");
    assert.equal(await textOf(page, "#count-active"), "1");
    assert.equal(await textOf(page, "#count-done"), "5");
    assert.equal(await textOf(page, "#count-failed"), "2");
    assert.equal(await textOf(page, "#failures-total"), "2");
    const failures = await tableRows(page, "#failures");
    assert.deepEqual(
      failures.map((r) => [r[0], r[1], r[2]]).sort(),
      [
        [
          "2023/12/N20231201S0014.fits",
          "truncated data unit: 1440 of 2880 bytes",
          "1",
        ],
        [
          "2023/12/N20231201S0015.fits",
          "HDU 1, byte 2880: no END card in the header",
          "1",
        ],
      ],
      "each failed file with its reason (ids run newest first: the 6th and 7th ids are files 15 and 14)",
    );
    assert.equal(await textOf(page, "#steps-empty"), "no run");
    assert.equal(await textOf(page, "#fleet-summary"), "no fleet recorded");
    assert.equal(
      await page.$eval(
        "#progress-bar",
        (e) => (e as HTMLProgressElement).value,
      ),
      7,
    );

    // The JSON API, read with the browser's cookie, says what the page shows.
    // No named functions inside evaluate: tsx would wrap them in a helper the page lacks.
    const [apiSnapshot, apiFailures, apiSteps, apiFleet] = await page.evaluate(
      () =>
        Promise.all(
          ["/api/snapshot", "/api/failures", "/api/steps", "/api/fleet"].map(
            (p) => fetch(p).then((r) => r.json() as Promise<unknown>),
          ),
        ),
    );
    const api = {
      snapshot: apiSnapshot,
      failures: apiFailures,
      steps: apiSteps,
      fleet: apiFleet,
    };
    const snapshot = api.snapshot as DashboardSnapshot;
    assert.deepEqual(snapshot.progress.counts, {
      queued: 12,
      active: 1,
      done: 5,
      failed: 2,
      skipped: 0,
    });
    assert.equal(snapshot.progress.total, 20);
    assert.ok(snapshot.progress.history.length > 0, "a point for the chart");
    assert.equal(snapshot.progress.history.at(-1)!.finished, 7);
    assert.deepEqual(api.failures, snapshot.failures);
    const listed = api.failures as DashboardFailures;
    assert.deepEqual(
      listed.failures.map((f) => [f.file, f.reason]).sort(),
      failures.map((r) => [r[0], r[1]]).sort(),
    );
    assert.deepEqual(api.steps, snapshot.steps);
    assert.equal(snapshot.steps.status, "no run");
    assert.equal(api.fleet, null);
    assert.equal(
      await textOf(page, "#rate"),
      snapshot.progress.filesPerSecond.toFixed(2),
    );
    assert.equal(
      (await page.$$eval("#chart canvas", (c) => c.length)) > 0,
      true,
      "uPlot drew the chart",
    );

    // Files complete: the page follows without a reload.
    const updatesBefore = Number(
      await page.$eval("body", (e) => (e as HTMLElement).dataset.updates),
    );
    await withClient(db.url, async (c) => {
      await ingest(c, ids.slice(8, 11), "host-a-1");
      await ingest(
        c,
        ids.slice(11, 12),
        "host-a-1",
        new Map([[ids[11]!, "cannot read the file"]]),
      );
    });
    await waitForText(page, "#count-done", "8");
    await waitForText(page, "#count-failed", "3");
    await waitForText(page, "#failures-total", "3");
    assert.equal(await textOf(page, "#count-queued"), "8");
    const later = await tableRows(page, "#failures");
    assert.ok(
      later.some(
        (r) =>
          r[0] === "2023/12/N20231201S0009.fits" &&
          r[1] === "cannot read the file",
      ),
      `the new failure with its reason: ${JSON.stringify(later)}`,
    );
    assert.ok(
      Number(
        await page.$eval("body", (e) => (e as HTMLElement).dataset.updates),
      ) > updatesBefore,
    );
    assert.equal(
      await page.evaluate(
        () => performance.getEntriesByType("navigation").length,
      ),
      1,
      "no reload: the stream brought the change",
    );
    assert.deepEqual(
      problems,
      [],
      "no script error and nothing the CSP refused",
    );
  });

  it("serves nothing without the token: page, script, API and event stream", async (t) => {
    const db = await testDatabase(t);
    const server = await startRebuildDashboard({
      databaseUrl: db.url,
      pollMs: 200,
    });
    t.after(() => server.close());
    for (const path of PATHS) {
      const none = await fetch(new URL(path, server.url));
      assert.equal(none.status, 401, `${path} without a token`);
      await none.body?.cancel();
      const wrong = await fetch(
        new URL(`${path}?token=${server.token.slice(0, -1)}x`, server.url),
      );
      assert.equal(wrong.status, 401, `${path} with a wrong token`);
      await wrong.body?.cancel();
      const badCookie = await fetch(new URL(path, server.url), {
        headers: { cookie: `fitsfleet_dashboard_${server.port}=nope` },
      });
      assert.equal(badCookie.status, 401, `${path} with a wrong cookie`);
      await badCookie.body?.cancel();
      const bearer = await fetch(new URL(path, server.url), {
        headers: { authorization: `Bearer ${server.token}` },
      });
      assert.equal(bearer.status, 200, `${path} with the token as a header`);
      assert.match(
        bearer.headers.get("content-security-policy") ?? "",
        /script-src 'self'/,
      );
      await bearer.body?.cancel();
    }
    // The URL's token becomes a cookie for this port, and the URL loses it.
    const first = await fetch(server.tokenUrl, { redirect: "manual" });
    assert.equal(first.status, 303);
    assert.equal(first.headers.get("location"), "/");
    const cookie = first.headers.get("set-cookie") ?? "";
    assert.match(cookie, new RegExp(`^fitsfleet_dashboard_${server.port}=`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const withCookie = await fetch(server.url, {
      headers: { cookie: cookie.split(";")[0]! },
    });
    assert.equal(withCookie.status, 200);
    const html = await withCookie.text();
    assert.doesNotMatch(
      html,
      /<script>|<style>|style=/,
      "no inline script or style",
    );

    // A browser without the token gets the 401 too.
    const b = await browser(t);
    const { page } = await openPage(b);
    const response = await page.goto(server.url);
    assert.equal(response?.status(), 401);
    assert.match(await page.content(), /needs its token/);
  });

  it("pushes only what changed: a poll with no change sends nothing", async (t) => {
    const db = await testDatabase(t);
    const ids = await withClient(db.url, async (c) => {
      const ids = await enqueueFiles(c, 4);
      await ingest(c, ids.slice(0, 1), "w", new Map([[ids[0]!, "broken"]]));
      return ids;
    });
    const server = await startRebuildDashboard({
      databaseUrl: db.url,
      pollMs: 100,
    });
    t.after(() => server.close());
    const abort = new AbortController();
    t.after(() => abort.abort());
    const res = await fetch(new URL("/api/events", server.url), {
      headers: { authorization: `Bearer ${server.token}` },
      signal: abort.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    const events: { name: string; data: unknown }[] = [];
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    const waiters: (() => void)[] = [];
    void (async () => {
      for (;;) {
        const { value, done } = await reader
          .read()
          .catch(() => ({ value: undefined, done: true }));
        if (done) {
          return;
        }
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const name = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (name !== undefined && data !== undefined) {
            events.push({ name, data: JSON.parse(data) });
            waiters.splice(0).forEach((w) => w());
          }
        }
      }
    })();
    const until = async (test: () => boolean) => {
      const bound = Date.now() + 60_000;
      while (!test()) {
        assert.ok(
          Date.now() < bound,
          `no such event: ${JSON.stringify(events.map((e) => e.name))}`,
        );
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 500);
        });
      }
    };
    await until(() => events.length > 0);
    assert.equal(events[0]!.name, "snapshot");
    assert.equal(
      (events[0]!.data as DashboardSnapshot).progress.counts.failed,
      1,
    );
    for (let i = 0; i < 3; i += 1) {
      await server.nextPoll();
    }
    assert.deepEqual(
      events.filter(
        (e) =>
          e.name === "failures" || e.name === "fleet" || e.name === "steps",
      ),
      [],
      "unchanged sections are not sent again",
    );
    await withClient(db.url, (c) =>
      ingest(c, ids.slice(1, 2), "w", new Map([[ids[1]!, "also broken"]])),
    );
    await until(() => events.some((e) => e.name === "failures"));
    const pushed = events.find((e) => e.name === "failures")!
      .data as DashboardFailures;
    assert.equal(pushed.total, 2);
    assert.ok(events.some((e) => e.name === "progress"));
  });
});
