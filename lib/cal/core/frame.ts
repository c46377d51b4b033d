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
 * What a rule read of a frame, as keys with their values (see `inputKey`):
 * a descriptor by name, `#TAG` for a tag test, `@year<Y` for a test of the
 * year, `@ut`, `@secs`, `@id` for the time and id, and `~name` for a
 * descriptor read only to be bound as a value (`textValue`), of which only
 * the kind counts. In first-read order, which is what makes a plan's reads
 * a path in the rebuild's plan memo.
 */
export type Reads = Map<string, InputKey>;

/** A recorded value as a map key (maps compare these by SameValueZero). */
export type InputKey = string | number | boolean | null | undefined;

/**
 * A value as a memo key: equal keys for values every rule treats alike,
 * different keys for any two that a rule could tell apart (a Decimal by its
 * text, which its every use reads; -0 apart from 0). A missing descriptor
 * is `undefined`. The Decimal and Timestamp keys start with NUL, which no
 * PostgreSQL text holds, so they never meet a string's.
 */
export function inputKey(v: Value | undefined): InputKey {
  if (typeof v === "object" && v !== null) {
    return v instanceof Decimal ? `\u0000d${v.text}` : `\u0000t${v.iso}`;
  }
  return typeof v === "number" && Object.is(v, -0) ? "\u0000-0" : v;
}

/** The kind of a `textValue` descriptor: all its value decides. */
function kindOf(v: Value | undefined): InputKey {
  return v === undefined || v === null
    ? v
    : typeof v === "string"
      ? "string"
      : "other";
}

/** A recorded input's key, parsed once, to read it from other frames. */
export interface Input {
  key: string;
  kind: "descriptor" | "tag" | "yearBefore" | "ut" | "secs" | "id" | "kind";
  name: string;
}

export function parseInput(key: string): Input {
  switch (key[0]) {
    case "#":
      return { key, kind: "tag", name: key.slice(1) };
    case "~":
      return { key, kind: "kind", name: key.slice(1) };
    case "@":
      return key.startsWith("@year<")
        ? { key, kind: "yearBefore", name: key.slice(6) }
        : { key, kind: key.slice(1) as "ut" | "secs" | "id", name: "" };
    default:
      return { key, kind: "descriptor", name: key };
  }
}

/** The frame's descriptors by name; undefined for a name it does not have. */
export interface Descriptors {
  get(name: string): Value | undefined;
}

/**
 * Descriptors in an array laid out once per instrument (`slots`: name →
 * index), so a frame costs an array, not a map of its own.
 */
export class SlottedDescriptors implements Descriptors {
  constructor(
    private readonly slots: ReadonlyMap<string, number>,
    private readonly values: readonly Value[],
  ) {}

  get(name: string): Value | undefined {
    const slot = this.slots.get(name);
    return slot === undefined ? undefined : this.values[slot];
  }
}

export class Frame {
  /** Set while the rebuild's planner records what the rules read. */
  private reads: Reads | undefined;

  constructor(
    private readonly id: number,
    private readonly descriptors: Descriptors,
    private readonly tags: PyTags,
    private readonly ut: Timestamp,
    private readonly secs: number,
  ) {}

  /** Starts recording every input the rules read (`stopRecording` returns them). */
  record(): void {
    this.reads = new Map();
  }

  stopRecording(): Reads {
    const reads = this.reads ?? new Map<string, InputKey>();
    this.reads = undefined;
    return reads;
  }

  /**
   * This frame's value of a recorded input, without recording: what the
   * planner's memo compares against a recorded path.
   */
  input(input: Input): InputKey {
    switch (input.kind) {
      case "descriptor":
        return inputKey(this.descriptors.get(input.name));
      case "tag":
        return this.tags.has(input.name);
      case "kind":
        return kindOf(this.descriptors.get(input.name));
      case "yearBefore":
        return this.ut.year < Number(input.name);
      case "ut":
        return inputKey(this.ut);
      case "secs":
        return this.secs;
      case "id":
        return this.id;
    }
  }

  private note(key: string, value: InputKey): void {
    if (this.reads !== undefined && !this.reads.has(key)) {
      this.reads.set(key, value);
    }
  }

  get headerId(): number {
    this.note("@id", this.id);
    return this.id;
  }

  get utDatetime(): Timestamp {
    this.note("@ut", inputKey(this.ut));
    return this.ut;
  }

  /** Whole seconds from 2000-01-01 (the reference's UT_DATETIME_SECS_EPOCH). */
  get utDatetimeSecs(): number {
    this.note("@secs", this.secs);
    return this.secs;
  }

  /** Whether ut_datetime's year is before `year` (the time itself is not read). */
  yearBefore(year: number): boolean {
    const before = this.ut.year < year;
    this.note(`@year<${year}`, before);
    return before;
  }

  get types(): PyTags {
    return { has: (tag) => this.tag(tag) };
  }

  /** `descriptors[name]`; a missing key is the reference's KeyError. */
  get(name: string): Value {
    const v = this.descriptors.get(name);
    if (this.reads !== undefined && !this.reads.has(name)) {
      this.reads.set(name, inputKey(v));
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
      this.reads.set(name, inputKey(v));
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

  /**
   * `text(name)` for a value the rule only binds as a parameter and never
   * looks into: only its kind (absent, None, a string, something else)
   * decides what the rule does, so only the kind is recorded. The compiled
   * search marks where the value went (`frameDescriptors`).
   */
  textValue(name: string): string | null {
    const v = this.descriptors.get(name);
    this.note(`~${name}`, kindOf(v));
    if (v === undefined) {
      throw new ReferenceRaised(`KeyError: '${name}'`);
    }
    if (v !== null && typeof v !== "string") {
      throw new ReferenceRaised(`descriptor ${name} is not a string`);
    }
    return v;
  }

  /** A descriptor's value without recording (the planner's memo puts it in). */
  peek(name: string): Value | undefined {
    return this.descriptors.get(name);
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
    this.note(`#${name}`, has);
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
