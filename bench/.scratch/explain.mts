import { withClient } from "../../lib/db/connect.js";
import { compileSearchParts } from "../../lib/cal/core/query.js";
import { FRAME_HEADER_COLUMNS, planFrame } from "../../lib/cal/evaluate.js";
import { INSTRUMENT_RULES } from "../../lib/cal/rules/index.js";
import { ParameterTypes, ShapeGroups, shapeStatement } from "../../lib/cal/rebuild/shapes.js";
const url = process.argv[2]!;
await withClient(url, async (client) => {
  const { rows: ids } = await client.query<{ id: number }>(`SELECT h.id FROM header h JOIN diskfile d ON d.id=h.diskfile_id WHERE d.canonical AND h.engineering = false ORDER BY h.id LIMIT ${process.argv[3] ?? 20000}`);
  const hids = ids.map((r) => r.id);
  const { rows: headers } = await client.query(`SELECT ${FRAME_HEADER_COLUMNS.join(", ")} FROM header h WHERE h.id = ANY($1::int[])`, [hids]);
  const inst = new Map<string, Map<number, Record<string, unknown>>>();
  for (const r of INSTRUMENT_RULES) {
    const { rows } = await client.query(`SELECT DISTINCT ON (header_id) * FROM ${r.table} WHERE header_id = ANY($1::int[]) ORDER BY header_id, id`, [hids]);
    inst.set(r.table, new Map(rows.map((x) => [x.header_id as number, x])));
  }
  const tp = performance.now();
  const groups = new ShapeGroups();
  for (const h of headers as any[]) {
    const plan = planFrame(h, (t) => inst.get(t)?.get(h.id));
    if (plan.kind === "evaluated") continue;
    for (const s of plan.steps) {
      if (s.lookup.kind === "search") groups.add(compileSearchParts(s.lookup.search, plan.context), { obsHid: h.id, caltype: s.caltype, part: 0, weaveLimit: null });
      else if (s.lookup.kind === "interleave") s.lookup.parts.forEach((x, part) => groups.add(compileSearchParts(x, plan.context), { obsHid: h.id, caltype: s.caltype, part, weaveLimit: 10 }));
    }
  }
  if (process.env.NOLOOP) { await client.query("SET enable_nestloop = off"); }
  console.log("load+plan ms", (performance.now() - tp).toFixed(0));
  const types = new ParameterTypes();
  await client.query("CREATE UNLOGGED TABLE IF NOT EXISTS scratch_work (obs_hid int, caltype caltype, part smallint, rn bigint, cal_hid int, weave_limit int)");
  const timings: [number, string, number][] = [];
  for (const shape of groups.shapes.values()) {
    const t = await types.of(client, shape);
    const { text, params } = shapeStatement(shape, shape.members, t, "scratch_work");
    const t0 = performance.now();
    await client.query(text, params);
    timings.push([performance.now() - t0, text, shape.members.length]);
    if (process.argv[4] === "explain" && shape.members.length === 1230) {
      const { rows } = await client.query("EXPLAIN (ANALYZE, BUFFERS off) " + text, params);
      console.log(text); console.log(rows.map((r: any) => r["QUERY PLAN"]).join("\n")); process.exit(0);
    }
  }
  timings.sort((a, b) => b[0] - a[0]);
  console.log("total ms", timings.reduce((s, x) => s + x[0], 0).toFixed(0), "shapes", timings.length);
  for (const [ms, text, n] of timings.slice(0, 3)) console.log(ms.toFixed(0), n, text.slice(0, 1500));
});
