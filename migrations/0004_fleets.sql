-- 0004 fleets: what a fleet launch made, what it costs, and whether anyone
-- still answers for it.
--
-- A fleet's cloud resources (instances, the EC2 fleet, its launch template)
-- carry its name as a tag; this table is the operator's side of that record.
-- `fleet sweep` ends the tagged resources of every fleet that is not live
-- here, so a launcher killed halfway leaves nothing running for long: while
-- a fleet is 'launching', its launcher holds a session advisory lock on the
-- name, and a fleet whose launcher is gone without the lock taken over is
-- dead.

CREATE TABLE fitsfleet.fleets (
    name text PRIMARY KEY,
    run text NOT NULL,
    provider text NOT NULL CHECK (provider IN ('local', 'ec2')),
    region text,
    state text NOT NULL DEFAULT 'launching'
        CHECK (state IN ('launching', 'running', 'ending', 'ended', 'failed')),
    -- The request as launched (no secret ever goes here).
    spec jsonb NOT NULL,
    ec2_fleet_ids text[] NOT NULL DEFAULT '{}',
    launch_template_id text,
    max_hourly_cost numeric,
    budget numeric,
    deadline timestamp with time zone NOT NULL,
    launched_at timestamp with time zone NOT NULL DEFAULT now(),
    ended_at timestamp with time zone,
    end_reason text,
    -- Spend as the guard last measured it (USD), and when.
    spend numeric NOT NULL DEFAULT 0,
    spend_at timestamp with time zone
);

CREATE INDEX fleets_live ON fitsfleet.fleets (state)
    WHERE state IN ('launching', 'running', 'ending');

-- One row per instance (or, locally, per group of worker processes) a fleet
-- launched, with the hourly price it was launched at: spend is the sum of
-- price x hours from launch to end.
CREATE TABLE fitsfleet.fleet_instances (
    instance_id text PRIMARY KEY,
    fleet text NOT NULL REFERENCES fitsfleet.fleets (name) ON DELETE CASCADE,
    instance_type text,
    zone text,
    lifecycle text,
    hourly_price numeric NOT NULL,
    launched_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone
);

CREATE INDEX fleet_instances_fleet ON fitsfleet.fleet_instances (fleet);
