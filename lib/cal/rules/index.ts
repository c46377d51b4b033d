/**
 * Which rules apply to a frame's `header.instrument`, as the reference's
 * `inst_class` map does (calibration/__init__.py). An instrument the
 * reference has no class for gets the base class: nothing applies.
 */
import type { InstrumentRules } from "./common.js";
import { F2 } from "./f2.js";
import { GMOS } from "./gmos.js";
import { GNIRS } from "./gnirs.js";
import { NIRI } from "./niri.js";

export const INSTRUMENT_RULES: readonly InstrumentRules[] = [
  GMOS,
  NIRI,
  F2,
  GNIRS,
];

/** The reference's classes that fitsfleet does not implement yet. */
export const NOT_IMPLEMENTED: readonly string[] = [
  "GHOST",
  "GPI",
  "GSAOI",
  "IGRINS-2",
  "michelle",
  "NICI",
  "NIFS",
];

export type RulesLookup =
  | { kind: "rules"; rules: InstrumentRules }
  | { kind: "none" }
  | { kind: "not implemented" };

export function rulesForInstrument(instrument: string): RulesLookup {
  const rules = INSTRUMENT_RULES.find((r) =>
    r.instruments.includes(instrument),
  );
  if (rules !== undefined) {
    return { kind: "rules", rules };
  }
  return NOT_IMPLEMENTED.includes(instrument)
    ? { kind: "not implemented" }
    : { kind: "none" };
}
