/** The run's fleet spec from its settings: the same every time, so a resume relaunches local workers alike. */
import type { FleetSpec } from "../../infra/provider.js";
import type { RunSettings } from "./settings.js";

export function fleetSpecFor(
  name: string,
  runId: string,
  s: RunSettings,
): FleetSpec {
  return {
    name,
    run: runId,
    instances: s.instances,
    ingestWorkers:
      s.provider === "local"
        ? (s.workersPerInstance ?? 1)
        : s.workersPerInstance,
    previewWorkers: s.previewWorkersPerInstance,
    queue: s.queue,
    fastRebuild: s.fastRebuild,
    makePreviews: s.makePreviews,
    storage: s.storage,
    previews: s.previews,
    logLevel: "warn",
    maxHourlyCost: s.maxHourlyCost,
    deadline: new Date(Date.now() + s.maxHours * 3_600_000),
  };
}
