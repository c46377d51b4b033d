/**
 * The science frame as the reference's `Calibration.__init__` sees it
 * (calibration.py:547-602): a dict of descriptors, twenty from the header and
 * the instrument's own from its first instrument row (later keys replace
 * earlier ones, so NIRI's and GNIRS's `camera` is the instrument table's),
 * plus the tags from `header.types`. Predicates here follow Python: `==`
 * between a Decimal and a float is exact, None equals only None, and a
 * comparison with None raises.
 */
import { Decimal, type PyTags, ReferenceRaised, Timestamp } from "./python.js";

export type Value = string | number | boolean | Decimal | Timestamp | null;

/** The header descriptors, in the reference's order. */
export const HEADER_DESCRIPTORS = [
  "observation_id",
  "observation_type",
  "observation_class",
  "spectroscopy",
  "object",
  "instrument",
  "central_wavelength",
  "program_id",
  "ut_datetime",
  "exposure_time",
  "detector_roi_setting",
  "coadds",
  "reduction",
  "elevation",
  "cass_rotator_pa",
  "gcal_lamp",
  "detector_binning",
  "camera",
  "engineering",
] as const;

export class Frame {
  constructor(
    readonly headerId: number,
    private readonly descriptors: ReadonlyMap<string, Value>,
    readonly types: PyTags,
    readonly utDatetime: Timestamp,
    /** Whole seconds from 2000-01-01 (the reference's UT_DATETIME_SECS_EPOCH). */
    readonly utDatetimeSecs: number,
  ) {}

  /** `descriptors[name]`; a missing key is the reference's KeyError. */
  get(name: string): Value {
    if (!this.descriptors.has(name)) {
      throw new ReferenceRaised(`KeyError: '${name}'`);
    }
    return this.descriptors.get(name) ?? null;
  }

  /** `descriptors.get(name)`: None when absent. */
  optional(name: string): Value {
    return this.descriptors.get(name) ?? null;
  }

  /** A text descriptor (or None). */
  text(name: string): string | null {
    const v = this.get(name);
    if (v !== null && typeof v !== "string") {
      throw new ReferenceRaised(`descriptor ${name} is not a string`);
    }
    return v;
  }

  decimal(name: string): Decimal | null {
    const v = this.get(name);
    if (v !== null && !(v instanceof Decimal)) {
      throw new ReferenceRaised(`descriptor ${name} is not a Decimal`);
    }
    return v;
  }

  /** Python `descriptors[name] == value`. */
  is(name: string, value: string | number | boolean | null): boolean {
    return pyEquals(this.get(name), value);
  }

  /** Python `descriptors[name] in values`. */
  isIn(name: string, values: readonly (string | null)[]): boolean {
    const v = this.get(name);
    return values.some((x) => pyEquals(v, x));
  }

  /** Python truthiness of `descriptors[name]`. */
  truthy(name: string): boolean {
    return pyTruthy(this.get(name));
  }

  /** Python `descriptors[name] < x`; None raises TypeError. */
  lessThan(name: string, x: number): boolean {
    return pyCompare(this.get(name), x, name) < 0;
  }

  greaterThan(name: string, x: number): boolean {
    return pyCompare(this.get(name), x, name) > 0;
  }

  atLeast(name: string, x: number): boolean {
    return pyCompare(this.get(name), x, name) >= 0;
  }

  /** `'TAG' in self.types`. */
  tag(name: string): boolean {
    return this.types.has(name);
  }
}

export function pyEquals(
  v: Value,
  x: string | number | boolean | null,
): boolean {
  if (v === null || x === null) {
    return v === x;
  }
  if (v instanceof Decimal) {
    return typeof x === "number" && v.compare(x) === 0;
  }
  if (v instanceof Timestamp) {
    return false;
  }
  // Python's True == 1 and False == 0.
  if (typeof v === "boolean" && typeof x === "number") {
    return Number(v) === x;
  }
  if (typeof v === "number" && typeof x === "boolean") {
    return v === Number(x);
  }
  return v === x;
}

export function pyTruthy(v: Value): boolean {
  if (v instanceof Decimal) {
    return v.truthy;
  }
  if (v instanceof Timestamp) {
    return true;
  }
  return v !== null && v !== "" && v !== 0 && v !== false;
}

function pyCompare(v: Value, x: number, name: string): number {
  if (v instanceof Decimal) {
    return v.compare(x);
  }
  if (typeof v === "number" || typeof v === "boolean") {
    const n = Number(v);
    return n < x ? -1 : n > x ? 1 : 0;
  }
  throw new ReferenceRaised(
    `TypeError: '<' not supported between ${v === null ? "NoneType" : typeof v} (${name}) and float`,
  );
}
