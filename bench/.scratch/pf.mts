import { withClient } from "../../lib/db/connect.js";
import { evaluateFrame } from "../../lib/cal/evaluate.js";
await withClient(process.argv[2]!, async (c) => {
  const { rows } = await c.query<{ id: number }>("SELECT h.id FROM header h JOIN diskfile d ON d.id=h.diskfile_id WHERE d.canonical AND h.engineering=false ORDER BY random() LIMIT 200");
  const t = performance.now();
  for (const r of rows) await evaluateFrame(c, r.id);
  console.log("ms/frame", ((performance.now() - t) / rows.length).toFixed(2));
});
