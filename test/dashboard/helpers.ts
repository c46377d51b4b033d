/**
 * What the dashboard tests share: a ledger in a known state, written with
 * the ledger's own functions the way `rebuild enqueue` and the workers write
 * it, and a headless Chromium (Debian's, driven by puppeteer-core; no
 * browser is ever downloaded) with a profile of its own.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

import puppeteer, { type Browser, type Page } from "puppeteer-core";

import type { AnyClient } from "../../lib/db/connect.js";
import {
  claimRows,
  finishRows,
  insertLedgerRows,
} from "../../lib/rebuild/ledger.js";

export const CHROMIUM = process.env.FFTEST_CHROMIUM ?? "/usr/bin/chromium";

/** `N20231201S0001.fits`…: one night's files, newest sort key first in the ledger. */
export function fileName(i: number): string {
  return `N20231201S${String(i + 1).padStart(4, "0")}.fits`;
}

/** Queues `count` files as `rebuild enqueue` does (a ledger row each); returns their ids, newest first. */
export async function enqueueFiles(
  client: AnyClient,
  count: number,
): Promise<number[]> {
  await client.query(
    `CREATE TEMP TABLE dash_candidates
       (path text, filename text, sortkey text, size bigint, lastmod timestamptz)`,
  );
  await client.query(
    `INSERT INTO dash_candidates
     SELECT '2023/12', f, f, 1000 + i, now() - interval '1 day'
       FROM unnest($1::text[]) WITH ORDINALITY AS u(f, i)`,
    [Array.from({ length: count }, (_, i) => fileName(i))],
  );
  const { ids } = await insertLedgerRows(client, "dash_candidates", {
    storage: "/archive",
    force: false,
    forceMd5: false,
    notBefore: null,
  });
  await client.query("DROP TABLE dash_candidates");
  return ids;
}

/** What a worker's delivery does: claims the rows, then ends each as given (done when no error). */
export async function ingest(
  client: AnyClient,
  ids: number[],
  worker: string,
  errors: Map<number, string> = new Map(),
): Promise<void> {
  const claimed = await claimRows(client, ids, {
    token: randomUUID(),
    worker,
    leaseSeconds: 300,
  });
  await finishRows(
    client,
    claimed.map((row) => {
      const error = errors.get(row.id);
      return {
        id: row.id,
        state: error === undefined ? "done" : "failed",
        outcome: error === undefined ? "new" : "failed",
        error:
          error === undefined ? null : `${row.path}/${row.filename}: ${error}`,
        diskfileId: null,
      };
    }),
  );
}

/** Claims rows and leaves them active, as a worker in the middle of its batch. */
export async function claim(
  client: AnyClient,
  ids: number[],
  worker: string,
): Promise<void> {
  await claimRows(client, ids, {
    token: randomUUID(),
    worker,
    leaseSeconds: 300,
  });
}

/** A headless Chromium for this test, closed when it ends. */
export async function browser(t: TestContext): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh does: apt-get install -y --no-install-recommends chromium)`,
    );
  }
  // A profile of its own, removed after the browser has closed (and written
  // its last files): a folder from tempDir could go first.
  const profile = mkdtempSync(join(tmpdir(), "ff-chromium-"));
  const b = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
  });
  t.after(async () => {
    await b.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return b;
}

/** A page that records what the browser refused (CSP) or threw. */
export async function openPage(
  b: Browser,
): Promise<{ page: Page; problems: string[] }> {
  const page = await b.newPage();
  await page.setViewport({ width: 1280, height: 1100 });
  const problems: string[] = [];
  page.on("pageerror", (error) =>
    problems.push(`page error: ${String(error)}`),
  );
  page.on("response", (response) => {
    if (response.status() >= 400) {
      problems.push(`${response.status()} for ${response.url()}`);
    }
  });
  page.on("console", (message) => {
    // A refused load is reported above, with its address.
    if (
      message.type() === "error" &&
      !message.text().startsWith("Failed to load resource")
    ) {
      problems.push(`console: ${message.text()}`);
    }
  });
  return { page, problems };
}

/** Waits (a generous bound, not a timing claim) until the element's text is `expected`. */
export async function waitForText(
  page: Page,
  selector: string,
  expected: string,
  timeoutMs = 60_000,
): Promise<void> {
  await page.waitForFunction(
    (sel: string, want: string) =>
      document.querySelector(sel)?.textContent?.trim() === want,
    { timeout: timeoutMs, polling: 100 },
    selector,
    expected,
  );
}

export async function textOf(page: Page, selector: string): Promise<string> {
  return page.$eval(selector, (e) => e.textContent?.trim() ?? "");
}

/** The cells of a table's body, row by row. */
export async function tableRows(
  page: Page,
  selector: string,
): Promise<string[][]> {
  return page.$$eval(`${selector} tbody tr`, (rows) =>
    rows.map((r) =>
      Array.from(r.querySelectorAll("td"), (td) => td.textContent ?? ""),
    ),
  );
}
