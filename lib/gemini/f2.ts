/**
 * F2 (FLAMINGOS-2) descriptors (docs/MAPPING-NOTES.md §6.3): the Lyot wheel
 * also holds filters since 2022, the camera follows the Lyot stop (or the pixel
 * scale), and central wavelengths come from WAVELENG with a few filter overrides.
 */
import { float32Round, Section, stripComponentId } from "./common.js";
import {
  type Descriptor,
  DescriptorError,
  type GeminiFile,
} from "./gemini-file.js";
import { phuFloat, phuScalar } from "./model.js";
import { maybeStripped } from "./optics.js";

/** The `Gdddd` component ID after the last `_`, or null. */
function componentId(value: string): string | null {
  return (
    /_(G\d{4})$/.exec(value)?.[1] ?? /.*_(G\d{4})/.exec(value)?.[1] ?? null
  );
}

function lyotStop(f: GeminiFile): string | null {
  const value = phuScalar(f, "LYOT") ?? phuScalar(f, "LYOTPOS");
  return value === null || value === "Undefined" ? null : String(value);
}

type FilterStyle = "plain" | "pretty" | "keepId";

export function f2FilterName(f: GeminiFile, style: FilterStyle): string | null {
  let f1 = phuScalar(f, "FILTER1");
  let f2 = phuScalar(f, "FILTER2");
  if (f1 === null || f2 === null) {
    f1 = phuScalar(f, "FILT1POS");
    f2 = phuScalar(f, "FILT2POS");
    if (f1 === null || f2 === null) {
      return null;
    }
  }
  const lyot = lyotStop(f);
  const filter3 =
    lyot !== null &&
    !lyot.startsWith("f") &&
    !lyot.startsWith("GEMS") &&
    !lyot.startsWith("Hart")
      ? lyot
      : null;
  const restyle = (raw: string): string => {
    if (style === "plain") {
      return raw;
    }
    const stripped = stripComponentId(raw) ?? raw;
    const id = componentId(raw);
    return style === "keepId" && id !== null ? `${stripped}_${id}` : stripped;
  };
  let names = [
    String(f1),
    String(f2),
    ...(filter3 === null ? [] : [filter3]),
  ].map(restyle);
  if (style !== "plain") {
    const [a = "", b = ""] = names;
    const isOpen = (x: string) => x.includes("open") || x.includes("Open");
    names = names.filter((x, i) => !(i < 2 && isOpen(x)));
    if ([a, b].some((x) => x.includes("Block") || x.includes("Dark"))) {
      names = ["blank"];
    }
    if ([a, b].some((x) => x.includes("DK"))) {
      names = ["dark"];
    }
    if (names.length === 0) {
      names = ["open"];
    }
  }
  return names.join("&");
}

function f2Camera(f: GeminiFile): string | null {
  let camera = lyotStop(f);
  if (camera === null || !camera.startsWith("f/")) {
    const focus = phuScalar(f, "FOCUS");
    let ratio =
      typeof focus === "string" && /^f\/\d+$/.test(focus) ? focus : undefined;
    if (ratio === undefined) {
      ratio = pixelScale(f) > 0.1 ? "f/16" : "f/32";
    }
    camera = `${ratio}${ratio === "f/16" ? "_G5830" : "_G9999"}`;
  }
  return stripComponentId(camera);
}

/** Arcseconds per pixel from the first science extension's CD matrix, else PIXSCALE. */
function pixelScale(f: GeminiFile): number {
  const ext = f.sci[0];
  const cd = ["CD1_1", "CD1_2", "CD2_1", "CD2_2"].map((k) => ext?.number(k));
  if (!f.tags.has("PREPARED") && cd.every((v) => v !== undefined)) {
    const [a, b, c, d] = cd as [number, number, number, number];
    return 3600 * Math.sqrt(Math.abs(a * d - b * c));
  }
  const scale = f.phu.number("PIXSCALE");
  if (scale === undefined) {
    throw new DescriptorError(
      "no CD matrix and no PIXSCALE to tell the camera",
    );
  }
  return scale;
}

/** Effective filters whose central wavelength is fixed rather than read from WAVELENG (nm). */
const FILTER_WAVELENGTH_NM: Record<string, number> = {
  "K-long_G0812": 2200,
  JH_G0816: 1338.5,
  HK_G0817: 1900,
};

function f2CentralWavelength(f: GeminiFile): number | null {
  const angstrom = phuFloat(f, "WAVELENG");
  if (angstrom === undefined) {
    throw new DescriptorError("WAVELENG is missing");
  }
  const nm =
    FILTER_WAVELENGTH_NM[f2FilterName(f, "keepId") ?? ""] ?? angstrom * 0.1;
  return nm < 0 ? null : float32Round(nm / 1000);
}

export const F2_DESCRIPTORS: Record<string, Descriptor> = {
  filter_name: (f) => f2FilterName(f, "pretty"),
  disperser: (f) => maybeStripped(f, "GRISM", true),
  camera: f2Camera,
  focal_plane_mask: (f) =>
    phuScalar(f, "MOSPOS") === "Open" ? "Open" : phuScalar(f, "MASKNAME"),
  central_wavelength: f2CentralWavelength,
  read_mode: (f) => {
    const value = phuScalar(f, "LNRS");
    return value === null ? null : String(value);
  },
  // Raw F2 frames are fully data whatever DATASEC says.
  data_section: (f) =>
    f.tags.has("PREPARED")
      ? f.sci.map((h) => Section.parse(h.get("DATASEC"))?.toString() ?? null)
      : f.sci.map(() => new Section(0, 2048, 0, 2048).toString()),
  lyot_stop: lyotStop,
  array_name: (f) => f.sci.map(() => null),
  amp_read_area: (f) => f.sci.map(() => null),
  well_depth_setting: () => null,
  gain_setting: () => null,
  read_speed_setting: () => null,
};
