/**
 * For the fleet benchmarks: launch a fleet and let the guard watch it until
 * the queue has drained, as `launch-fleet --watch` does; any other end of
 * the fleet fails the round.
 */
import { guardFleet, launchFleet } from "../infra/fleet.js";
import type { FleetProvider, FleetSpec } from "../infra/provider.js";

export async function launchUntilDrained(
  provider: FleetProvider,
  spec: FleetSpec,
  databaseUrl: string,
  round: string,
): Promise<void> {
  await launchFleet(provider, spec, { databaseUrl });
  const outcome = await guardFleet(provider, spec.name, {
    databaseUrl,
    intervalMs: 200,
    stallMs: 120_000,
  });
  if (outcome?.reason !== "drained") {
    throw new Error(
      `${round}: the fleet ended because ${outcome?.message ?? "the guard stopped"}`,
    );
  }
}
