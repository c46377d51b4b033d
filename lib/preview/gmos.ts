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

/** An amplifier's place in the mosaic, known from its header alone. */
export interface AmplifierPlan {
  hdu: number;
  detsec: Section;
  datasec: Section;
  /** Where the data section goes in the mosaic. */
  target: Rect;
  gain: number;
  layout: ImageLayout;
  /** The data section cut to the image, the same size as `target`. */
  source: Rect;
  /** BIASSEC cut to the image; undefined when absent or outside it (bias 0). */
  overscan: Rect | undefined;
}

export interface Placement extends AmplifierPlan {
  bias: number;
}

/** Where every amplifier goes, without any pixels yet. */
export interface MosaicPlan {
  width: number;
  height: number;
  binning: { x: number; y: number };
  /** In file order: where two overlap, the later one is what shows. */
  amplifiers: AmplifierPlan[];
}

export interface GmosMosaic {
  frame: Frame;
  binning: { x: number; y: number };
  placements: Placement[];
}

export type MosaicPlanResult =
  { ok: true; plan: MosaicPlan } | { ok: false; reason: string };

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

/** The mosaic's geometry from the headers, or why the frame cannot be mosaicked. */
export function planGmosMosaic(
  structure: FitsStructure,
  options: { gapRule?: GapRule } = {},
): MosaicPlanResult {
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
  const amplifiers: AmplifierPlan[] = [];
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
    const biassec = parseSection(hdu.header.string("BIASSEC"));
    const overscan =
      biassec === undefined
        ? undefined
        : within(biassec, layout.width, layout.height);
    amplifiers.push({
      hdu: hdu.index,
      detsec,
      datasec,
      target,
      gain: hdu.header.number("GAIN") ?? 1,
      layout,
      source,
      overscan:
        overscan !== undefined && overscan.width > 0 && overscan.height > 0
          ? overscan
          : undefined,
    });
  }
  return { ok: true, plan: { width, height, binning: bin, amplifiers } };
}

/**
 * The whole mosaic in memory, as the reference builds it (a Float32Array
 * rather than its float64). Rendering streams the plan instead
 * (mosaicRegions); this is for looking at the pixels.
 */
export function buildGmosMosaic(
  reader: FitsPixelReader,
  structure: FitsStructure,
  options: { gapRule?: GapRule } = {},
): MosaicResult {
  const planned = planGmosMosaic(structure, options);
  if (!planned.ok) {
    return planned;
  }
  const { width, height, binning: bin, amplifiers } = planned.plan;
  const data = new Float32Array(width * height);
  const placements: Placement[] = [];
  for (const amplifier of amplifiers) {
    const { layout, source, target, gain } = amplifier;
    const bias = overscanBias(reader, amplifier);
    placements.push({ ...amplifier, bias });
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

/** The median of an amplifier's overscan, read on its own. */
export function overscanBias(
  reader: FitsPixelReader,
  amplifier: AmplifierPlan,
): number {
  const { overscan, layout } = amplifier;
  if (overscan === undefined) {
    return 0;
  }
  return biasOf(median(reader.read(layout, { section: overscan }).data));
}

/** An overscan median with nothing finite in it (NaN) counts as no bias. */
export function biasOf(overscanMedian: number): number {
  return Number.isFinite(overscanMedian) ? overscanMedian : 0;
}

/**
 * The mosaic cut into rectangles that tile it exactly: the part of each
 * amplifier that no later one covers, and the empty rest (the gaps, zeros
 * in the reference's mosaic), with `amplifier` undefined.
 */
export function mosaicRegions(
  plan: MosaicPlan,
): { rect: Rect; amplifier: AmplifierPlan | undefined }[] {
  const regions: { rect: Rect; amplifier: AmplifierPlan | undefined }[] = [];
  const { amplifiers } = plan;
  amplifiers.forEach((amplifier, k) => {
    let visible = [amplifier.target];
    for (const later of amplifiers.slice(k + 1)) {
      visible = visible.flatMap((r) => subtract(r, later.target));
    }
    for (const rect of visible) {
      regions.push({ rect, amplifier });
    }
  });
  let empty = [{ x: 0, y: 0, width: plan.width, height: plan.height }];
  for (const { target } of amplifiers) {
    empty = empty.flatMap((r) => subtract(r, target));
  }
  for (const rect of empty) {
    regions.push({ rect, amplifier: undefined });
  }
  return regions;
}

/** `a` without `b`: up to four rectangles (the bands above and below, then left and right). */
function subtract(a: Rect, b: Rect): Rect[] {
  const ax1 = a.x + a.width;
  const ay1 = a.y + a.height;
  const x0 = Math.max(a.x, b.x);
  const x1 = Math.min(ax1, b.x + b.width);
  const y0 = Math.max(a.y, b.y);
  const y1 = Math.min(ay1, b.y + b.height);
  if (a.width <= 0 || a.height <= 0) {
    return [];
  }
  if (x0 >= x1 || y0 >= y1) {
    return [a];
  }
  const pieces: Rect[] = [
    { x: a.x, y: a.y, width: a.width, height: y0 - a.y },
    { x: a.x, y: y1, width: a.width, height: ay1 - y1 },
    { x: a.x, y: y0, width: x0 - a.x, height: y1 - y0 },
    { x: x1, y: y0, width: ax1 - x1, height: y1 - y0 },
  ];
  return pieces.filter((r) => r.width > 0 && r.height > 0);
}
