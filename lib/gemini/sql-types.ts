/**
 * The column types of the archive rows this library builds, and the checks
 * that keep a value insertable: a derived value that the column cannot hold
 * becomes NULL with a warning, because one odd header must never fail the
 * whole file's transaction at insert time.
 *
 * The enum label lists mirror migrations/0001_archive_schema.sql; a test
 * compares them with the database's own pg_enum.
 */

export type RowValue = string | number | boolean | null;

export type SqlType =
  | { kind: "text" }
  | { kind: "boolean" }
  | { kind: "integer" }
  | { kind: "bigint" }
  | { kind: "numeric"; precision: number; scale: number }
  | { kind: "enum"; name: string; labels: readonly string[] }
  | { kind: "timestamp" }
  | { kind: "time" }
  | { kind: "date" };

export const text: SqlType = { kind: "text" };
export const boolean: SqlType = { kind: "boolean" };
export const integer: SqlType = { kind: "integer" };
export const bigint: SqlType = { kind: "bigint" };
export const timestamp: SqlType = { kind: "timestamp" };
export const time: SqlType = { kind: "time" };
export const date: SqlType = { kind: "date" };
export const numeric = (precision: number, scale: number): SqlType => ({
  kind: "numeric",
  precision,
  scale,
});

export const ENUMS = {
  procmode: [
    "Failed",
    "Raw",
    "Quick-Look",
    "Science-Quality",
    "Quality-Assessment",
  ],
  telescope: ["Gemini-North", "Gemini-South"],
  obstype: [
    "DARK",
    "ARC",
    "FLAT",
    "BIAS",
    "OBJECT",
    "PINHOLE",
    "RONCHI",
    "CAL",
    "FRINGE",
    "MASK",
    "STANDARD",
    "SLITILLUM",
    "BPM",
  ],
  obsclass: [
    "dayCal",
    "partnerCal",
    "acqCal",
    "acq",
    "science",
    "progCal",
    "nightCal",
  ],
  detector_gain_setting: ["None", "high", "low", "standard"],
  detector_readspeed_setting: [
    "None",
    "fast",
    "medium",
    "slow",
    "standard",
    "red:fast,blue:fast",
    "red:fast,blue:medium",
    "red:fast,blue:slow",
    "red:medium,blue:fast",
    "red:medium,blue:medium",
    "red:medium,blue:slow",
    "red:slow,blue:fast",
    "red:slow,blue:medium",
    "red:slow,blue:slow",
  ],
  detector_welldepth_setting: ["None", "Shallow", "Deep", "Invalid"],
  mode: ["imaging", "spectroscopy", "LS", "MOS", "IFS", "IFP"],
  qa_state: ["Fail", "CHECK", "Undefined", "Usable", "Pass"],
  reduction_state: [
    "RAW",
    "PREPARED",
    "PROCESSED_FLAT",
    "PROCESSED_BIAS",
    "PROCESSED_FRINGE",
    "PROCESSED_ARC",
    "PROCESSED_DARK",
    "PROCESSED_TELLURIC",
    "PROCESSED_SCIENCE",
    "PROCESSED_BPM",
    "PROCESSED_STANDARD",
    "PROCESSED_SLITILLUM",
    "PROCESSED_PINHOLE",
    "PROCESSED_UNKNOWN",
  ],
  gmos_read_speed_setting: ["slow", "fast"],
  gmos_gain_setting: ["low", "high"],
  gnirs_read_mode: [
    "Very Faint Objects",
    "Faint Objects",
    "Bright Objects",
    "Very Bright Objects",
    "Invalid",
  ],
  gnirs_well_depth_setting: ["Shallow", "Deep", "Invalid"],
  niri_disperser: [
    "Hgrismf32_G5228",
    "Hgrism_G5203",
    "Jgrismf32_G5226",
    "Jgrism_G5202",
    "Kgrismf32_G5227",
    "Kgrism_G5204",
    "Lgrism_G5205",
    "Mgrism_G5206",
    "MIRROR",
  ],
  niri_read_mode: [
    "High Background",
    "Medium Background",
    "Low Background",
    "Invalid",
  ],
  niri_well_depth_setting: ["Shallow", "Deep", "Invalid"],
  niri_data_section: [
    "Section(x1=0, x2=1024, y1=0, y2=1024)",
    "Section(x1=0, x2=256, y1=0, y2=256)",
    "Section(x1=0, x2=512, y1=0, y2=512)",
    "Section(x1=0, x2=768, y1=0, y2=768)",
    "Section(x1=256, x2=769, y1=0, y2=1024)",
    "Section(x1=256, x2=769, y1=256, y2=768)",
    "Section(x1=64, x2=192, y1=64, y2=192)",
    "None",
  ],
  niri_camera: [
    "datum",
    "f13.9",
    "f14",
    "f32",
    "f6",
    "INVALID",
    "No Value",
    "UNKNOWN",
  ],
} as const satisfies Record<string, readonly string[]>;

export type EnumName = keyof typeof ENUMS;

export const enumType = (name: EnumName): SqlType => ({
  kind: "enum",
  name,
  labels: ENUMS[name],
});

export function isEnumLabel(name: EnumName, value: unknown): value is string {
  return (
    typeof value === "string" &&
    (ENUMS[name] as readonly string[]).includes(value)
  );
}

const INT32 = 2 ** 31;

/**
 * The value as the column will store it, or a reason why it cannot. Numbers
 * are rounded as PostgreSQL rounds on assignment.
 */
export function fitToColumn(
  value: unknown,
  type: SqlType,
): { value: RowValue } | { problem: string } {
  if (value === null || value === undefined) {
    return { value: null };
  }
  switch (type.kind) {
    case "text": {
      const s = typeof value === "string" ? value : String(value);
      // PostgreSQL text cannot hold NUL; a header byte like that is damage, not data.
      return s.includes("\u0000")
        ? { problem: "contains a NUL character" }
        : { value: s };
    }
    case "boolean":
      return typeof value === "boolean"
        ? { value }
        : { problem: `${JSON.stringify(value)} is not a boolean` };
    case "integer":
    case "bigint": {
      const n = typeof value === "number" ? Math.round(value) : NaN;
      const limit = type.kind === "integer" ? INT32 : 2 ** 63;
      if (!Number.isFinite(n) || n < -limit || n >= limit) {
        return { problem: `${String(value)} does not fit an ${type.kind}` };
      }
      return { value: n };
    }
    case "numeric": {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        return { problem: `${String(value)} is not a finite number` };
      }
      const scale = 10 ** type.scale;
      const rounded = Math.round(value * scale) / scale;
      if (Math.abs(rounded) >= 10 ** (type.precision - type.scale)) {
        return {
          problem: `${value} is out of range for numeric(${type.precision},${type.scale})`,
        };
      }
      return { value };
    }
    case "enum":
      return typeof value === "string" && type.labels.includes(value)
        ? { value }
        : {
            problem: `${JSON.stringify(value)} is not a value of enum ${type.name}`,
          };
    case "timestamp":
      return typeof value === "string" &&
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?$/.test(value)
        ? { value }
        : { problem: `${JSON.stringify(value)} is not a timestamp` };
    case "time":
      return typeof value === "string" &&
        /^\d\d:\d\d:\d\d(\.\d{1,6})?$/.test(value)
        ? { value }
        : { problem: `${JSON.stringify(value)} is not a time of day` };
    case "date":
      return typeof value === "string" && /^\d{4}-\d\d-\d\d$/.test(value)
        ? { value }
        : { problem: `${JSON.stringify(value)} is not a date` };
  }
}
