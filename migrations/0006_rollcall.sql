-- 0009 rollcall: where an interrupted `fitsfleet rollcall` goes on from, and
-- what it found.
--
-- A rollcall walks the present diskfiles in id order and commits a batch at a
-- time: the batch's missing files marked not present and the run's cursor
-- moved past the batch, in one transaction. A run killed at any point
-- resumes after the last committed batch; files marked before the kill are
-- no longer present, so nothing is checked against a stale answer.

CREATE TABLE fitsfleet.rollcall_runs (
    -- The storage, --file-pre, --limit and --checkmd5 of the run: the same
    -- command resumes it, a different one starts its own.
    scope text PRIMARY KEY,
    storage text NOT NULL,
    file_pre text,
    row_limit bigint,
    checkmd5 boolean NOT NULL,
    -- The largest diskfile id when the run started: rows ingested meanwhile
    -- are not this run's to judge.
    max_id integer NOT NULL,
    last_id integer NOT NULL DEFAULT 0,
    checked bigint NOT NULL DEFAULT 0,
    missing bigint NOT NULL DEFAULT 0,
    mismatched bigint NOT NULL DEFAULT 0,
    errors bigint NOT NULL DEFAULT 0,
    -- Wall-clock seconds spent over all the run's invocations.
    seconds double precision NOT NULL DEFAULT 0,
    invocations integer NOT NULL DEFAULT 1,
    started_at timestamp with time zone NOT NULL DEFAULT now(),
    updated_at timestamp with time zone NOT NULL DEFAULT now(),
    finished_at timestamp with time zone
);

-- md5 mismatches (--checkmd5) and files that could not be checked, kept so
-- that a resumed run's summary still lists what the killed one found.
CREATE TABLE fitsfleet.rollcall_findings (
    scope text NOT NULL REFERENCES fitsfleet.rollcall_runs (scope) ON DELETE CASCADE,
    diskfile_id integer NOT NULL,
    kind text NOT NULL CHECK (kind IN ('mismatch', 'error')),
    path text,
    filename text,
    expected_md5 text,
    found_md5 text,
    md5_from text,
    error text,
    PRIMARY KEY (scope, diskfile_id)
);
