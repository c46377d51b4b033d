/**
 * NIRI descriptors (docs/MAPPING-NOTES.md §6.2): FILTER3 holds the grism or
 * pupil mask, the read mode comes from the number of reads, the well depth
 * from two detector voltages, and central wavelengths from a grism table.
 */
import { float32Round, Section, stripComponentId } from "./common.js";
import {
  type Descriptor,
  DescriptorError,
  type GeminiFile,
} from "./gemini-file.js";
import { phuScalar, readModeByReads } from "./model.js";

/** Pretty filter names for the combinations NIRI uses; keys are the sorted, ID-stripped filters. */
const FILTER_NAMES: Record<string, string> = {
  "PK50&Y": "Y",
  J: "J",
  H: "H",
  Kprime: "K(prime)",
  K: "K",
  Lprime: "L(prime)",
  Mprime: "M(prime)",
  "Jcon(121)&PK50": "Jcon(121)",
  "Hcon(157)&PK50": "H-con(157)",
  "CH4short&PK50": "CH4(short)",
  "CH4long&PK50": "CH4(long)",
  "FeII&PK50": "FeII",
  "HeI(2p2s)&Kprime": "HeI(2p2s)",
  H2Oice204: "H2Oice(2045)",
  "kcon(209)": "Kcon(209)",
  "kcon(227)": "Kcon(227)",
  "H2v=1-0S1&K": "H2 1-0 S1",
  Brgamma: "Br(gamma)",
  CH4ice227: "CH4ice(2275)",
  Jsort: "J order sort",
  "Hsort&PK50": "H order sort",
  Ksort: "K order sort",
  Lsort: "L order sort",
  Msort: "M order sort",
  "Jcon1065&PK50": "Jcon(1065)",
  "Jcon(112)&PK50": "Jcon(112)",
  Kshort: "K(short)",
  "H2v=2-1S1": "H2 2-1 S1",
  "PK50&Pabeta": "Pa(beta)",
  PaGamma: "Pa(gamma)",
  HeI: "HeI",
  Bra: "Br(alpha)",
  H2Oice: "H2O ice",
  hydrocarb: "hydrocarb",
  Bracont: "Br(alpha)Con",
  "COv=2-0bh": "CO 2-0 (bh)",
};

/** Grism central wavelengths (nm) by camera, then slit mask, then the first 6 letters of the grism. */
const GRISM_NM: [
  camera: string,
  masks: string[],
  grisms: Record<string, number>,
][] = [
  [
    "f6",
    ["f6-2pix", "f6-4pix", "f6-6pix"],
    { Jgrism: 1233, Hgrism: 1695, Kgrism: 2263, Lgrism: 3574, Mgrism: 5140 },
  ],
  [
    "f6",
    ["f6-2pixBl", "f6-4pixBl", "f6-6pixBl"],
    { Jgrism: 1184, Hgrism: 1625, Kgrism: 2167, Lgrism: 3435, Mgrism: 4940 },
  ],
  [
    "f32",
    ["f32-6pix", "f32-9pix", "f6-2pix"],
    { Jgrism: 1203, Hgrism: 1641.2, Kgrism: 2184 },
  ],
];

function filter3(f: GeminiFile): string | null {
  const value = f.phu.get("FILTER3");
  return value === undefined ? null : String(value);
}

export function niriFilterName(f: GeminiFile, pretty: boolean): string {
  const names = ["FILTER1", "FILTER2", "FILTER3"]
    .map((k) => phuScalar(f, k))
    .filter((v): v is string | number => v !== null)
    .map((v) => (pretty ? (stripComponentId(v) ?? String(v)) : String(v)))
    .filter(
      (v) =>
        !["open", "grism", "pupil"].some((skip) =>
          v.toLowerCase().includes(skip),
        ),
    )
    .sort();
  if (names.includes("blank")) {
    return "blank";
  }
  if (names.length === 0) {
    return "open";
  }
  const joined = names.join("&");
  return pretty ? (FILTER_NAMES[joined] ?? joined) : joined;
}

export function niriDisperser(f: GeminiFile, pretty: boolean): string | null {
  const value = filter3(f);
  if (value === null) {
    return null;
  }
  return value.includes("grism")
    ? pretty
      ? stripComponentId(value)
      : value
    : "MIRROR";
}

/** One data section per science extension: the whole array is data. */
function niriSections(f: GeminiFile): Section[] {
  return f.sci.map(
    (h) => new Section(0, h.number("NAXIS1") ?? 0, 0, h.number("NAXIS2") ?? 0),
  );
}

function niriCentralWavelength(f: GeminiFile): number | null {
  const camera = phuScalar(f, "CAMERA");
  const mask = stripComponentId(phuScalar(f, "FPMASK"));
  const grism = niriDisperser(f, true)?.slice(0, 6) ?? null;
  for (const [c, masks, grisms] of GRISM_NM) {
    const nm =
      c === camera && mask !== null && masks.includes(mask) && grism !== null
        ? grisms[grism]
        : undefined;
    if (nm !== undefined) {
      return float32Round(nm / 1000);
    }
  }
  return null;
}

function niriWellDepth(f: GeminiFile): string {
  const vdduc = f.phu.get("A_VDDUC");
  const vdet = f.phu.get("A_VDET");
  if (vdduc === undefined || vdet === undefined) {
    return "Unknown";
  }
  if (typeof vdduc !== "number" || typeof vdet !== "number") {
    throw new DescriptorError("A_VDDUC and A_VDET must be numbers");
  }
  const bias = vdduc - vdet;
  return Math.abs(bias + 0.6) < 0.05
    ? "Shallow"
    : Math.abs(bias + 0.87) < 0.05
      ? "Deep"
      : "Unknown";
}

const niriReadMode = readModeByReads({
  "16,16": "Low Background",
  "1,16": "Medium Background",
  "1,1": "High Background",
});

function niriRoi(f: GeminiFile): string {
  const sections = niriSections(f);
  const first = sections[0];
  if (first === undefined) {
    throw new DescriptorError("no science extensions");
  }
  if (sections.some((s) => s.toString() !== first.toString())) {
    throw new DescriptorError(
      "the science extensions have different data sections",
    );
  }
  const { x1, x2, y1, y2 } = first;
  if (x1 === 0 && y1 === 0 && x2 === y2 && x2 % 256 === 0) {
    return x2 === 1024 ? "Full Frame" : `Central${x2}`;
  }
  return "Custom";
}

export const NIRI_DESCRIPTORS: Record<string, Descriptor> = {
  filter_name: (f) => niriFilterName(f, true),
  disperser: (f) => niriDisperser(f, true),
  // The archive calls it with pretty=True: `pupil38_G5207` → `pupil38`.
  pupil_mask: (f) => {
    const value = filter3(f);
    return value === null
      ? null
      : value.startsWith("pup")
        ? (stripComponentId(value) ?? value)
        : "MIRROR";
  },
  central_wavelength: niriCentralWavelength,
  read_mode: niriReadMode,
  well_depth_setting: niriWellDepth,
  data_section: (f) => niriSections(f).map((s) => s.toString()),
  detector_roi_setting: niriRoi,
  array_name: (f) => f.sci.map(() => null),
  amp_read_area: (f) => f.sci.map(() => null),
};
