/**
 * The one writer of `calcache` for single frames: what the reference's
 * `cache_associations` leaves behind for an evaluation. It replaces only the
 * types the evaluation reached, so a frame's rows of types that no longer
 * apply stay, as they do in the reference (it deletes type by type).
 */
import type { AnyClient } from "../db/connect.js";
import { calcacheRows, type FrameEvaluation } from "./evaluate.js";

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
