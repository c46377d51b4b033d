-- 0003 ledger claims: a delivery of a batch owns the rows it claimed.
--
-- At-least-once delivery means a batch can be worked on twice at the same
-- time (a stalled job handed on while its first worker still runs, a
-- reconcile during a run, a second enqueue). A claim token, written when a
-- delivery takes a row and checked under FOR UPDATE in the transaction that
-- writes the row's archive rows, lets exactly one delivery write. The lease
-- is renewed while the delivery works; a row whose lease ran out (its worker
-- died) can be claimed again.

ALTER TABLE fitsfleet.ingest_ledger
    ADD COLUMN claim uuid,
    ADD COLUMN lease_until timestamp with time zone;

-- The rows a worker looks for when the queue is empty: unfinished ones.
CREATE INDEX ingest_ledger_unfinished ON fitsfleet.ingest_ledger (id)
    WHERE state IN ('queued', 'active');

-- Deliveries that took over a row whose lease had run out: interruptions
-- (a killed worker, a lost instance), told apart from retries and replays.
ALTER TABLE fitsfleet.ingest_ledger
    ADD COLUMN interruptions integer NOT NULL DEFAULT 0;

-- The preview worker's claims on the archive's previewqueue rows (that table
-- is upstream's, so the claim lives beside it): taken and committed before
-- rendering, so no transaction stays open meanwhile, and taken over when the
-- lease runs out.
CREATE TABLE fitsfleet.preview_claims (
    queue_id integer PRIMARY KEY,
    claim uuid NOT NULL,
    lease_until timestamp with time zone NOT NULL
);
CREATE INDEX preview_claims_claim ON fitsfleet.preview_claims (claim);
