/**
 * GNIRS descriptors (docs/MAPPING-NOTES.md §6.4): the disperser is grating plus
 * cross-dispersing prism, the focal-plane mask is slit plus decker, the read
 * mode comes from the number of reads and the well depth from the detector bias.
 */
import { Section, stripComponentId } from "./common.js";
import {
  type Descriptor,
  DescriptorError,
  type GeminiFile,
} from "./gemini-file.js";
import { phuScalar, readModeByReads } from "./model.js";
import { centralWavelengthFrom, genericFilterName } from "./optics.js";

const strip = (value: string, pretty: boolean): string =>
  pretty ? (stripComponentId(value) ?? value) : value;

export function gnirsDisperser(f: GeminiFile, pretty: boolean): string | null {
  if (phuScalar(f, "ACQMIR") === "In") {
    return "MIRROR";
  }
  const rawGrating = phuScalar(f, "GRATING");
  const rawPrism = phuScalar(f, "PRISM");
  if (rawGrating === null || rawPrism === null) {
    return null;
  }
  // "32/mmSB_G5533" → "32/mm_G5533": drop the capitals between lines/mm and the ID.
  const g = /^([\d/m]+)[A-Z]*(_G\d+)$/.exec(String(rawGrating));
  const grating = strip(
    g === null ? String(rawGrating) : `${g[1]}${g[2]}`,
    pretty,
  );
  // "SB+SXD_G5536" → "SXD_G5536"
  const p = /^(?:[A-Z0-9]+\+)?([A-Z]+_G\d+)$/.exec(String(rawPrism));
  if (p?.[1] === undefined) {
    return null;
  }
  const prism = strip(p[1], pretty);
  return prism.startsWith("MIR") ? grating : `${grating}&${prism}`;
}

export function gnirsFocalPlaneMask(
  f: GeminiFile,
  pretty: boolean,
): string | null {
  const rawSlit = f.phu.get("SLIT");
  const rawDecker = f.phu.get("DECKER");
  if (typeof rawSlit !== "string" || typeof rawDecker !== "string") {
    return null;
  }
  const slit = strip(rawSlit.replaceAll(" ", ""), pretty).replaceAll(
    "Acquisition",
    "Acq",
  );
  const decker = strip(rawDecker, pretty).replaceAll("Acquisition", "Acq");
  if (pretty) {
    const both = (part: string) => slit.includes(part) && decker.includes(part);
    if (decker.includes("Long")) {
      return slit;
    }
    if (decker.includes("XD")) {
      return `${slit}XD`;
    }
    for (const ifu of ["HR-IFU", "LR-IFU", "IFU", "Acq"]) {
      if (both(ifu)) {
        return ifu;
      }
    }
  }
  return `${slit}&${decker}`;
}

const gnirsReadMode = readModeByReads({
  "32,16": "Very Faint Objects",
  "16,16": "Faint Objects",
  "1,16": "Bright Objects",
  "1,1": "Very Bright Objects",
});

function gnirsWellDepth(f: GeminiFile): string | null {
  const bias = f.phu.get("DETBIAS");
  if (bias === undefined) {
    return null;
  }
  if (typeof bias !== "number") {
    throw new DescriptorError("DETBIAS is not a number");
  }
  const b = Math.abs(bias);
  return Math.abs(0.3 - b) < 0.1
    ? "Shallow"
    : Math.abs(0.6 - b) < 0.1
      ? "Deep"
      : "Unknown";
}

/** int(PRSM_ENG): a float is truncated; anything else is null. */
function prismMotorSteps(f: GeminiFile): number | null {
  const value = f.phu.get("PRSM_ENG");
  if (typeof value === "number") {
    return Math.trunc(value);
  }
  return typeof value === "string" && /^\s*[+-]?\d+\s*$/.test(value)
    ? Number(value)
    : null;
}

export const GNIRS_DESCRIPTORS: Record<string, Descriptor> = {
  disperser: (f) => gnirsDisperser(f, true),
  focal_plane_mask: (f) => gnirsFocalPlaneMask(f, true),
  filter_name: (f) => genericFilterName(f, true),
  central_wavelength: centralWavelengthFrom("GRATWAVE"),
  read_mode: gnirsReadMode,
  well_depth_setting: gnirsWellDepth,
  data_section: (f) =>
    f.sci.map((h) =>
      new Section(
        0,
        h.number("NAXIS1") ?? 0,
        0,
        h.number("NAXIS2") ?? 0,
      ).toString(),
    ),
  array_name: (f) => {
    const id = phuScalar(f, "ARRAYID");
    const con = phuScalar(f, "CONID");
    const name =
      id === null
        ? null
        : con === null
          ? String(id)
          : `${String(id)}+${String(con)}`;
    return f.sci.map(() => name);
  },
  amp_read_area: (f) => f.sci.map(() => null),
  prism_motor_steps: prismMotorSteps,
};
