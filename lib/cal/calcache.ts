/**
 * The one writer of `calcache` for single frames: what the reference's
 * `cache_associations` leaves behind for an evaluation. It replaces only the
 * types the evaluation reached, so a frame's rows of types that no longer
 * apply stay, as they do in the reference (it deletes type by type).
 */
import type { AnyClient } from "../db/connect.js";
import { calcacheRows, type FrameEvaluation } from "./evaluate.js";
import type { CalType } from "./rules/common.js";

/** Call inside a transaction: the deletes and inserts belong together. */
export async function writeFrameAssociations(
  client: AnyClient,
  evaluation: FrameEvaluation,
): Promise<number> {
  const caltypes = evaluation.caltypes.map((c) => c.caltype);
  if (caltypes.length === 0) {
    return 0;
  }
  await client.query(
    "DELETE FROM calcache WHERE obs_hid = $1 AND caltype = ANY($2::caltype[])",
    [evaluation.headerId, caltypes],
  );
  const rows = calcacheRows(evaluation);
  if (rows.length > 0) {
    await client.query(
      `INSERT INTO calcache (obs_hid, cal_hid, caltype, rank)
       SELECT $1, cal_hid, caltype, rank
         FROM unnest($2::int[], $3::caltype[], $4::smallint[]) AS r(cal_hid, caltype, rank)`,
      [
        evaluation.headerId,
        rows.map((r) => r.calHid),
        rows.map((r) => r.caltype),
        rows.map((r) => r.rank),
      ],
    );
  }
  return rows.length;
}

export interface SyncResult {
  /** The frame's rows of the types the evaluation reached, afterwards. */
  rows: number;
  /** The types whose rows were replaced (the others already held exactly these rows). */
  changed: CalType[];
}

/**
 * What `writeFrameAssociations` leaves behind, reached by rewriting only the
 * types whose rows differ: a frame re-evaluated with the same result keeps
 * its rows (and their ids), so a re-evaluation that changes nothing writes
 * nothing. Call inside a transaction, holding the frame's lock.
 */
export async function syncFrameAssociations(
  client: AnyClient,
  evaluation: FrameEvaluation,
): Promise<SyncResult> {
  const caltypes = evaluation.caltypes.map((c) => c.caltype);
  if (caltypes.length === 0) {
    return { rows: 0, changed: [] };
  }
  const { rows: held } = await client.query<{
    caltype: CalType;
    cal_hid: number;
    rank: number;
  }>(
    `SELECT caltype, cal_hid, rank FROM calcache
      WHERE obs_hid = $1 AND caltype = ANY($2::caltype[])`,
    [evaluation.headerId, caltypes],
  );
  const key = (r: { calHid: number; rank: number }) => `${r.rank}:${r.calHid}`;
  const byType = (
    rows: { caltype: CalType; calHid: number; rank: number }[],
  ) => {
    const map = new Map<CalType, string>();
    for (const caltype of caltypes) {
      map.set(
        caltype,
        rows
          .filter((r) => r.caltype === caltype)
          .map(key)
          .sort()
          .join(","),
      );
    }
    return map;
  };
  const wanted = calcacheRows(evaluation);
  const before = byType(
    held.map((r) => ({ caltype: r.caltype, calHid: r.cal_hid, rank: r.rank })),
  );
  const after = byType(wanted);
  const changed = caltypes.filter((c) => before.get(c) !== after.get(c));
  if (changed.length > 0) {
    await writeFrameAssociations(client, {
      ...evaluation,
      caltypes: evaluation.caltypes.filter((c) => changed.includes(c.caltype)),
    });
  }
  return { rows: wanted.length, changed };
}
