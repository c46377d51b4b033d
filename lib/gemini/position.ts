/**
 * RA/Dec for NIRI, F2 and GNIRS (docs/MAPPING-NOTES.md §5.6, §6.4, §3.7): the
 * sky reference point of the first science extension's WCS (else the PHU's),
 * falling back to the PHU RA/DEC keywords; GNIRS prefers the target position
 * when the WCS is more than 1000″ off.
 *
 * Positions are brought to ICRS as DRAGONS' `toicrs` does with astropy: FK5
 * J2000 by the frame bias, apparent places (non-sidereal WCS, FRAME = APPT)
 * and every frame name astropy does not know (AZEL_TOPO, FK4, …) through the
 * ERFA-grade CIRS → ICRS port in lib/astro, which agrees with astropy 5.2.1 far
 * below the fixtures' 1e-6°.
 *
 * Not yet: astropy's own lowercase frame names other than fk5, cirs and icrs
 * (fk4, galactic, …). Gemini headers do not use them; a GNIRS target in one
 * gives null with that reason, never a wrong position.
 */
import { apparentToIcrs, cirsToIcrs } from "../astro/index.js";
import {
  applyTransposed,
  fromSpherical,
  multiply,
  rotX,
  rotY,
  rotZ,
  toSpherical,
} from "../astro/vector.js";
import type { Header } from "../fits/header.js";
import { parseAngle } from "./common.js";
// A cycle (descriptors.ts builds its tables from this module); harmless because
import {
  type Descriptor,
  DescriptorError,
  type GeminiFile,
} from "./gemini-file.js";
import { utDatetime } from "./times.js";

const SKY_PAIRS: [string, string][] = [
  ["RA", "DEC"],
  ["GLON", "GLAT"],
  ["ELON", "ELAT"],
  ["HLON", "HLAT"],
  ["SLON", "SLAT"],
];

type Wcs = { celestial: false } | { celestial: true; lon: number; lat: number };

/** The WCS a header defines, or undefined when it defines none at all (no CTYPEn, no CDi_j). */
function wcsOf(h: Header): Wcs | undefined {
  const axes =
    h.number("WCSAXES") ??
    Math.max(
      0,
      ...h.cards
        .map((c) => /^(?:CTYPE|CRVAL|CRPIX|CUNIT)(\d+)$/.exec(c.keyword)?.[1])
        .map((n) => Number(n ?? 0)),
    );
  const hasCd = h.cards.some((c) => /^CD\d+_\d+$/.test(c.keyword));
  const ctypes = Array.from({ length: axes }, (_, i) =>
    h.string(`CTYPE${i + 1}`),
  );
  if (ctypes.every((c) => c === undefined) && !hasCd) {
    return undefined;
  }
  const kinds = ctypes.map((c) => (c ?? "").split("-")[0]?.toUpperCase() ?? "");
  for (const [lonName, latName] of SKY_PAIRS) {
    const lonAxes = kinds.flatMap((k, i) => (k === lonName ? [i] : []));
    const latAxes = kinds.flatMap((k, i) => (k === latName ? [i] : []));
    const skyAxes = kinds.filter((k) =>
      SKY_PAIRS.some(([a, b]) => k === a || k === b),
    ).length;
    if (lonAxes.length === 1 && latAxes.length === 1 && skyAxes === 2) {
      return {
        celestial: true,
        lon: h.number(`CRVAL${(lonAxes[0] ?? 0) + 1}`) ?? 0,
        lat: h.number(`CRVAL${(latAxes[0] ?? 0) + 1}`) ?? 0,
      };
    }
  }
  return { celestial: false };
}

/** §5.6: the sky reference point of ext[0]'s WCS (else the PHU's), or null. */
function wcsPosition(f: GeminiFile): [number, number] | null {
  const ext = f.sci[0];
  if (ext === undefined) {
    throw new DescriptorError("the file has no science extensions");
  }
  const wcs = wcsOf(ext) ?? wcsOf(f.phu);
  if (wcs === undefined || !wcs.celestial) {
    return null;
  }
  if (f.tags.has("NON_SIDEREAL")) {
    // A non-sidereal target's WCS is in apparent place, whatever FRAME says.
    return apparentToIcrs(wcs.lon, checkLatitude(wcs.lat), utDatetime(f));
  }
  return [wcs.lon, wcs.lat];
}

function keywordPosition(f: GeminiFile, axis: 0 | 1): number | null {
  return parseAngle(
    f.phu.get(axis === 0 ? "RA" : "DEC"),
    axis === 0 ? "ra" : "dec",
  );
}

/** §5.6 for NIRI and F2. */
function genericPosition(axis: 0 | 1): Descriptor {
  return (f) => wcsPosition(f)?.[axis] ?? keywordPosition(f, axis);
}

// --- FK5 J2000 → ICRS: the frame bias only (IAU 2000) ---------------------------

const MAS = Math.PI / (180 * 3600 * 1000);
const ETA0 = -19.9 * MAS;
const XI0 = 9.1 * MAS;
const DA0 = -22.9 * MAS;

/** ICRS → FK5 J2000 (passive rotations); FK5 → ICRS is its transpose. */
const ICRS_TO_FK5 = multiply(multiply(rotX(-ETA0), rotY(XI0)), rotZ(DA0));
const DEG = Math.PI / 180;

export function fk5ToIcrs(raDeg: number, decDeg: number): [number, number] {
  const [ra, dec] = toSpherical(
    applyTransposed(ICRS_TO_FK5, fromSpherical(raDeg * DEG, decDeg * DEG)),
  );
  return [ra / DEG, dec / DEG];
}

/** astropy refuses a latitude beyond ±90° (its Latitude raises ValueError). */
function checkLatitude(decDeg: number): number {
  if (!(Math.abs(decDeg) <= 90)) {
    throw new DescriptorError(`latitude ${decDeg}° is outside ±90°`);
  }
  return decDeg;
}

/**
 * §3.7 `toicrs(frame, ra, dec, 2000, ut_datetime)`: astropy knows FK5 (as
 * "fk5") and CIRS; DRAGONS turns APPT into CIRS by the equation of the
 * origins; any name astropy does not know falls back to CIRS.
 */
function toIcrs(
  frame: string,
  raDeg: number,
  decDeg: number,
  utDatetime: string | null,
): [number, number] {
  checkLatitude(decDeg);
  switch (frame) {
    case "FK5":
    case "fk5":
      return fk5ToIcrs(raDeg, decDeg);
    case "APPT":
      return apparentToIcrs(raDeg, decDeg, utDatetime);
    case "icrs":
      return [((raDeg % 360) + 360) % 360, decDeg];
    case "cirs":
      return cirsToIcrs(raDeg, decDeg, utDatetime);
    default:
      // astropy's frame names are lowercase; an unknown name is CIRS.
      if (/^[a-z][a-z0-9_]*$/.test(frame)) {
        throw new DescriptorError(
          `converting a target in astropy's ${frame} frame to ICRS is not implemented yet`,
        );
      }
      return cirsToIcrs(raDeg, decDeg, utDatetime);
  }
}

// --- GNIRS: the target position when the WCS is far off (§6.4) ---------------------

/** Years from EPOCH (default 2000) to the observation, with the fraction of the year elapsed. */
function yearsSinceEpoch(f: GeminiFile, utDatetime: string | null): number {
  if (utDatetime === null) {
    throw new DescriptorError("no observation time for the proper motion");
  }
  const t = Date.parse(`${utDatetime}Z`);
  const year = new Date(t).getUTCFullYear();
  const start = Date.UTC(year, 0, 1);
  const fraction = (t - start) / (Date.UTC(year + 1, 0, 1) - start);
  return year + fraction - (f.phu.number("EPOCH") ?? 2000);
}

function targetPosition(
  f: GeminiFile,
  utDatetime: string | null,
): [number, number] {
  const ra = keywordPosition(f, 0);
  const dec = keywordPosition(f, 1);
  if (ra === null || dec === null) {
    throw new DescriptorError("no RA/DEC keywords");
  }
  const n = (k: string) => f.phu.number(k) ?? 0;
  let decT = dec + (n("DECOFFSE") + n("DECTRGOF")) / 3600;
  const pmDec = n("PMDEC");
  const pmRa = n("PMRA");
  if (pmDec !== 0) {
    decT += (pmDec * yearsSinceEpoch(f, utDatetime)) / 3600;
  }
  let raT =
    ra +
    (n("RAOFFSET") + n("RATRGOFF")) / 3600 / Math.cos((decT * Math.PI) / 180);
  if (pmRa !== 0) {
    raT += (pmRa * yearsSinceEpoch(f, utDatetime) * 15) / 3600;
  }
  return toIcrs(f.phu.string("FRAME") ?? "FK5", raT, decT, utDatetime);
}

/** GNIRS: the WCS (or keyword) position, unless it is more than 1000″ from the target. */
export function gnirsPosition(
  f: GeminiFile,
  utDatetime: string | null,
): [number | null, number | null] {
  const wcs = wcsPosition(f);
  const w: [number | null, number | null] = wcs ?? [
    keywordPosition(f, 0),
    keywordPosition(f, 1),
  ];
  let t: [number, number];
  try {
    t = targetPosition(f, utDatetime);
  } catch (error) {
    if (
      error instanceof DescriptorError &&
      error.message.includes("not implemented")
    ) {
      throw error; // the reference would have computed a target here; do not guess
    }
    return w;
  }
  const [wRa, wDec] = w;
  if (wRa === null || wDec === null) {
    return w;
  }
  const decOffArcsec = Math.abs(wDec - t[1]) * 3600;
  let raDiff = Math.abs(wRa - t[0]);
  if (raDiff > 180) {
    raDiff = Math.abs(raDiff - 360);
  }
  const dec = decOffArcsec > 1000 ? t[1] : wDec;
  const raOffArcsec = (raDiff * 3600) / Math.cos((dec * Math.PI) / 180);
  return [raOffArcsec > 1000 ? t[0] : wRa, dec];
}

export const GENERIC_POSITION: Record<string, Descriptor> = {
  ra: genericPosition(0),
  dec: genericPosition(1),
};
