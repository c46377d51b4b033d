import { rebuildCalcache } from "../../lib/cal/rebuild/index.js";
const t = performance.now();
const r = await rebuildCalcache({ databaseUrl: process.argv[2]!, jobs: 2, batchSize: Number(process.argv[3] ?? 20000), onProgress: (p) => console.log(((performance.now() - t) / 1000).toFixed(1), p.phase, p.framesDone) });
console.log(((performance.now() - t) / 1000).toFixed(1), "s", r.framesTotal, "frames", r.rowsWritten, "rows", r.statements, "statements", r.shapes, "shapes", JSON.stringify(r.outcomes));
