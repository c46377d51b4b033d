-- 0006 runs: `rebuild run`, the whole rebuild as one pipeline whose state
-- lives here, so that a run killed anywhere continues with `--resume RUN`.
--
-- A run's settings are recorded when it starts (never a secret: URLs are
-- taken from the resuming process's configuration); each step's state
-- moves pending → running → done, skipped or failed, in the same
-- transaction as the work it stands for where the step writes to this
-- database (the enqueue's ledger rows). `checkpoint` holds what a step has
-- finished inside itself, so a resumed step does not do it again.

CREATE TABLE fitsfleet.runs (
    id text PRIMARY KEY,
    state text NOT NULL DEFAULT 'running'
        CHECK (state IN ('running', 'succeeded', 'failed', 'aborted')),
    provider text NOT NULL CHECK (provider IN ('local', 'ec2')),
    storage text NOT NULL,
    queue text NOT NULL,
    -- The run's settings as given (flags, not secrets), what a resume reuses.
    options jsonb NOT NULL,
    -- The fleet the launch step made, once it has.
    fleet text,
    -- host:pid of the process that last acted on the run.
    coordinator text,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    updated_at timestamp with time zone NOT NULL DEFAULT now(),
    ended_at timestamp with time zone,
    reason text
);

CREATE TABLE fitsfleet.run_steps (
    run_id text NOT NULL REFERENCES fitsfleet.runs (id) ON DELETE CASCADE,
    step text NOT NULL CHECK (step IN
        ('init', 'migrate', 'enqueue', 'launch', 'drain', 'calcache', 'terminate', 'verify')),
    position smallint NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'skipped', 'failed')),
    -- Times the step was started: more than one means a resume or a retry.
    attempts integer NOT NULL DEFAULT 0,
    started_at timestamp with time zone,
    ended_at timestamp with time zone,
    -- What the step reported (files listed, rows written, dollars spent…).
    figures jsonb NOT NULL DEFAULT '{}',
    checkpoint jsonb NOT NULL DEFAULT '{}',
    reason text,
    PRIMARY KEY (run_id, step)
);

CREATE INDEX runs_created_at ON fitsfleet.runs (created_at DESC);
