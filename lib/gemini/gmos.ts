/**
 * GMOS descriptors (docs/MAPPING-NOTES.md §6.1): binning, gains and read areas
 * come from the amplifier extensions; the ROI from the PHU's first region;
 * the read speed from the integration time and the CCD family; RA/Dec from the
 * CRVALs of a TAN projection, without a WCS model.
 */
import {
  float32Round,
  parseAngle,
  Section,
  stripComponentId,
} from "./common.js";
import {
  type Descriptor,
  DescriptorError,
  type GeminiFile,
} from "./gemini-file.js";
import { phuScalar } from "./model.js";
import { maskFileNote } from "./null-reasons.js";
import { genericFilterName } from "./optics.js";

const DETECTORS: Record<string, string> = {
  "SDSU II CCD": "EEV",
  "SDSU II e2v DD CCD42-90": "e2vDD",
  S10892: "Hamamatsu-S",
  "S10892-N": "Hamamatsu-N",
};

/** Unbinned, 0-based (y1, y2, x1, x2) of the named regions of interest. */
const ROIS: [string, [number, number, number, number][]][] = [
  [
    "Full Frame",
    [
      [0, 4608, 0, 6144],
      [0, 4224, 0, 6144],
    ],
  ],
  [
    "CCD2",
    [
      [0, 4608, 2048, 4096],
      [0, 4224, 2048, 4096],
    ],
  ],
  [
    "Central Spectrum",
    [
      [1792, 2816, 0, 6144],
      [1791, 2815, 0, 6144],
      [1624, 2648, 0, 6144],
    ],
  ],
  [
    "Central Stamp",
    [
      [2154, 2454, 2922, 3222],
      [1986, 2286, 2922, 3222],
      [1986, 2294, 2922, 3222],
    ],
  ],
];

function detectorName(f: GeminiFile): string | null {
  const type = phuScalar(f, "DETTYPE");
  return typeof type === "string" ? (DETECTORS[type] ?? null) : null;
}

/** The science extensions; descriptors that read them fail when there are none (e.g. a mask definition file). */
function science(f: GeminiFile): GeminiFile["sci"] {
  if (f.sci.length === 0) {
    throw new DescriptorError(
      `the file has no science extensions${maskFileNote(f)}`,
    );
  }
  return f.sci;
}

/** x (0) or y (1) binning from CCDSUM, if every extension agrees as the reference checks it. */
function binning(f: GeminiFile, axis: 0 | 1): number | null {
  const bins = science(f).map((h) => {
    const part = String(h.get("CCDSUM") ?? "")
      .trim()
      .split(/\s+/)[axis];
    return part !== undefined && /^\d+$/.test(part) ? Number(part) : null;
  });
  // The reference tests that the list reads the same both ways, not that all agree.
  const palindrome = bins.every((b, i) => b === bins[bins.length - 1 - i]);
  return palindrome ? (bins[0] ?? null) : null;
}

function roiSetting(f: GeminiFile): string {
  const [x, xs, y, ys] = ["DETRO1X", "DETRO1XS", "DETRO1Y", "DETRO1YS"].map(
    (k) => f.phu.number(k),
  );
  if (!x || !xs || !y || !ys) {
    return "Undefined";
  }
  const xbin = binning(f, 0);
  const ybin = binning(f, 1);
  if (xbin === null || ybin === null) {
    throw new DescriptorError("the binning is unknown");
  }
  const roi = [y - 1, y - 1 + ys * ybin, x - 1, x - 1 + xs * xbin];
  const named = ROIS.find(([, boxes]) =>
    boxes.some((box) => box.every((v, i) => v === roi[i])),
  );
  return named?.[0] ?? "Custom";
}

const gainClass = (gain: number | undefined): string | null =>
  gain === undefined ? null : gain < 3 ? "low" : "high";

function gainSetting(f: GeminiFile): string | null {
  const sci = science(f);
  let settings: (string | null)[];
  if (!f.tags.has("PREPARED")) {
    settings = sci.map((h) => gainClass(h.number("GAIN")));
  } else if (sci.every((h) => h.has("GAINSET"))) {
    settings = sci.map((h) => h.string("GAINSET") ?? null);
  } else {
    const orig = sci.map((h) => h.number("GAINORIG"));
    const source = orig.every((g) => g === 1)
      ? sci.map((h) => h.number("GAINMULT"))
      : orig;
    if (source.some((g) => g === undefined)) {
      throw new DescriptorError(
        "prepared data without GAINSET, GAINORIG or GAINMULT need the amplifier gain table",
      );
    }
    settings = source.map(gainClass);
  }
  // The first setting shared by all extensions but at most one.
  return (
    settings.find(
      (s) => settings.filter((t) => t === s).length >= settings.length - 1,
    ) ?? null
  );
}

function readSpeedSetting(f: GeminiFile): string | null {
  const integration = f.phu.number("AMPINTEG");
  const detector = detectorName(f);
  if (integration === undefined || detector === null) {
    return null;
  }
  return integration > (detector.startsWith("Hamamatsu") ? 8000 : 2000)
    ? "slow"
    : "fast";
}

function readMode(f: GeminiFile): string | null {
  if (detectorName(f) === null) {
    throw new DescriptorError("unknown detector (DETTYPE)");
  }
  const key = `${String(gainSetting(f))},${String(readSpeedSetting(f))}`;
  return (
    {
      "low,slow": "Normal",
      "high,fast": "Bright",
      "low,fast": "Acquisition",
      "high,slow": "Engineering",
    }[key] ?? null
  );
}

function centralWavelength(f: GeminiFile): number | null {
  // CENTWAVE wins even when it is 0; then GRWLEN.
  const nm = f.phu.has("CENTWAVE")
    ? f.phu.number("CENTWAVE")
    : (f.phu.number("GRWLEN") ?? -1);
  return nm === undefined || nm <= 0 ? null : float32Round(nm / 1000);
}

/** CRVALn of a TAN projection (first science extension, else the PHU), else PHU RA/DEC. */
function position(f: GeminiFile, axis: 1 | 2): number | null {
  const ext = f.sci[0];
  const source =
    ext !== undefined && ext.has(`CRVAL${axis}`) && ext.has(`CTYPE${axis}`)
      ? ext
      : f.phu;
  const ctype = source.string(`CTYPE${axis}`);
  const crval = source.number(`CRVAL${axis}`);
  if (ctype === (axis === 1 ? "RA---TAN" : "DEC--TAN") && crval !== undefined) {
    return crval;
  }
  return parseAngle(
    f.phu.get(axis === 1 ? "RA" : "DEC"),
    axis === 1 ? "ra" : "dec",
  );
}

export const GMOS_DESCRIPTORS: Record<string, Descriptor> = {
  camera: (f) => stripComponentId(phuScalar(f, "INSTRUME")),
  disperser: (f) => {
    const grating = phuScalar(f, "GRATING");
    return grating === null
      ? null
      : (stripComponentId(grating) ?? String(grating)).replace(
          /^\++|\++$/g,
          "",
        );
  },
  filter_name: (f) => genericFilterName(f, true),
  focal_plane_mask: (f) => {
    const mask = phuScalar(f, "MASKNAME");
    return mask === "None" ? "Imaging" : mask;
  },
  central_wavelength: centralWavelength,
  detector_x_bin: (f) => binning(f, 0),
  detector_y_bin: (f) => binning(f, 1),
  detector_roi_setting: roiSetting,
  gain_setting: gainSetting,
  read_speed_setting: readSpeedSetting,
  read_mode: readMode,
  array_name: (f) => science(f).map((h) => h.string("AMPNAME") ?? null),
  amp_read_area: (f) =>
    science(f).map((h) => {
      const amp = h.string("AMPNAME");
      const detsec = h.string("DETSEC");
      return amp === undefined ||
        amp === "" ||
        detsec === undefined ||
        detsec === ""
        ? null
        : `'${amp}':${detsec}`;
    }),
  data_section: (f) =>
    science(f).map((h) => Section.parse(h.get("DATASEC"))?.toString() ?? null),
  nod_count: (f) => {
    const a = f.phu.number("ANODCNT");
    const b = f.phu.number("BNODCNT");
    return a === undefined || b === undefined
      ? null
      : [Math.trunc(a), Math.trunc(b)];
  },
  shuffle_pixels: (f) =>
    f.tags.has("NODANDSHUFFLE") ? phuScalar(f, "NODPIX") : null,
  ra: (f) => position(f, 1),
  dec: (f) => position(f, 2),
};
