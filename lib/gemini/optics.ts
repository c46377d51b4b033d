/**
 * Generic optics and detector descriptors (docs/MAPPING-NOTES.md §5.7, §5.8).
 * Instruments replace most of them (niri.ts and the others).
 *
 * Pretty or plain: each table entry is the variant the reference's header row
 * uses (filter, disperser, camera and focal-plane mask with component IDs
 * stripped); the instrument rows will call the plain variants.
 */
import { float32Round, Section, stripComponentId } from "./common.js";
import type { Descriptor, GeminiFile } from "./gemini-file.js";
import { phuFloat, phuScalar } from "./model.js";

/** PHU keyword, component ID stripped when asked and the value is a non-empty string. */
export function maybeStripped(
  f: GeminiFile,
  keyword: string,
  pretty: boolean,
): string | number | null {
  const value = phuScalar(f, keyword);
  return pretty && typeof value === "string" && value !== ""
    ? stripComponentId(value)
    : value;
}

/** One value per science extension. */
function perExtension(
  f: GeminiFile,
  keyword: string,
): (string | number | null)[] {
  return f.sci.map((h) => {
    const value = h.get(keyword);
    return typeof value === "string" || typeof value === "number"
      ? value
      : null;
  });
}

/** §5.8 (GMOS, GNIRS): FILTER1 and FILTER2, "open"/"Clear"/ND filters dropped when pretty. */
export function genericFilterName(
  f: GeminiFile,
  pretty: boolean,
): string | null {
  const raw = [phuScalar(f, "FILTER1"), phuScalar(f, "FILTER2")];
  if (raw.some((v) => v === null)) {
    return null;
  }
  const [f1, f2] = raw.map((v) =>
    pretty ? stripComponentId(v) : String(v),
  ) as [string, string];
  if (!pretty) {
    return `${f1}&${f2}`;
  }
  const kept = [f1, f2].filter(
    (x) =>
      !x.toLowerCase().includes("open") &&
      !x.includes("Clear") &&
      !x.toLowerCase().startsWith("nd"),
  );
  const names = kept.length > 0 ? kept : ["open"];
  const both = `${f1} ${f2}`;
  if (both.includes("Block")) {
    names.push("blank");
  }
  if (both.includes("Dark")) {
    names.push("blank");
  }
  if (both.includes("DK")) {
    names.push("dark");
  }
  return names.slice(0, 2).join("&");
}

/** A central wavelength in µm from `keyword` (absent or negative gives null), rounded as the reference does. */
export function centralWavelengthFrom(keyword: string): Descriptor {
  return (f) => {
    const micrometres = phuFloat(f, keyword, -1) ?? -1;
    return micrometres < 0 ? null : float32Round(micrometres);
  };
}

export const OPTICS_DESCRIPTORS: Record<string, Descriptor> = {
  disperser: (f) => maybeStripped(f, "DISPERSR", true),
  camera: (f) => maybeStripped(f, "CAMERA", true),
  focal_plane_mask: (f) => maybeStripped(f, "FPMASK", true),
  pupil_mask: (f) => maybeStripped(f, "PUPILMSK", true),
  central_wavelength: centralWavelengthFrom("CWAVE"),
  detector_x_bin: (f) => phuScalar(f, "XBIN") ?? 1,
  detector_y_bin: (f) => phuScalar(f, "YBIN") ?? 1,
  detector_roi_setting: () => "Fixed",
  gain_setting: (f) => phuScalar(f, "GAINSET"),
  read_speed_setting: (f) => phuScalar(f, "RDSPDSET"),
  well_depth_setting: (f) => phuScalar(f, "WELDEPTH"),
  read_mode: (f) => phuScalar(f, "READMODE"),
  array_name: (f) => perExtension(f, "ARRAYNAM"),
  amp_read_area: (f) => perExtension(f, "AMPROA"),
  data_section: (f) =>
    f.sci.map((h) => Section.parse(h.get("DATASEC"))?.toString() ?? null),
};

export const FILTER_DESCRIPTORS: Record<string, Descriptor> = {
  filter_name: (f) => genericFilterName(f, true),
};
