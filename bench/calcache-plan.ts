/**
 * The JavaScript side of `rebuild calcache`: planning a batch of frames
 * (planFrame, compileSearchParts, grouping by shape) and building every
 * shape's statement and parameters as node-postgres would send them
 * (`shapeStatement`, then `prepareValue` on each parameter). The baseline is
 * the code of an earlier commit (default: the one before the planning was
 * reworked), extracted with `git archive` into a temporary directory and
 * imported beside the current code, so both run in the same process on the
 * same batches, interleaved (old, new, then new, old in the next round).
 * CPU seconds come from process.cpuUsage (user + system); a full GC runs
 * before each timed part, so one side's garbage is not charged to the other.
 *
 * Before timing, one untimed pass checks that both sides give the same
 * outcomes and the same shapes with the same members (and their values) in
 * the same order. (Until the statements were reworked to read the
 * candidate tables, it also checked their text and parameter bytes.)
 *
 * Usage: node --expose-gc --import tsx bench/calcache-plan.ts [science=100000] [batch=150000] [rounds=2] [baseline=b5d4c39]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

import pg from "pg";

import {
  type BatchRows,
  type BatchTally,
  planRows,
  readBatch,
} from "../lib/cal/rebuild/index.js";
import { FramePlanner } from "../lib/cal/rebuild/plan.js";
import { type Shape, shapeStatement } from "../lib/cal/rebuild/shapes.js";
import { type AnyClient, withClient } from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { stackDown, stackUp, stackUrls } from "../lib/stack/index.js";
import {
  generateCalArchive,
  replicateCalArchive,
} from "../test/helpers/cal-archive.js";

const science = Number(process.argv[2] ?? 100_000);
const batchSize = Number(process.argv[3] ?? 150_000);
const rounds = Number(process.argv[4] ?? 2);
const baseline = process.argv[5] ?? "b5d4c39";
const SEED_FRAMES = 400;
const SHIFT_DAYS = 1000;
const root = resolve(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-calplan-"));
const oldTree = mkdtempSync(join(tmpdir(), "fitsfleet-bench-calplan-old-"));

// node-postgres's own conversion of a parameter (arrays become literals).
const prepareValue = (
  pg as unknown as { utils?: { prepareValue(v: unknown): unknown } }
).utils?.prepareValue;

interface OldShape {
  key: string;
  parts: { from: string; where: string[]; order: string[]; limit: string };
  members: {
    obsHid: number;
    caltype: string;
    part: number;
    weaveLimit: number | null;
    values: unknown[];
  }[];
}
interface OldModules {
  planFrame: (
    header: unknown,
    row: (table: string) => Record<string, unknown> | undefined,
  ) => {
    kind: string;
    evaluation?: { outcome: string; reason?: string };
    context?: unknown;
    steps?: {
      caltype: string;
      lookup: {
        kind: string;
        search?: unknown;
        parts?: unknown[];
        limit?: number;
      };
    }[];
    failure?: { reason: string };
  };
  compileSearchParts: (search: unknown, context: unknown) => unknown;
  ShapeGroups: new () => {
    shapes: Map<string, OldShape>;
    searches: number;
    add(parts: unknown, member: unknown): void;
  };
  shapeStatement: (
    shape: OldShape,
    members: OldShape["members"],
    types: string[],
    work: string,
  ) => { text: string; params: unknown[] };
}

async function loadBaseline(): Promise<OldModules> {
  const archive = execFileSync("git", ["archive", baseline, "lib"], {
    cwd: root,
    maxBuffer: 1 << 28,
  });
  execFileSync("tar", ["-x", "-C", oldTree], { input: archive });
  execFileSync("cp", [
    join(root, "package.json"),
    join(root, "tsconfig.json"),
    oldTree,
  ]);
  symlinkSync(join(root, "node_modules"), join(oldTree, "node_modules"));
  const url = (p: string) => pathToFileURL(join(oldTree, p)).href;
  const evaluate = (await import(url("lib/cal/evaluate.ts"))) as {
    planFrame: OldModules["planFrame"];
  };
  const query = (await import(url("lib/cal/core/query.ts"))) as {
    compileSearchParts: OldModules["compileSearchParts"];
  };
  const shapes = (await import(url("lib/cal/rebuild/shapes.ts"))) as {
    ShapeGroups: OldModules["ShapeGroups"];
    shapeStatement: OldModules["shapeStatement"];
  };
  return {
    planFrame: evaluate.planFrame,
    compileSearchParts: query.compileSearchParts,
    ShapeGroups: shapes.ShapeGroups,
    shapeStatement: shapes.shapeStatement,
  };
}

function emptyReport(): BatchTally {
  return {
    outcomes: { skipped: 0, unsupported: 0, failed: 0, associated: 0 },
    failures: [],
    searches: 0,
  };
}

const PLAN_SLICE = 500;

/** The baseline's planBatch after its reads, as it was. */
async function oldPlan(
  old: OldModules,
  rows: BatchRows,
  report: BatchTally,
): Promise<OldShape[]> {
  const groups = new old.ShapeGroups();
  for (const [n, header] of rows.headers.entries()) {
    if (n % PLAN_SLICE === PLAN_SLICE - 1) {
      await new Promise((r) => setImmediate(r));
    }
    const plan = old.planFrame(header, (table) =>
      rows.instrumentRows.get(table)?.get(header.id),
    );
    if (plan.kind === "evaluated") {
      report.outcomes[plan.evaluation!.outcome as "failed"] += 1;
      continue;
    }
    for (const { caltype, lookup } of plan.steps!) {
      if (lookup.kind === "search") {
        groups.add(old.compileSearchParts(lookup.search, plan.context), {
          obsHid: header.id,
          caltype,
          part: 0,
          weaveLimit: null,
        });
      } else if (lookup.kind === "interleave") {
        lookup.parts!.forEach((search, part) =>
          groups.add(old.compileSearchParts(search, plan.context), {
            obsHid: header.id,
            caltype,
            part,
            weaveLimit: lookup.limit,
          }),
        );
      }
    }
    report.outcomes[plan.failure === undefined ? "associated" : "failed"] += 1;
  }
  report.searches += groups.searches;
  return [...groups.shapes.values()];
}

function shapeText(parts: OldShape["parts"]): string {
  const { from, where, order, limit } = parts;
  return `SELECT h.id FROM ${from} WHERE ${where.join(" AND ")} ORDER BY ${order.join(", ")} LIMIT ${limit}`;
}

const typesByText = new Map<string, string[]>();

async function fetchTypes(
  client: AnyClient,
  shapes: OldShape[] | Shape[],
): Promise<void> {
  for (const shape of shapes) {
    const text = shapeText(shape.parts);
    if (typesByText.has(text)) {
      continue;
    }
    await client.query(`PREPARE bench_calplan AS ${text}`);
    const { rows } = await client.query<{ types: string[] }>(
      `SELECT parameter_types::text[] AS types FROM pg_prepared_statements WHERE name = 'bench_calplan'`,
    );
    await client.query("DEALLOCATE bench_calplan");
    typesByText.set(text, rows[0]!.types);
  }
}

/** Every shape's statement and its parameters as node-postgres sends them. */
function statements(
  shapes: OldShape[] | Shape[],
  build: OldModules["shapeStatement"],
): { text: string; params: unknown[] }[] {
  return shapes.map((shape) => {
    const types = typesByText.get(shapeText(shape.parts))!;
    const { text, params } = build(
      shape as OldShape,
      shape.members as OldShape["members"],
      types,
      "calcache_work",
    );
    return { text, params: params.map((p) => prepareValue!(p)) };
  });
}

/** CPU seconds since `from`, user and system. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
}

async function runOld(old: OldModules, rows: BatchRows) {
  const report = emptyReport();
  const c = process.cpuUsage();
  const shapes = await oldPlan(old, rows, report);
  const planCpu = cpuSince(c);
  const built = statements(shapes, old.shapeStatement);
  return { report, shapes, built, planCpu };
}

async function runNew(rows: BatchRows, planner: FramePlanner) {
  const report = emptyReport();
  const c = process.cpuUsage();
  const shapes = await planRows(rows, report, planner);
  const planCpu = cpuSince(c);
  const built = statements(
    shapes,
    shapeStatement as OldModules["shapeStatement"],
  );
  return { report, shapes, built, planCpu };
}

function compare(
  batch: number,
  a: Awaited<ReturnType<typeof runOld>>,
  b: Awaited<ReturnType<typeof runNew>>,
): void {
  const fail = (what: string) => {
    throw new Error(`batch ${batch}: old and new differ: ${what}`);
  };
  const counts = (r: BatchTally) => JSON.stringify([r.outcomes, r.searches]);
  if (counts(a.report) !== counts(b.report)) {
    fail(`counts ${counts(a.report)} vs ${counts(b.report)}`);
  }
  if (a.shapes.length !== b.shapes.length) {
    fail(`${a.shapes.length} vs ${b.shapes.length} shapes`);
  }
  a.shapes.forEach((s, i) => {
    const t = b.shapes[i]!;
    if (shapeText(s.parts) !== shapeText(t.parts)) {
      fail(`shape ${i} text`);
    }
    if (s.members.length !== t.members.length) {
      fail(`shape ${i} members`);
    }
    // The plans, not the statements: since b5d4c39 the statements read the
    // candidate tables and send constant columns once, so their text differs.
    const member = (m: (typeof s.members)[number]) =>
      JSON.stringify([m.obsHid, m.caltype, m.part, m.weaveLimit, m.values]);
    s.members.forEach((m, k) => {
      if (member(m) !== member(t.members[k]!)) {
        fail(`shape ${i} member ${k}`);
      }
    });
  });
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function timed(
  work: () => Promise<{ planCpu: number }>,
): Promise<{ cpu: number; plan: number; wall: number }> {
  gc();
  const c = process.cpuUsage();
  const t = performance.now();
  const { planCpu } = await work();
  return {
    cpu: cpuSince(c),
    plan: planCpu,
    wall: (performance.now() - t) / 1000,
  };
}

try {
  if (prepareValue === undefined) {
    throw new Error("node-postgres has no utils.prepareValue");
  }
  const old = await loadBaseline();
  const batches: BatchRows[] = [];
  const { state } = await stackUp(dir, { unsafeFast: true });
  const { adminUrl } = stackUrls(state);
  await withClient(adminUrl, (c) => c.query("CREATE DATABASE bench_calplan"));
  const url = new URL(adminUrl);
  url.pathname = "/bench_calplan";
  await withClient(url.toString(), async (c) => {
    let t = performance.now();
    await runMigrations(c);
    await generateCalArchive(c, 20190615, SEED_FRAMES);
    const { rows } = await c.query<{ n: string }>(
      `SELECT count(*) AS n FROM header
        WHERE observation_type = 'OBJECT' AND observation_class = 'science'`,
    );
    const perCopy = Number(rows[0]!.n);
    await replicateCalArchive(c, Math.ceil(science / perCopy) - 1, SHIFT_DAYS);
    await c.query("VACUUM ANALYZE");
    // The rebuild's selection of covered frames, unfiltered.
    const { rows: ids } = await c.query<{ id: number }>(
      `SELECT h.id FROM header h JOIN diskfile d ON d.id = h.diskfile_id
        WHERE d.canonical AND d.mdready IS NOT FALSE AND h.engineering = false
        ORDER BY h.id`,
    );
    const hids = ids.map((r) => r.id);
    for (let i = 0; i < hids.length; i += batchSize) {
      batches.push(await readBatch(c, hids.slice(i, i + batchSize)));
    }
    console.log(
      `archive: ${hids.length.toLocaleString("en-US")} covered frames in ${batches.length} batches of up to ${batchSize.toLocaleString("en-US")}; generated and read in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    t = performance.now();
    let searches = 0;
    const planner = new FramePlanner();
    for (const [b, rows] of batches.entries()) {
      await fetchTypes(c, await oldPlan(old, rows, emptyReport()));
      await fetchTypes(
        c,
        await planRows(rows, emptyReport(), new FramePlanner()),
      );
      const a = await runOld(old, rows);
      compare(b, a, await runNew(rows, planner));
      searches += a.report.searches;
    }
    console.log(
      `identical: every batch's outcomes, shapes and members with their values (${searches.toLocaleString("en-US")} searches); checked in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
  });
  const totals = {
    old: { cpu: 0, plan: 0, wall: 0 },
    new: { cpu: 0, plan: 0, wall: 0 },
  };
  let memo = "";
  for (let r = 0; r < rounds; r++) {
    // A fresh planner each round, shared by its batches as in one rebuild.
    const planner = new FramePlanner();
    for (const [b, rows] of batches.entries()) {
      const order = (r + b) % 2 === 0 ? ["old", "new"] : ["new", "old"];
      const line: string[] = [];
      // CALPLAN_SIDES=new times one side only (for a profile of it).
      const sides = process.env.CALPLAN_SIDES?.split(",") ?? order;
      for (const side of order.filter((x) => sides.includes(x)) as (
        "old" | "new"
      )[]) {
        const m = await timed(() =>
          side === "old" ? runOld(old, rows) : runNew(rows, planner),
        );
        totals[side].cpu += m.cpu;
        totals[side].plan += m.plan;
        totals[side].wall += m.wall;
        line.push(
          `${side} ${m.cpu.toFixed(2)} s CPU (plan ${m.plan.toFixed(2)}, statements ${(m.cpu - m.plan).toFixed(2)})`,
        );
      }
      console.log(
        `round ${r + 1}, batch ${b + 1} (${rows.headers.length} frames): ${line.join(", ")}`,
      );
    }
    memo = `memo: ${planner.hits.toLocaleString("en-US")} frames reused a plan, ${planner.misses.toLocaleString("en-US")} planned fresh, ${planner.size.toLocaleString("en-US")} nodes in the memo`;
  }
  console.log("");
  for (const side of ["old", "new"] as const) {
    const t = totals[side];
    console.log(
      `${side}: ${t.cpu.toFixed(2)} s CPU over ${rounds} rounds: planning ${t.plan.toFixed(2)} s, statements and parameters ${(t.cpu - t.plan).toFixed(2)} s (${t.wall.toFixed(2)} s wall)`,
    );
  }
  console.log(
    `ratio: ${(totals.old.cpu / totals.new.cpu).toFixed(2)}x less CPU (planning ${(totals.old.plan / totals.new.plan).toFixed(2)}x, statements ${((totals.old.cpu - totals.old.plan) / (totals.new.cpu - totals.new.plan)).toFixed(2)}x)`,
  );
  console.log(`${memo} (last round)`);
} finally {
  await stackDown(dir, { purge: true });
  rmSync(oldTree, { recursive: true, force: true });
}
