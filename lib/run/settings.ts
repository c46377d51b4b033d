/**
 * A run's settings: what `rebuild run` was asked to do, recorded in
 * `fitsfleet.runs.options` when it starts so that `--resume` does the same
 * run. Never a secret: the database and Redis URLs come from the
 * configuration of whichever process acts on the run.
 */
import type { Ec2Options } from "../../infra/ec2.js";

export interface RunSettings {
  provider: "local" | "ec2";
  /** A directory (absolute) or s3://bucket/prefix. */
  storage: string;
  queue: string;
  /** migrate-tables' source; without it the migrate step is skipped. */
  from?: string;
  preset: string[];
  table: string[];
  excludeTable: string[];
  mapping?: string;
  manifest?: string;
  truncateTarget: boolean;
  instances: number;
  /** Ingest workers per instance (local: 1; ec2: the type's vCPUs). */
  workersPerInstance?: number;
  previewWorkersPerInstance: number;
  fastRebuild: boolean;
  makePreviews: boolean;
  previews?: string;
  /** Files per queued job; default: enough batches for every worker. */
  batchSize?: number;
  maxHours: number;
  budget?: number;
  maxHourlyCost?: number;
  /** The drain step fails when no file has finished for this long while work remains. */
  stallMinutes: number;
  /** Between the drain step's looks at the ledger. */
  intervalMs: number;
  /** Build the calibration cache (the calcache step). */
  calcache: boolean;
  /** Storage files the verify step stats (present, same size as listed). */
  verifySample: number;
  /** With --provider ec2. */
  ec2?: Ec2Options;
  s3Endpoint?: string;
}

export const DEFAULT_RUN_SETTINGS = {
  preset: [] as string[],
  table: [] as string[],
  excludeTable: [] as string[],
  truncateTarget: false,
  instances: 2,
  previewWorkersPerInstance: 0,
  fastRebuild: true,
  makePreviews: false,
  maxHours: 48,
  stallMinutes: 15,
  intervalMs: 2000,
  calcache: true,
  verifySample: 100,
} satisfies Partial<RunSettings>;
