/**
 * The GMOS mosaic of the reference's previews (FitsStorage v3
 * `Previewer.render_image`, DOMAIN §4): the amplifiers of a raw multi-extension
 * GMOS frame pasted side by side where DETSEC puts them, overscan bias
 * removed and gain applied, with chip gaps.
 *
 * Geometry, as the reference computes it (sections are 0-based, end-exclusive;
 * DETSEC is in unbinned detector pixels, DATASEC/BIASSEC in the binned pixels
 * of the extension):
 * - extent: the union of all DETSECs, each bound divided by the binning of
 *   CCDSUM and rounded down; the mosaic is that extent plus 2 × 40 columns
 *   (the 40 is not divided by the binning, so binned frames end in empty
 *   columns on the right);
 * - an amplifier whose DETSEC starts at x = 2048 or 3072 moves right by 40
 *   unbinned pixels, one starting at 4096 or 5120 by 80, the others stay: the
 *   gap rule the reference wrote for 3- and 6-amplifier frames. On 12-amplifier
 *   (Hamamatsu, 512-column) frames it moves only every other amplifier of
 *   chips 2 and 3, leaving gaps inside those chips and overlaps that later
 *   extensions overwrite. So the default, `gapRule: "chip"`, moves every
 *   amplifier by its chip instead (40 × ⌊x / 2048⌋, the same as the
 *   reference for 3 and 6 amplifiers); `"reference"` reproduces the archive;
 * - target column = ⌊(DETSEC x + shift) / xbin⌋ − ⌊extent x / xbin⌋, row =
 *   ⌊DETSEC y / ybin⌋ − ⌊extent y / ybin⌋; extensions are pasted in file order
 *   into a zero-filled frame, the zeros of gaps counting in the percentiles.
 * - pixel = (DATASEC value − median of BIASSEC) × GAIN.
 *
 * Deliberate differences, where the reference fails or gives a blank picture:
 * an overscan outside the data (the DRAGONS masks) or without finite values
 * gives bias 0 (numpy's median of nothing is NaN, which blanks the whole
 * preview); GAIN is the keyword (the reference's descriptor also consults
 * lookup tables for raw data), 1 when absent; CCDSUM absent means 1 x 1.
 */
import type { FitsPixelReader, ImageLayout, Rect } from "../fits/pixels.js";
import { imageLayout } from "../fits/pixels.js";
import type { FitsStructure, Hdu } from "../fits/scanner.js";
import { median } from "./percentile.js";
import type { Frame } from "./raster.js";

/** The reference's "approx chip gap in pixels", in unbinned pixels. */
export const GMOS_GAP = 40;
/** Every GMOS CCD ever fitted is 2048 unbinned pixels wide. */
const CHIP_WIDTH = 2048;

export type GapRule = "reference" | "chip";

/** A 0-based, end-exclusive section, like astrodata's Section. */
export interface Section {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export interface Placement {
  hdu: number;
  detsec: Section;
  datasec: Section;
  /** Where the data section went in the mosaic. */
  target: Rect;
  bias: number;
  gain: number;
}

export interface GmosMosaic {
  frame: Frame;
  binning: { x: number; y: number };
  placements: Placement[];
}

export type MosaicResult =
  { ok: true; mosaic: GmosMosaic } | { ok: false; reason: string };

/**
 * The extensions astrodata counts as the frame's slices: images named SCI or
 * unnamed. VAR, DQ and the like ride along with their SCI; tables (a GMOS MDF)
 * are not slices.
 */
export function scienceImages(structure: FitsStructure): Hdu[] {
  return structure.hdus.filter((hdu) => {
    if (hdu.index === 0 || hdu.type !== "IMAGE") {
      return false;
    }
    const name = hdu.header.string("EXTNAME")?.trim().toUpperCase();
    return name === undefined || name === "" || name === "SCI";
  });
}

/** The reference mosaics any frame whose INSTRUME contains GMOS and that has more than one slice. */
export function isGmosMosaic(structure: FitsStructure): boolean {
  const instrument = structure.hdus[0]?.header.string("INSTRUME") ?? "";
  return (
    instrument.toUpperCase().includes("GMOS") &&
    scienceImages(structure).length > 1
  );
}

/** "[x1:x2,y1:y2]" (1-based, inclusive) as a 0-based end-exclusive section. */
export function parseSection(text: string | undefined): Section | undefined {
  const match =
    /^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$/.exec(
      text ?? "",
    );
  if (match === null) {
    return undefined;
  }
  const [x1, x2, y1, y2] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
  ];
  if (x1 < 1 || y1 < 1 || x2 < x1 || y2 < y1) {
    return undefined;
  }
  return { x0: x1 - 1, x1: x2, y0: y1 - 1, y1: y2 };
}

function binning(hdu: Hdu, primary: Hdu | undefined) {
  const text =
    hdu.header.string("CCDSUM") ?? primary?.header.string("CCDSUM") ?? "";
  const match = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (match === null) {
    return { x: 1, y: 1 };
  }
  return { x: Math.max(1, Number(match[1])), y: Math.max(1, Number(match[2])) };
}

/** Unbinned columns an amplifier moves right by. */
function shiftFor(detectorX: number, rule: GapRule): number {
  if (rule === "chip") {
    return GMOS_GAP * Math.min(2, Math.floor(detectorX / CHIP_WIDTH));
  }
  if (detectorX === 4096 || detectorX === 5120) {
    return 2 * GMOS_GAP;
  }
  return detectorX === 2048 || detectorX === 3072 ? GMOS_GAP : 0;
}

/** A section cut to an image's bounds, as a numpy slice is. */
function within(section: Section, width: number, height: number): Rect {
  const x0 = Math.min(section.x0, width);
  const y0 = Math.min(section.y0, height);
  return {
    x: x0,
    y: y0,
    width: Math.min(section.x1, width) - x0,
    height: Math.min(section.y1, height) - y0,
  };
}

export function buildGmosMosaic(
  reader: FitsPixelReader,
  structure: FitsStructure,
  options: { gapRule?: GapRule } = {},
): MosaicResult {
  const rule = options.gapRule ?? "chip";
  const slices = scienceImages(structure);
  const first = slices[0];
  if (first === undefined) {
    return { ok: false, reason: "no image extensions" };
  }
  const bin = binning(first, structure.hdus[0]);
  const parts = [];
  for (const hdu of slices) {
    const checked = imageLayout(hdu);
    if (!checked.ok) {
      return checked;
    }
    const layout = checked.layout;
    if (layout.planes > 1) {
      return {
        ok: false,
        reason: `HDU ${hdu.index} is a cube, not an amplifier image`,
      };
    }
    const detsec = parseSection(hdu.header.string("DETSEC"));
    const datasec = parseSection(hdu.header.string("DATASEC"));
    if (detsec === undefined || datasec === undefined) {
      return {
        ok: false,
        reason: `HDU ${hdu.index} has no valid DETSEC and DATASEC, so the amplifiers cannot be placed`,
      };
    }
    const own = binning(hdu, structure.hdus[0]);
    if (own.x !== bin.x || own.y !== bin.y) {
      return {
        ok: false,
        reason: `the extensions have different binnings (CCDSUM ${bin.x} ${bin.y} and ${own.x} ${own.y})`,
      };
    }
    parts.push({ hdu, layout, detsec, datasec });
  }
  const xmin = Math.floor(Math.min(...parts.map((p) => p.detsec.x0)) / bin.x);
  const xmax = Math.floor(Math.max(...parts.map((p) => p.detsec.x1)) / bin.x);
  const ymin = Math.floor(Math.min(...parts.map((p) => p.detsec.y0)) / bin.y);
  const ymax = Math.floor(Math.max(...parts.map((p) => p.detsec.y1)) / bin.y);
  const width = xmax - xmin + 2 * GMOS_GAP;
  const height = ymax - ymin;
  const data = new Float32Array(width * height);
  const placements: Placement[] = [];
  for (const { hdu, layout, detsec, datasec } of parts) {
    const shift = shiftFor(detsec.x0, rule);
    const target = within(
      {
        x0: Math.floor((detsec.x0 + shift) / bin.x) - xmin,
        x1: Math.floor((detsec.x1 + shift) / bin.x) - xmin,
        y0: Math.floor(detsec.y0 / bin.y) - ymin,
        y1: Math.floor(detsec.y1 / bin.y) - ymin,
      },
      width,
      height,
    );
    const source = within(datasec, layout.width, layout.height);
    if (source.width !== target.width || source.height !== target.height) {
      return {
        ok: false,
        reason: `HDU ${hdu.index}: DATASEC ${hdu.header.string("DATASEC")} (${source.width} x ${source.height} pixels) does not match DETSEC ${hdu.header.string("DETSEC")} at binning ${bin.x} x ${bin.y} (${target.width} x ${target.height})`,
      };
    }
    const bias = overscanBias(reader, hdu, layout);
    const gain = hdu.header.number("GAIN") ?? 1;
    placements.push({ hdu: hdu.index, detsec, datasec, target, bias, gain });
    reader.readInto(layout, data, {
      section: source,
      offset: target.y * width + target.x,
      stride: width,
      multiply: gain,
      add: -bias * gain,
    });
  }
  return {
    ok: true,
    mosaic: { frame: { width, height, data }, binning: bin, placements },
  };
}

function overscanBias(
  reader: FitsPixelReader,
  hdu: Hdu,
  layout: ImageLayout,
): number {
  const section = parseSection(hdu.header.string("BIASSEC"));
  if (section === undefined) {
    return 0;
  }
  const rect = within(section, layout.width, layout.height);
  if (rect.width <= 0 || rect.height <= 0) {
    return 0;
  }
  const value = median(reader.read(layout, { section: rect }).data);
  return Number.isFinite(value) ? value : 0;
}
