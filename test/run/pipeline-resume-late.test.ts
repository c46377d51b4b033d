/**
 * `rebuild run` (the real CLI) killed at every step boundary and inside
 * every step from the launch to the end, each time then `--resume`d: one
 * fleet, the queue drained by it (or by workers started again when a
 * killed coordinator's were gone), nothing repeated, nothing lost.
 */
import { it } from "node:test";

import { POINTS, resumeChain } from "./resume-chain.js";

it("killed at every boundary and inside every step from the launch on, then resumed: nothing repeated, nothing lost", (t) =>
  resumeChain(t, POINTS.slice(POINTS.indexOf("before:launch")), {
    migrate: false,
  }));
