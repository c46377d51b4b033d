/**
 * `rebuild run` (the real CLI, with a migrate step) killed at every step
 * boundary and inside every step from init to the launch, each time then
 * `--resume`d: nothing repeated, nothing lost. The rest of the pipeline is
 * pipeline-resume-late.test.ts.
 */
import { it } from "node:test";

import { POINTS, resumeChain } from "./resume-chain.js";

it("killed at every boundary and inside every step up to the launch, then resumed: nothing repeated, nothing lost", (t) =>
  resumeChain(t, POINTS.slice(0, POINTS.indexOf("before:launch")), {
    migrate: true,
  }));
