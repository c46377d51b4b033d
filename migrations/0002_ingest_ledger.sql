-- 0002 ingest ledger: one row per file a rebuild ingests, in our own schema.
--
-- PostgreSQL is the source of truth of a rebuild; Redis only carries batches of
-- ledger ids to the workers. A file's archive rows and its ledger transition
-- commit in the same transaction, so status, failures and `rebuild reconcile`
-- (re-creating the queue after Redis is lost) all read this table.

CREATE TABLE fitsfleet.ingest_ledger (
    id bigserial PRIMARY KEY,
    -- Where the file is stored: a directory, or s3://bucket/prefix.
    storage text NOT NULL,
    -- diskfile.path and diskfile.filename: the directory under the storage root, and the stored name
    path text NOT NULL,
    filename text NOT NULL,
    -- The reference's sortkey: newest science files first.
    sortkey text NOT NULL,
    -- Size and modification time as listed, when the enqueue listed them.
    size bigint,
    lastmod timestamp with time zone,
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'active', 'done', 'failed', 'skipped')),
    force boolean NOT NULL DEFAULT false,
    force_md5 boolean NOT NULL DEFAULT false,
    -- Not before this time (--after).
    not_before timestamp with time zone,
    -- Deliveries to a worker; more than one means an interruption or a replay.
    attempts integer NOT NULL DEFAULT 0,
    -- What the ingest did: new, new version, unchanged; or why it failed.
    outcome text,
    error text,
    worker text,
    diskfile_id integer,
    queued_at timestamp with time zone NOT NULL DEFAULT now(),
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    UNIQUE (path, filename)
);

CREATE INDEX ingest_ledger_state_sortkey ON fitsfleet.ingest_ledger (state, sortkey DESC);
CREATE INDEX ingest_ledger_finished_at ON fitsfleet.ingest_ledger (finished_at)
    WHERE finished_at IS NOT NULL;
