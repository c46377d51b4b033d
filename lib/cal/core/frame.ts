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

/**
 * What a rule read of a frame, as keys with their values encoded (see
 * `encodeInput`): a descriptor by name, `#TAG` for a tag test, `@year`,
 * `@ut`, `@secs`, `@id` for the time and id. In first-read order, which is
 * what makes a plan's reads a path in the rebuild's plan memo.
 */
export type Reads = Map<string, string>;

/** A descriptor that is not among the frame's keys (`get` raises KeyError). */
const ABSENT = "A";

/**
 * A value as a memo key: equal keys for values every rule treats alike,
 * different keys for any two that a rule could tell apart (a Decimal by its
 * text, which its every use reads; -0 apart from 0).
 */
export function encodeInput(v: Value | undefined): string {
  if (v === undefined) {
    return ABSENT;
  }
  if (v === null) {
    return "N";
  }
  switch (typeof v) {
    case "string":
      return `s${v}`;
    case "number":
      return Object.is(v, -0) ? "n-0" : `n${v}`;
    case "boolean":
      return v ? "b1" : "b0";
  }
  return v instanceof Decimal ? `d${v.text}` : `t${v.iso}`;
}

export class Frame {
  /** Set while the rebuild's planner records what the rules read. */
  private reads: Reads | undefined;

  constructor(
    private readonly id: number,
    private readonly descriptors: ReadonlyMap<string, Value>,
    private readonly tags: PyTags,
    private readonly ut: Timestamp,
    private readonly secs: number,
  ) {}

  /** Starts recording every input the rules read (`stopRecording` returns them). */
  record(): void {
    this.reads = new Map();
  }

  stopRecording(): Reads {
    const reads = this.reads ?? new Map<string, string>();
    this.reads = undefined;
    return reads;
  }

  /**
   * The encoded value of a recorded key, without recording: what the
   * planner's memo compares against a recorded path.
   */
  input(key: string): string {
    switch (key[0]) {
      case "#":
        return this.tags.has(key.slice(1)) ? "b1" : "b0";
      case "@":
        return key === "@year"
          ? `n${this.ut.year}`
          : key === "@ut"
            ? `t${this.ut.iso}`
            : key === "@secs"
              ? `n${this.secs}`
              : `n${this.id}`;
      default:
        return encodeInput(this.descriptors.get(key));
    }
  }

  private note(key: string, encoded: () => string): void {
    if (this.reads !== undefined && !this.reads.has(key)) {
      this.reads.set(key, encoded());
    }
  }

  get headerId(): number {
    this.note("@id", () => `n${this.id}`);
    return this.id;
  }

  get utDatetime(): Timestamp {
    this.note("@ut", () => `t${this.ut.iso}`);
    return this.ut;
  }

  /** Whole seconds from 2000-01-01 (the reference's UT_DATETIME_SECS_EPOCH). */
  get utDatetimeSecs(): number {
    this.note("@secs", () => `n${this.secs}`);
    return this.secs;
  }

  /** The year of ut_datetime, read on its own (the time itself is not read). */
  get utYear(): number {
    this.note("@year", () => `n${this.ut.year}`);
    return this.ut.year;
  }

  get types(): PyTags {
    return { has: (tag) => this.tag(tag) };
  }

  /** `descriptors[name]`; a missing key is the reference's KeyError. */
  get(name: string): Value {
    const v = this.descriptors.get(name);
    if (this.reads !== undefined && !this.reads.has(name)) {
      this.reads.set(name, encodeInput(v));
    }
    if (v === undefined) {
      throw new ReferenceRaised(`KeyError: '${name}'`);
    }
    return v;
  }

  /** `descriptors.get(name)`: None when absent. */
  optional(name: string): Value {
    const v = this.descriptors.get(name);
    if (this.reads !== undefined && !this.reads.has(name)) {
      this.reads.set(name, encodeInput(v));
    }
    return v ?? null;
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
    const has = this.tags.has(name);
    this.note(`#${name}`, () => (has ? "b1" : "b0"));
    return has;
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
