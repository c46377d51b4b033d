/**
 * The dashboard's page and style. The page holds no script or style of its
 * own (the Content-Security-Policy allows none inline): lib/dashboard/client.ts
 * fills it from the event stream. Element ids are the contract with the
 * client and the browser tests.
 */

export function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fitsfleet rebuild</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/vendor/uPlot.min.css">
<link rel="stylesheet" href="/dashboard.css">
<script src="/vendor/uPlot.iife.min.js"></script>
<script type="module" src="/dashboard.js"></script>
</head>
<body data-state="connecting">
<header>
  <h1>fitsfleet rebuild</h1>
  <span id="run-title"></span>
  <span id="live" title="server-sent events">connecting…</span>
  <span id="generated-at"></span>
</header>
<p id="error" hidden></p>
<main>
  <section id="progress-panel" class="panel wide">
    <h2>Progress</h2>
    <progress id="progress-bar" max="1" value="0"></progress>
    <dl class="counts">
      <div><dt>total</dt><dd id="count-total">–</dd></div>
      <div><dt>queued</dt><dd id="count-queued">–</dd></div>
      <div><dt>active</dt><dd id="count-active">–</dd></div>
      <div><dt>done</dt><dd id="count-done">–</dd></div>
      <div class="bad"><dt>failed</dt><dd id="count-failed">–</dd></div>
      <div><dt>skipped</dt><dd id="count-skipped">–</dd></div>
      <div><dt>files/s</dt><dd id="rate">–</dd></div>
      <div><dt>ETA</dt><dd id="eta">–</dd></div>
    </dl>
    <div id="chart" aria-label="files per second and ETA over the run"></div>
    <p id="chart-empty" class="muted">no file has finished yet</p>
  </section>
  <section id="spend-panel" class="panel">
    <h2>Spend</h2>
    <p><span id="spend-dollars">–</span> of <span id="spend-budget">no cap</span></p>
    <meter id="spend-meter" min="0" max="1" low="0.75" high="0.9" optimum="0" value="0"></meter>
    <p class="muted"><span id="spend-rate">–</span>/h now, cap <span id="spend-rate-cap">none</span>/h; <span id="spend-source"></span></p>
  </section>
  <section id="steps-panel" class="panel">
    <h2>Run steps</h2>
    <p id="steps-empty" class="muted">no run</p>
    <table id="steps" hidden>
      <thead><tr><th>step</th><th>status</th><th>started</th><th>took</th><th>figures</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section id="fleet-panel" class="panel wide">
    <h2>Fleet <span id="fleet-name" class="muted"></span></h2>
    <p id="fleet-summary" class="muted">no fleet recorded</p>
    <table id="fleet" hidden>
      <thead><tr><th>instance</th><th>type</th><th>state</th><th>zone</th><th>lifecycle</th><th>age</th><th>$/h</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section id="failures-panel" class="panel wide">
    <h2>Failures <span id="failures-total" class="muted">0</span></h2>
    <p id="failures-empty" class="muted">no failed files</p>
    <table id="failures" hidden>
      <thead><tr><th>file</th><th>reason</th><th>attempts</th><th>when</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
</body>
</html>
`;
}

export const DASHBOARD_CSS = `
:root { color-scheme: light; --fg: #1d2330; --muted: #667085; --line: #d9dee7; --bad: #b42318; --ok: #067647; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1rem; align-items: baseline; padding: .75rem 1.25rem; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.1rem; margin: 0; }
#live { margin-left: auto; font-size: .85rem; color: var(--muted); }
body[data-state="live"] #live { color: var(--ok); }
body[data-state="disconnected"] #live { color: var(--bad); }
#generated-at { font-size: .85rem; color: var(--muted); }
#error { margin: .75rem 1.25rem 0; padding: .5rem .75rem; background: #fef3f2; color: var(--bad); border: 1px solid #fecdca; border-radius: 6px; }
main { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 1rem; padding: 1rem 1.25rem; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; min-width: 0; }
.panel.wide { grid-column: 1 / -1; }
.panel h2 { font-size: 1rem; margin: 0 0 .5rem; }
.muted { color: var(--muted); }
progress, meter { width: 100%; height: 1rem; }
dl.counts { display: grid; grid-template-columns: repeat(8, minmax(0, 1fr)); gap: .5rem; margin: .75rem 0; }
dl.counts div { background: var(--bg); border-radius: 6px; padding: .4rem .6rem; }
dl.counts dt { font-size: .75rem; color: var(--muted); }
dl.counts dd { margin: 0; font-size: 1.25rem; font-variant-numeric: tabular-nums; }
dl.counts .bad dd { color: var(--bad); }
#chart { min-height: 240px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .75rem; color: var(--muted); font-weight: 600; }
td.reason { white-space: pre-wrap; color: var(--bad); font-family: ui-monospace, monospace; font-size: .8rem; }
td.status-failed { color: var(--bad); }
td.status-done { color: var(--ok); }
td.status-running { font-weight: 600; }
`;
