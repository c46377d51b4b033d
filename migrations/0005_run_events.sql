-- 0007 run events: the coordinator's durable state for `rebuild run`.
--
-- A run's state is the fold of an append-only event log plus periodic
-- snapshots of that fold; a standby coordinator rebuilds it from the
-- youngest usable snapshot and the later events. A lease row says which
-- coordinator is active, with an epoch that fences a stale one.
--
-- Ordering. Sequence numbers come from one sequence, so concurrent appends
-- never wait for each other, and a number can become visible before a
-- smaller one that an open transaction still holds (PostgreSQL sequences are
-- not commit-ordered). Each event therefore records its writer's
-- transaction and the other transactions appending to its run just after
-- its number was drawn (`in_flight`): a reader passes an event only once none of those is
-- still running (lib/run/events.ts), so it never skips a number that an open
-- transaction holds, and it declares a number dead only on that evidence,
-- never on a timer.

CREATE SEQUENCE fitsfleet.run_event_seq;

CREATE TABLE fitsfleet.run_events (
    run_id text NOT NULL,
    seq bigint NOT NULL,
    -- The lease epoch of the coordinator that wrote it (0: written without a lease).
    epoch bigint NOT NULL DEFAULT 0,
    type text NOT NULL,
    event jsonb NOT NULL,
    writer xid8 NOT NULL DEFAULT pg_current_xact_id(),
    in_flight xid8[] NOT NULL DEFAULT '{}',
    written_at timestamp with time zone NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

-- What deletion must not forget: the highest sequence number a run's log
-- ever had (Akka's journal contract: deleting events never resets it).
CREATE TABLE fitsfleet.run_journals (
    run_id text PRIMARY KEY,
    highest_deleted bigint NOT NULL DEFAULT 0
);

-- Snapshots of the fold, as the bytes that were hashed: a flipped byte is
-- caught by the checksum, not by a JSON parser that might accept it.
CREATE TABLE fitsfleet.run_snapshots (
    run_id text NOT NULL,
    seq bigint NOT NULL,
    taken_at timestamp with time zone NOT NULL DEFAULT now(),
    state bytea NOT NULL,
    sha256 bytea NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- The active coordinator of a run. `epoch` grows by one at every takeover;
-- an append names the epoch it was written under and is refused when it is
-- not the current one. `holder_pid` and `holder_started` name the holder's
-- lease connection: when that backend is gone (its process was killed), a
-- standby need not wait for `expires_at`.
CREATE TABLE fitsfleet.run_leases (
    run_id text PRIMARY KEY,
    holder text NOT NULL,
    epoch bigint NOT NULL,
    holder_pid integer NOT NULL,
    holder_started timestamp with time zone NOT NULL,
    acquired_at timestamp with time zone NOT NULL DEFAULT now(),
    expires_at timestamp with time zone NOT NULL
);
