/**
 * The enqueue step: the storage listed once into the ledger, then the
 * ledger's work queued in Redis. The ledger rows and the checkpoint that
 * says they are written commit in one transaction, so a resumed run never
 * lists the storage again: it queues what the ledger holds (reconcile),
 * and queuing a file twice is harmless (a delivery writes only the rows it
 * claimed).
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

import { from as copyFrom } from "pg-copy-streams";

import { insertLedgerRows, reconcile } from "../rebuild/ledger.js";
import { isIngestable, sortKey } from "../rebuild/names.js";
import {
  addBatches,
  batchSizeFor,
  ingestQueue,
  openRedis,
} from "../rebuild/queue.js";
import { openStorage } from "../storage/index.js";
import type { StepContext, StepResult } from "./step-context.js";

const CANDIDATES = "run_enqueue_candidates";

function copyText(value: string | number | Date | undefined): string {
  if (value === undefined) {
    return "\\N";
  }
  const text = value instanceof Date ? value.toISOString() : String(value);
  return text.replace(/[\\\t\n\r]/g, (c) =>
    c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
  );
}

/** Ingest workers the run will have: small archives are cut so that each gets some. */
export function runWorkers(ctx: Pick<StepContext, "settings">): number {
  const s = ctx.settings;
  return s.instances * (s.workersPerInstance ?? 1);
}

export async function enqueueStep(ctx: StepContext): Promise<StepResult> {
  const { settings, client } = ctx;
  // Redis first: an unreachable queue is found before anything is written.
  const redis = await openRedis(ctx.redisUrl);
  const queue = ingestQueue(redis, settings.queue);
  queue.on("error", () => undefined);
  try {
    let ids: number[] | undefined;
    if (ctx.checkpoint.ledgerWritten !== true) {
      const storage = openStorage(settings.storage, {
        s3Endpoint: settings.s3Endpoint,
      });
      let listed = 0;
      let matched = 0;
      let bytes = 0;
      try {
        await client.query(
          `CREATE TEMPORARY TABLE IF NOT EXISTS ${CANDIDATES} (
             path text NOT NULL, filename text NOT NULL, sortkey text NOT NULL,
             size bigint, lastmod timestamptz)`,
        );
        await client.query(`TRUNCATE ${CANDIDATES}`);
        for await (const page of storage.list({ recursive: true })) {
          listed += page.length;
          const lines: string[] = [];
          for (const e of page) {
            if (!isIngestable(e.name)) {
              continue;
            }
            matched++;
            bytes += e.size;
            lines.push(
              [e.path, e.name, sortKey(e.name), e.size, e.lastModified]
                .map(copyText)
                .join("\t"),
            );
          }
          if (lines.length > 0) {
            await pipeline(
              Readable.from([`${lines.join("\n")}\n`]),
              client.query(copyFrom(`COPY ${CANDIDATES} FROM STDIN`)),
            );
          }
          ctx.progress({
            message: `enqueue: listed ${listed}, matched ${matched}`,
            fields: { listed, matched },
          });
        }
      } finally {
        await storage.close();
      }
      ctx.fault("enqueue:listed");
      const written = await ctx.commit<{ ids: number[]; inserted: number }>(
        (r) => ({
          ledgerWritten: true,
          listed,
          matched,
          bytes,
          rows: r?.ids.length ?? 0,
          inserted: r?.inserted ?? 0,
        }),
        [],
        (c) =>
          insertLedgerRows(c, CANDIDATES, {
            storage: settings.storage,
            force: false,
            forceMd5: false,
            notBefore: null,
          }),
      );
      ids = written!.ids;
      ctx.fault("enqueue:ledger-written");
    }
    const batchSize =
      settings.batchSize ??
      batchSizeFor(
        Number(ctx.checkpoint.rows ?? ids?.length ?? 0),
        runWorkers(ctx),
      );
    const jobs =
      ids !== undefined
        ? await addBatches(queue, ids, { batchSize })
        : (await reconcile(client, queue, batchSize)).jobs;
    ctx.fault("enqueue:queued");
    const cp = { ...ctx.checkpoint } as Record<string, number>;
    return {
      status: "done",
      figures: {
        listed: cp.listed ?? 0,
        matched: cp.matched ?? 0,
        bytes: cp.bytes ?? 0,
        ledgerRows: cp.rows ?? ids?.length ?? 0,
        newRows: cp.inserted ?? 0,
        jobs,
      },
    };
  } finally {
    await queue.close().catch(() => undefined);
    redis.disconnect();
  }
}
