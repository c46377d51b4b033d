/// <reference lib="dom" />
/**
 * The dashboard page's script, run in the browser (compiled with the rest
 * to dist/lib/dashboard/client.js and served as /dashboard.js). It listens
 * to /api/events and redraws each section the server pushes. Text from the
 * database (file names, errors) only ever goes in as textContent.
 */
import type uPlot from "uplot";

import type {
  DashboardFailures,
  DashboardFleet,
  DashboardProgress,
  DashboardSnapshot,
  DashboardSpend,
  DashboardSteps,
} from "./source.js";

// The charting library comes as a classic script before this one.
const UPlot = (globalThis as unknown as { uPlot: typeof uPlot }).uPlot;

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) {
    throw new Error(`the page has no #${id}`);
  }
  return found as T;
}

function text(id: string, value: string): void {
  el(id).textContent = value;
}

const countFormat = new Intl.NumberFormat("en-US");

function count(n: number): string {
  return countFormat.format(n);
}

function rate(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) {
    return "unknown";
  }
  if (seconds > 0 && seconds < 0.95) {
    // A step that took a fraction of a second reads as such, not as 0s.
    return seconds < 0.05 ? "<0.1s" : `${seconds.toFixed(1)}s`;
  }
  const s = Math.round(seconds);
  if (s < 60) {
    return `${s}s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  }
  const h = Math.floor(m / 60);
  if (h < 48) {
    return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  }
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

function money(usd: number | null): string {
  if (usd === null) {
    return "none";
  }
  return `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

function time(iso: string | null): string {
  return iso === null ? "" : new Date(iso).toLocaleString();
}

function cell(row: HTMLTableRowElement, value: string, className?: string) {
  const td = row.insertCell();
  td.textContent = value;
  if (className !== undefined) {
    td.className = className;
  }
  return td;
}

function fillTable(
  id: string,
  rows: readonly string[][],
  classes: (row: number, column: number) => string | undefined = () =>
    undefined,
): void {
  const table = el<HTMLTableElement>(id);
  const body = table.tBodies[0]!;
  body.replaceChildren();
  rows.forEach((values, r) => {
    const tr = body.insertRow();
    values.forEach((v, c) => cell(tr, v, classes(r, c)));
  });
  table.hidden = rows.length === 0;
}

// --- progress ------------------------------------------------------------------

let chart: uPlot | undefined;

function chartData(p: DashboardProgress): uPlot.AlignedData {
  return [
    p.history.map((h) => h.t),
    p.history.map((h) => h.rate),
    p.history.map((h) => (h.etaSeconds === null ? null : h.etaSeconds / 60)),
  ];
}

/**
 * The ETA axis's top: the first minutes of a run, when little has finished
 * yet, give ETAs of days that would flatten the rest of the line.
 */
let etaTop = 1;

function etaScaleTop(p: DashboardProgress): number {
  const etas = p.history
    .map((h) => h.etaSeconds)
    .filter((e): e is number => e !== null)
    .map((e) => e / 60)
    .sort((a, b) => a - b);
  if (etas.length === 0) {
    return 1;
  }
  return Math.max(1, etas[Math.floor((etas.length - 1) * 0.9)]! * 1.2);
}

function drawChart(p: DashboardProgress): void {
  etaTop = etaScaleTop(p);
  const box = el("chart");
  el("chart-empty").hidden = p.history.length > 0;
  if (chart === undefined) {
    if (p.history.length === 0) {
      return;
    }
    chart = new UPlot(
      {
        width: Math.max(300, box.clientWidth),
        height: 240,
        series: [
          {},
          {
            label: "files/s",
            stroke: "#2e6fdb",
            width: 2,
            scale: "rate",
            value: (_u, v) => (v === null ? "–" : rate(v)),
          },
          {
            label: "ETA (min)",
            stroke: "#c4320a",
            width: 1.5,
            dash: [6, 4],
            scale: "eta",
            value: (_u, v) => (v === null ? "–" : duration(v * 60)),
          },
        ],
        axes: [
          {},
          { scale: "rate", label: "files/s" },
          { scale: "eta", side: 1, label: "ETA (min)", grid: { show: false } },
        ],
        scales: {
          rate: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
          eta: { range: () => [0, etaTop] },
        },
      },
      chartData(p),
      box,
    );
    return;
  }
  chart.setData(chartData(p));
}

function showProgress(p: DashboardProgress): void {
  const c = p.counts;
  text("count-total", count(p.total));
  text("count-queued", count(c.queued));
  text("count-active", count(c.active));
  text("count-done", count(c.done));
  text("count-failed", count(c.failed));
  text("count-skipped", count(c.skipped));
  text("rate", rate(p.filesPerSecond));
  text("eta", p.total === 0 ? "–" : duration(p.etaSeconds));
  const bar = el<HTMLProgressElement>("progress-bar");
  bar.max = Math.max(1, p.total);
  bar.value = c.done + c.failed + c.skipped;
  drawChart(p);
}

// --- failures, fleet, spend, steps ---------------------------------------------

function showFailures(f: DashboardFailures): void {
  text(
    "failures-total",
    f.total > f.failures.length
      ? `${count(f.total)} (the first ${count(f.failures.length)})`
      : count(f.total),
  );
  el("failures-empty").hidden = f.total > 0;
  fillTable(
    "failures",
    f.failures.map((x) => [
      x.file,
      x.reason,
      String(x.attempts),
      time(x.finishedAt),
    ]),
    (_r, c) => (c === 1 ? "reason" : undefined),
  );
}

/** The server's clock minus ours, so that ages count on from the server's view. */
let skewMs = 0;
let fleetShown: DashboardFleet | null = null;

function drawFleet(): void {
  const f = fleetShown;
  if (f === null) {
    text("fleet-name", "");
    text("fleet-summary", "no fleet recorded");
    fillTable("fleet", []);
    return;
  }
  const now = Date.now() + skewMs;
  const running = f.instances.filter((i) => i.state === "running").length;
  text(
    "fleet-name",
    `${f.name} (${f.provider}${f.region === null ? "" : ` ${f.region}`})`,
  );
  text(
    "fleet-summary",
    `${f.state}${f.endReason === null ? "" : ` — ${f.endReason}`}; ${running} of ${f.instances.length} instance(s) running; deadline ${time(f.deadline)}`,
  );
  fillTable(
    "fleet",
    f.instances.map((i) => {
      const end = i.endedAt === null ? now : Date.parse(i.endedAt);
      return [
        i.id,
        i.type ?? "local",
        i.state,
        i.zone ?? "–",
        i.lifecycle ?? "–",
        duration(Math.max(0, (end - Date.parse(i.launchedAt)) / 1000)),
        money(i.hourlyPrice),
      ];
    }),
  );
}

function showSpend(s: DashboardSpend): void {
  text("spend-dollars", money(s.dollars));
  text(
    "spend-budget",
    s.budget === null ? "no cap" : `a cap of ${money(s.budget)}`,
  );
  text("spend-rate", money(s.hourlyRate));
  text("spend-rate-cap", money(s.maxHourlyCost));
  text(
    "spend-source",
    s.source === "fleet"
      ? `from the fleet's recorded prices${s.runDollars === null ? "" : `; the run's own figure ${money(s.runDollars)}`}`
      : s.source === "run"
        ? "from the run's spend events"
        : "no fleet or run to count",
  );
  const meter = el<HTMLMeterElement>("spend-meter");
  meter.value =
    s.budget === null || s.budget === 0 ? 0 : Math.min(1, s.dollars / s.budget);
}

let stepsShown: DashboardSteps | null = null;

function drawSteps(): void {
  const s = stepsShown;
  if (s === null || s.status === "no run") {
    text("run-title", s?.runId === null || s === null ? "" : `run ${s.runId}`);
    text(
      "steps-empty",
      s?.runId === null || s === null ? "no run" : `no run ${s.runId} recorded`,
    );
    el("steps-empty").hidden = false;
    fillTable("steps", []);
    return;
  }
  text(
    "run-title",
    `run ${s.runId ?? ""} — ${s.status}${s.provider === null ? "" : ` (${s.provider})`}`,
  );
  el("steps-empty").hidden = true;
  const now = Date.now() + skewMs;
  fillTable(
    "steps",
    s.steps.map((step) => {
      const seconds =
        step.status === "running" && step.startedAt !== null
          ? (now - Date.parse(step.startedAt)) / 1000
          : step.seconds;
      const figures = Object.entries(step.figures)
        .map(([k, v]) => `${k} ${count(v)}`)
        .join(", ");
      return [
        step.step,
        step.status,
        time(step.startedAt),
        seconds === null ? "" : duration(seconds),
        step.reason === null
          ? figures
          : `${figures}${figures === "" ? "" : "; "}${step.reason}`,
      ];
    }),
    (_r, c) => (c === 1 ? `status-${s.steps[_r]!.status}` : undefined),
  );
}

function showError(error: string | null): void {
  const box = el("error");
  box.hidden = error === null;
  box.textContent = error === null ? "" : `cannot read the database: ${error}`;
}

// --- the stream ----------------------------------------------------------------

let updates = 0;

function stamped(generatedAt?: string): void {
  updates += 1;
  document.body.dataset.updates = String(updates);
  if (generatedAt !== undefined) {
    skewMs = Date.parse(generatedAt) - Date.now();
    text("generated-at", `as of ${new Date(generatedAt).toLocaleTimeString()}`);
  }
}

function showSnapshot(s: DashboardSnapshot): void {
  showProgress(s.progress);
  showFailures(s.failures);
  fleetShown = s.fleet;
  drawFleet();
  showSpend(s.spend);
  stepsShown = s.steps;
  drawSteps();
  showError(s.error);
  stamped(s.generatedAt);
}

function on<T>(events: EventSource, name: string, show: (data: T) => void) {
  events.addEventListener(name, (event) => {
    show(JSON.parse((event as MessageEvent<string>).data) as T);
    stamped();
  });
}

function start(): void {
  const events = new EventSource("/api/events");
  const live = el("live");
  events.addEventListener("open", () => {
    document.body.dataset.state = "live";
    live.textContent = "live";
  });
  events.addEventListener("error", () => {
    document.body.dataset.state = "disconnected";
    live.textContent = "disconnected: retrying…";
  });
  on<DashboardSnapshot>(events, "snapshot", showSnapshot);
  on<DashboardProgress>(events, "progress", showProgress);
  on<DashboardFailures>(events, "failures", showFailures);
  on<DashboardFleet | null>(events, "fleet", (f) => {
    fleetShown = f;
    drawFleet();
  });
  on<DashboardSpend>(events, "spend", showSpend);
  on<DashboardSteps>(events, "steps", (s) => {
    stepsShown = s;
    drawSteps();
  });
  on<string | null>(events, "db-error", showError);
  // Ages and running steps count on between pushes.
  setInterval(() => {
    drawFleet();
    drawSteps();
  }, 1000);
  window.addEventListener("resize", () => {
    chart?.setSize({
      width: Math.max(300, el("chart").clientWidth),
      height: 240,
    });
  });
}

start();
