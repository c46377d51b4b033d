/**
 * The operator's record of fleets (migration 0004): what each launch made,
 * what its instances cost per hour, and whether anyone still answers for
 * it. Every statement on `fitsfleet.fleets` and `fitsfleet.fleet_instances`
 * is here.
 */
import type { AnyClient } from "../lib/db/connect.js";
import { FLEET_LAUNCH_LOCK_CLASS } from "../lib/db/locks.js";

export type FleetState =
  "launching" | "running" | "ending" | "ended" | "failed";

export interface FleetRecord {
  name: string;
  run: string;
  provider: "local" | "ec2";
  region: string | null;
  state: FleetState;
  spec: Record<string, unknown>;
  ec2FleetIds: string[];
  launchTemplateId: string | null;
  maxHourlyCost: number | null;
  budget: number | null;
  deadline: Date;
  launchedAt: Date;
  endedAt: Date | null;
  endReason: string | null;
  /** USD from launch to now (or each instance's end), from the recorded prices. */
  spend: number;
  /** USD per hour of the instances still running. */
  hourlyRate: number;
  instances: number;
}

export interface FleetMemberRecord {
  instanceId: string;
  instanceType?: string;
  zone?: string;
  lifecycle?: string;
  hourlyPrice: number;
  launchedAt: Date;
  endedAt?: Date | null;
}

interface FleetRow {
  name: string;
  run: string;
  provider: "local" | "ec2";
  region: string | null;
  state: FleetState;
  spec: Record<string, unknown>;
  ec2_fleet_ids: string[];
  launch_template_id: string | null;
  max_hourly_cost: string | null;
  budget: string | null;
  deadline: Date;
  launched_at: Date;
  ended_at: Date | null;
  end_reason: string | null;
  spend: string;
  hourly_rate: string;
  instances: string;
}

const SELECT_FLEETS = `
  SELECT f.*,
         coalesce(sum(i.hourly_price * extract(epoch FROM coalesce(i.ended_at, now()) - i.launched_at) / 3600), 0) AS spend,
         coalesce(sum(i.hourly_price) FILTER (WHERE i.ended_at IS NULL), 0) AS hourly_rate,
         count(i.instance_id) AS instances
    FROM fitsfleet.fleets f
    LEFT JOIN fitsfleet.fleet_instances i ON i.fleet = f.name`;

function fromRow(r: FleetRow): FleetRecord {
  const num = (v: string | null) => (v === null ? null : Number(v));
  return {
    name: r.name,
    run: r.run,
    provider: r.provider,
    region: r.region,
    state: r.state,
    spec: r.spec,
    ec2FleetIds: r.ec2_fleet_ids,
    launchTemplateId: r.launch_template_id,
    maxHourlyCost: num(r.max_hourly_cost),
    budget: num(r.budget),
    deadline: r.deadline,
    launchedAt: r.launched_at,
    endedAt: r.ended_at,
    endReason: r.end_reason,
    spend: Number(r.spend),
    hourlyRate: Number(r.hourly_rate),
    instances: Number(r.instances),
  };
}

export interface NewFleet {
  name: string;
  run: string;
  provider: "local" | "ec2";
  region?: string;
  spec: Record<string, unknown>;
  maxHourlyCost?: number;
  budget?: number;
  deadline: Date;
}

/** Records a fleet about to launch; a name already used is refused by the primary key. */
export async function recordFleet(
  client: AnyClient,
  fleet: NewFleet,
): Promise<void> {
  await client.query(
    `INSERT INTO fitsfleet.fleets
       (name, run, provider, region, spec, max_hourly_cost, budget, deadline)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      fleet.name,
      fleet.run,
      fleet.provider,
      fleet.region ?? null,
      JSON.stringify(fleet.spec),
      fleet.maxHourlyCost ?? null,
      fleet.budget ?? null,
      fleet.deadline,
    ],
  );
}

/**
 * Taken by the launcher on a connection it keeps for the whole launch: if
 * the launcher dies, PostgreSQL drops the lock with its session, and a
 * sweep can tell the fleet has nobody behind it.
 */
export async function holdLaunchLock(
  client: AnyClient,
  name: string,
): Promise<void> {
  await client.query(`SELECT pg_advisory_lock($1, hashtext($2))`, [
    FLEET_LAUNCH_LOCK_CLASS,
    name,
  ]);
}

export async function releaseLaunchLock(
  client: AnyClient,
  name: string,
): Promise<void> {
  await client.query(`SELECT pg_advisory_unlock($1, hashtext($2))`, [
    FLEET_LAUNCH_LOCK_CLASS,
    name,
  ]);
}

export async function setFleetResources(
  client: AnyClient,
  name: string,
  resources: { ec2FleetIds?: string[]; launchTemplateId?: string },
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.fleets
        SET ec2_fleet_ids = coalesce($2, ec2_fleet_ids),
            launch_template_id = coalesce($3, launch_template_id)
      WHERE name = $1`,
    [name, resources.ec2FleetIds ?? null, resources.launchTemplateId ?? null],
  );
}

/** Moves a fleet on; an ended or failed fleet stays as it is (the first end's reason is kept). */
export async function setFleetState(
  client: AnyClient,
  name: string,
  state: FleetState,
  reason?: string,
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.fleets
        SET state = $2,
            end_reason = coalesce(end_reason, $3),
            ended_at = CASE WHEN $2 IN ('ended', 'failed') THEN coalesce(ended_at, now()) ELSE ended_at END
      WHERE name = $1 AND state NOT IN ('ended', 'failed')`,
    [name, state, reason ?? null],
  );
}

/** Adds or updates instances; an end, once recorded, is kept. */
export async function recordMembers(
  client: AnyClient,
  fleet: string,
  members: FleetMemberRecord[],
): Promise<void> {
  if (members.length === 0) {
    return;
  }
  await client.query(
    `INSERT INTO fitsfleet.fleet_instances
       (instance_id, fleet, instance_type, zone, lifecycle, hourly_price, launched_at, ended_at)
     SELECT m.instance_id, $1, m.instance_type, m.zone, m.lifecycle, m.hourly_price, m.launched_at, m.ended_at
       FROM jsonb_to_recordset($2::jsonb) AS m(
              instance_id text, instance_type text, zone text, lifecycle text,
              hourly_price numeric, launched_at timestamptz, ended_at timestamptz)
     ON CONFLICT (instance_id) DO UPDATE
        SET ended_at = coalesce(fitsfleet.fleet_instances.ended_at, EXCLUDED.ended_at)`,
    [
      fleet,
      JSON.stringify(
        members.map((m) => ({
          instance_id: m.instanceId,
          instance_type: m.instanceType ?? null,
          zone: m.zone ?? null,
          lifecycle: m.lifecycle ?? null,
          hourly_price: m.hourlyPrice,
          launched_at: m.launchedAt.toISOString(),
          ended_at: m.endedAt?.toISOString() ?? null,
        })),
      ),
    ],
  );
}

/** Marks every instance of the fleet not yet ended as ended now (after a terminate). */
export async function endMembers(
  client: AnyClient,
  fleet: string,
  ids?: string[],
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.fleet_instances SET ended_at = now()
      WHERE fleet = $1 AND ended_at IS NULL
        AND ($2::text[] IS NULL OR instance_id = ANY ($2))`,
    [fleet, ids ?? null],
  );
}

export async function recordSpend(
  client: AnyClient,
  name: string,
): Promise<void> {
  await client.query(
    `UPDATE fitsfleet.fleets f
        SET spend = s.spend, spend_at = now()
       FROM (SELECT coalesce(sum(hourly_price * extract(epoch FROM coalesce(ended_at, now()) - launched_at) / 3600), 0) AS spend
               FROM fitsfleet.fleet_instances WHERE fleet = $1) s
      WHERE f.name = $1`,
    [name],
  );
}

export async function getFleet(
  client: AnyClient,
  name: string,
): Promise<FleetRecord | undefined> {
  const { rows } = await client.query<FleetRow>(
    `${SELECT_FLEETS} WHERE f.name = $1 GROUP BY f.name`,
    [name],
  );
  return rows[0] === undefined ? undefined : fromRow(rows[0]);
}

export async function listFleets(
  client: AnyClient,
  options: { liveOnly?: boolean } = {},
): Promise<FleetRecord[]> {
  const { rows } = await client.query<FleetRow>(
    `${SELECT_FLEETS}
      WHERE NOT $1 OR f.state IN ('launching', 'running', 'ending')
      GROUP BY f.name
      ORDER BY f.launched_at DESC`,
    [options.liveOnly === true],
  );
  return rows.map(fromRow);
}

/**
 * Which of these fleet names someone still answers for: recorded, not
 * ended, before its deadline, and, while launching, with its launcher's
 * lock still held. Everything else a sweep may end.
 */
export async function liveFleetNames(
  client: AnyClient,
  names: string[],
): Promise<Set<string>> {
  if (names.length === 0) {
    return new Set();
  }
  const { rows } = await client.query<{ name: string }>(
    `SELECT f.name
       FROM fitsfleet.fleets f
      WHERE f.name = ANY ($1)
        AND f.state IN ('launching', 'running', 'ending')
        AND f.deadline > now()
        AND (f.state <> 'launching' OR EXISTS (
              SELECT 1 FROM pg_locks l
               WHERE l.locktype = 'advisory' AND l.granted
                 AND l.classid = $2::int::oid
                 AND l.objid = hashtext(f.name)::oid
                 AND l.objsubid = 2))`,
    [names, FLEET_LAUNCH_LOCK_CLASS],
  );
  return new Set(rows.map((r) => r.name));
}
