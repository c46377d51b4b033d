/**
 * The loopback endpoint's fixed world: one region, three zones with one
 * subnet each, a handful of instance types and their prices. Prices are
 * fixed so a test can predict which pool an allocation strategy picks;
 * they are close to us-east-1's Linux prices (2025) but are not a feed.
 */

export const ACCOUNT_ID = "123456789012";
export const DEFAULT_REGION = "us-east-1";

export interface Zone {
  name: string;
  id: string;
  subnetId: string;
  cidrBlock: string;
}

export function zonesOf(region: string): Zone[] {
  return ["a", "b", "c"].map((letter, i) => ({
    name: `${region}${letter}`,
    id: `use1-az${i + 1}`,
    subnetId: `subnet-000000000000000${i + 1}${letter}`,
    cidrBlock: `172.31.${i * 16}.0/20`,
  }));
}

export interface InstanceTypeInfo {
  vCpus: number;
  memoryMiB: number;
  /** On-demand USD per hour. */
  onDemand: number;
}

export const INSTANCE_TYPES: Readonly<Record<string, InstanceTypeInfo>> = {
  "t3.micro": { vCpus: 2, memoryMiB: 1024, onDemand: 0.0104 },
  "m5.large": { vCpus: 2, memoryMiB: 8192, onDemand: 0.096 },
  "m6i.large": { vCpus: 2, memoryMiB: 8192, onDemand: 0.096 },
  "c5.large": { vCpus: 2, memoryMiB: 4096, onDemand: 0.085 },
  "c6i.large": { vCpus: 2, memoryMiB: 4096, onDemand: 0.085 },
  "r5.large": { vCpus: 2, memoryMiB: 16384, onDemand: 0.126 },
  "c5.xlarge": { vCpus: 4, memoryMiB: 8192, onDemand: 0.17 },
  "m5.xlarge": { vCpus: 4, memoryMiB: 16384, onDemand: 0.192 },
};

/** Spot USD per hour, by instance type, then zone letter. */
export type SpotPriceTable = Record<string, Record<string, number>>;

/**
 * The default spot prices. In every zone c6i.large is the cheapest of the
 * 2-vCPU types and zone c is its cheapest zone, so `price-capacity-optimized`
 * over the usual overrides starts there.
 */
export const SPOT_PRICES: Readonly<SpotPriceTable> = {
  "t3.micro": { a: 0.0031, b: 0.0032, c: 0.003 },
  "m5.large": { a: 0.0402, b: 0.0388, c: 0.0415 },
  "m6i.large": { a: 0.0391, b: 0.0399, c: 0.0377 },
  "c5.large": { a: 0.0352, b: 0.0347, c: 0.0361 },
  "c6i.large": { a: 0.0321, b: 0.0334, c: 0.0309 },
  "r5.large": { a: 0.0468, b: 0.0455, c: 0.0471 },
  "c5.xlarge": { a: 0.0702, b: 0.0688, c: 0.0711 },
  "m5.xlarge": { a: 0.0811, b: 0.0797, c: 0.0823 },
};

export function spotPrice(
  table: SpotPriceTable,
  instanceType: string,
  zone: string,
): number | undefined {
  return table[instanceType]?.[zone.slice(-1)];
}
