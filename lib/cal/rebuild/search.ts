/**
 * One search thread's work: its share of the batches, each read and
 * planned on one connection while the previous batch's shape statements
 * run on another. Every thread has its own JavaScript heap and event loop,
 * so planning (JavaScript) spreads over the machine's cores with the
 * database's statements, instead of holding up every statement behind one
 * event loop.
 */
import type { AnyClient } from "../../db/connect.js";
import { type BatchTally, planBatch } from "./index.js";
import { FramePlanner } from "./plan.js";
import type {
  SearchThreadData,
  SearchThreadMessage,
} from "./search-protocol.js";
import { ParameterTypes, runShape, type Shape } from "./shapes.js";
import { rebuildConnection, WORK_TABLE } from "./tables.js";

/**
 * A shape statement hashes and sorts up to a batch's frames times their
 * candidates; at the server's default (4MB) those spill to temp files.
 */
const SEARCH_WORK_MEM = "256MB";

/** How often a thread tells its progress within a batch. */
const PROGRESS_MS = 1000;

async function searcherConnection(url: string): Promise<AnyClient> {
  const client = await rebuildConnection(url);
  await client.query(`SET work_mem = '${SEARCH_WORK_MEM}'`);
  // The planner misjudges the frames' side (an unnest) and sorts both
  // sides for a merge join; hashing the few candidates is cheaper.
  await client.query("SET enable_mergejoin = off");
  return client;
}

/**
 * Plans and searches `data.batches` in order: batch b+1 is planned while
 * batch b's statements run. No statement runs before `ready` (the
 * candidate tables exist); after `stopped()` turns true no new one starts.
 */
export async function searchBatches(
  data: SearchThreadData,
  post: (message: SearchThreadMessage) => void,
  ready: Promise<void>,
  stopped: () => boolean,
): Promise<void> {
  const candidateOf = new Map(data.candidates);
  const types = new ParameterTypes();
  // One memo for all of this thread's batches.
  const frames = new FramePlanner();
  const clients: AnyClient[] = [];
  let planned: Promise<[Shape[], BatchTally]> | undefined;
  try {
    clients.push(await searcherConnection(data.databaseUrl));
    clients.push(await searcherConnection(data.databaseUrl));
    const [planner, searcher] = clients as [AnyClient, AnyClient];
    const plan = (b: number) => {
      const batch = data.batches[b];
      if (batch === undefined) {
        return undefined;
      }
      const tally: BatchTally = {
        outcomes: { skipped: 0, unsupported: 0, failed: 0, associated: 0 },
        failures: [],
        searches: 0,
      };
      const promise = planBatch(planner, batch, tally, frames).then(
        (shapes): [Shape[], BatchTally] => [shapes, tally],
      );
      // Awaited below, or abandoned when a statement fails.
      promise.catch(() => undefined);
      return promise;
    };
    planned = plan(0);
    await ready;
    for (let b = 0; b < data.batches.length && !stopped(); b++) {
      const [shapes, tally] = await planned!;
      planned = plan(b + 1);
      shapes.sort((x, y) => y.members.length - x.members.length);
      let statements = 0;
      const frames = data.batches[b]!.length;
      const searches = shapes.reduce((n, s) => n + s.members.length, 0);
      let searched = 0;
      let told = Date.now();
      for (const shape of shapes) {
        if (stopped()) {
          return;
        }
        const parameterTypes = await types.of(searcher, shape);
        await runShape(
          searcher,
          shape,
          shape.members,
          parameterTypes,
          WORK_TABLE,
          candidateOf.get(shape.parts.from),
        );
        statements += 1;
        searched += shape.members.length;
        if (Date.now() - told >= PROGRESS_MS) {
          told = Date.now();
          post({
            kind: "searching",
            frames: Math.floor((frames * searched) / Math.max(1, searches)),
          });
        }
      }
      post({
        kind: "batch",
        frames,
        ...tally,
        statements,
        shapeKeys: shapes.map((s) => s.key),
      });
    }
  } finally {
    await planned?.catch(() => undefined);
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}
