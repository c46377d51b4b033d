/**
 * A synthetic Gemini archive: realistic raw GMOS-N/GMOS-S, NIRI, F2 and GNIRS
 * files made from the templates in templates.ts, for the demo, tests and the
 * ingest benchmarks. Deterministic for a seed (same seed, same bytes).
 *
 * The archive is planned as observing nights at both sites: each night has
 * daytime calibrations under the site's CAL program (biases, darks, lamp
 * flats, arcs, twilight flats) and science sequences of queue, classical, ...
 * programs (acquisition, science frames, their flats and arcs), so program,
 * observation and data-label ids, file names (N/SYYYYMMDDSNNNN), dates and
 * times, pointing, airmass and instrument configurations agree the way they
 * do in the real archive. Files are written through a temporary name and
 * renamed; data units are streamed in chunks (pseudo-random pixels around a
 * level that depends on the frame type), so a 60 MB GMOS frame never sits in
 * memory; `.fits.bz2` files go through the system's lbzip2 (or bzip2).
 *
 * A few files are deliberately damaged, one kind after another: a truncated
 * data unit, a header without END, bytes that are not FITS, a truncated bzip2
 * stream. `CORRUPTION_PROBLEMS` says which FitsFormatError each gives.
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat, truncate } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { finished } from "node:stream/promises";

import { decompressor } from "../fits/bzip2.js";
import type { FitsProblem } from "../fits/errors.js";
import {
  cardImage,
  dataPadding,
  formatCard,
  headerBytes,
} from "../fits/write.js";
import {
  type CardDef,
  type CardValue,
  type Family,
  type FrameTemplate,
  GCAL_BLOCK,
  GMOS_DETECTORS,
  GMOS_IFUS,
  GMOS_MASKS,
  GMOS_SLITS,
  type GmosDetector,
  gmosVariants,
  GUIDE_OIWFS,
  GUIDE_PWFS2,
  INSTRUMENTS,
  type Overrides,
  PERCENTILES,
  PROGRAM_TYPES,
  real,
  SEQUENCES,
  type SequenceTemplate,
  type Site,
  SITES,
  STAFF,
  TELESCOPE_OFFLINE,
} from "./templates.js";

export interface SyntheticOptions {
  /** How many files. */
  files: number;
  /** Deterministic output for a seed (default 1). */
  seed?: number;
  /** Share written as .fits.bz2 (default 0.3). */
  compressedFraction?: number;
  /** Deliberately broken files (default max(1, files/50)); kinds in turn. */
  corrupt?: number;
  /** tiny: data units of a few KB; small: tens of KB; full: real detector sizes. */
  dataScale?: "tiny" | "small" | "full";
  /** Spread the files over this many observing nights (default files/100, at least 1). */
  nights?: number;
  /** by-night puts files under YYYYMMDD/ (the file-name date). */
  layout?: "flat" | "by-night";
}

export interface SyntheticFile {
  /** Where the file was written (dir joined with the relative path). */
  path: string;
  name: string;
  /** INSTRUME: GMOS-N, GMOS-S, NIRI, F2, GNIRS. */
  instrument: string;
  /** The observing mode of a science frame (imaging, longslit, mos, ifu, xd) or the frame type (bias, dark, flat, arc, twilight, acquisition, standard). */
  kind: string;
  /** The kind of damage, for a deliberately broken file. */
  corrupt?: CorruptionKind;
  bytes: number;
}

export type CorruptionKind =
  "truncated-data" | "missing-end" | "garbage" | "truncated-bz2";

/** Kinds in the order they are used. */
export const CORRUPTION_KINDS: readonly CorruptionKind[] = [
  "truncated-data",
  "missing-end",
  "garbage",
  "truncated-bz2",
];

/** The FitsFormatError `problem` that reading each kind of damaged file gives. */
export const CORRUPTION_PROBLEMS: Record<CorruptionKind, FitsProblem> = {
  "truncated-data": "truncated-data",
  "missing-end": "missing-end",
  garbage: "not-fits",
  "truncated-bz2": "bzip2",
};

// --- deterministic randomness ------------------------------------------------------------

/** mulberry32: small, fast, and the same everywhere. */
class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  range(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) {
      throw new Error("pick from an empty list");
    }
    return item;
  }

  weighted<T>(items: readonly T[], weight: (item: T) => number): T {
    const total = items.reduce((sum, item) => sum + weight(item), 0);
    let r = this.next() * total;
    for (const item of items) {
      r -= weight(item);
      if (r < 0) {
        return item;
      }
    }
    return this.pick(items);
  }
}

// --- time and sky ------------------------------------------------------------------------

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const FIRST_NIGHT = Date.UTC(2010, 0, 1);
const LAST_NIGHT = Date.UTC(2023, 11, 31);

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

function isoDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** hh:mm:ss.s with `decimals` digits of seconds, from seconds of the day. */
function clock(secondsOfDay: number, decimals = 1): string {
  const s = ((secondsOfDay % 86400) + 86400) % 86400;
  const scale = 10 ** decimals;
  const total = Math.round(s * scale);
  const whole = Math.floor(total / scale);
  const fraction = total % scale;
  const text = `${pad(Math.floor(whole / 3600) % 24)}:${pad(Math.floor(whole / 60) % 60)}:${pad(whole % 60)}`;
  return decimals === 0 ? text : `${text}.${pad(fraction, decimals)}`;
}

const secondsOfDay = (ms: number) => (((ms % DAY_MS) + DAY_MS) % DAY_MS) / 1000;
const mjd = (ms: number) => ms / DAY_MS + 40587;

function decimalYear(ms: number): number {
  const year = new Date(ms).getUTCFullYear();
  const start = Date.UTC(year, 0, 1);
  return year + (ms - start) / (Date.UTC(year + 1, 0, 1) - start);
}

/** Local sidereal time, degrees. */
function lst(ms: number, longitude: number): number {
  const jd = ms / DAY_MS + 2440587.5;
  const gmst = 280.46061837 + 360.98564736629 * (jd - 2451545);
  return (((gmst + longitude) % 360) + 360) % 360;
}

const rad = (deg: number) => (deg * Math.PI) / 180;
const deg = (r: number) => (r * 180) / Math.PI;

/** Altitude and azimuth (degrees, azimuth from north through east, −180..180) of an hour angle and declination. */
function altAz(
  haDeg: number,
  decDeg: number,
  latDeg: number,
): [number, number] {
  const [h, d, l] = [rad(haDeg), rad(decDeg), rad(latDeg)];
  const sinAlt =
    Math.sin(l) * Math.sin(d) + Math.cos(l) * Math.cos(d) * Math.cos(h);
  const alt = Math.asin(sinAlt);
  const az = Math.atan2(
    -Math.cos(d) * Math.sin(h),
    Math.sin(d) * Math.cos(l) - Math.cos(d) * Math.sin(l) * Math.cos(h),
  );
  return [deg(alt), deg(az)];
}

/** Airmass of an altitude (Hardie's polynomial in sec z). */
function airmass(altitudeDeg: number): number {
  const secz = 1 / Math.sin(rad(Math.max(altitudeDeg, 5)));
  const x = secz - 1;
  return secz - 0.0018167 * x - 0.002875 * x * x - 0.0008083 * x * x * x;
}

const wrap180 = (d: number) => ((((d + 180) % 360) + 360) % 360) - 180;
const round = (x: number, digits: number) => Number(x.toFixed(digits));

/** "+hh:mm:ss.ss" of an hour angle in degrees. */
function hourAngle(haDeg: number): string {
  const h = wrap180(haDeg) / 15;
  return `${h < 0 ? "-" : "+"}${clock(Math.abs(h) * 3600, 2)}`;
}

function sexagesimal(value: number, hours: boolean): string {
  const v = hours ? value / 15 : Math.abs(value);
  const whole = Math.floor(v);
  const minutes = Math.floor((v - whole) * 60);
  const seconds = ((v - whole) * 60 - minutes) * 60;
  const s = hours
    ? seconds.toFixed(2).padStart(5, "0")
    : seconds.toFixed(1).padStart(4, "0");
  return `${hours ? "" : value < 0 ? "-" : "+"}${pad(whole)}${pad(minutes)}${s}`;
}

/** A 'YYYY-MM-DD' a whole number of months later, clamped to the month's end. */
function addMonths(date: string, months: number): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  const target = new Date(Date.UTC(y, m - 1 + months, 1));
  const last = new Date(
    Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0),
  ).getUTCDate();
  return isoDate(
    Date.UTC(target.getUTCFullYear(), target.getUTCMonth(), Math.min(d, last)),
  );
}

/** Gemini semesters: A is February–July, B August–January. */
function semester(labelDate: string): string {
  const [y, m] = labelDate.split("-").map(Number) as [number, number];
  return m === 1 ? `${y - 1}B` : m <= 7 ? `${y}A` : `${y}B`;
}

// --- the plan ----------------------------------------------------------------------------

interface Target {
  name: string;
  ra: number;
  dec: number;
  guideName: string;
  guideRa: number;
  guideDec: number;
}

interface Program {
  id: string;
  type: string;
  number: number;
  nextObservation: number;
}

interface Extension {
  bitpix: 16 | 32 | -32;
  axes: number[];
  cards: string[];
  /** Pixel level and noise (a power of two) of the data. */
  level: number;
  noise: number;
}

interface PlannedFile {
  index: number;
  name: string;
  relativePath: string;
  instrument: string;
  kind: string;
  compressed: boolean;
  corrupt: CorruptionKind | undefined;
  phu: string[];
  extensions: Extension[];
  dataSeed: number;
}

interface Resolved {
  files: number;
  seed: number;
  compressedFraction: number;
  corrupt: number;
  dataScale: "tiny" | "small" | "full";
  nights: number;
  layout: "flat" | "by-night";
}

function resolve(options: SyntheticOptions): Resolved {
  const files = Math.trunc(options.files);
  if (!Number.isFinite(files) || files < 1) {
    throw new RangeError(
      `files must be a positive integer, not ${options.files}`,
    );
  }
  const corrupt = Math.trunc(
    options.corrupt ?? Math.max(1, Math.floor(files / 50)),
  );
  if (corrupt < 0 || corrupt > files) {
    throw new RangeError(
      `corrupt must be between 0 and files (${files}), not ${options.corrupt}`,
    );
  }
  const compressedFraction = options.compressedFraction ?? 0.3;
  if (!(compressedFraction >= 0 && compressedFraction <= 1)) {
    throw new RangeError(
      `compressedFraction must be between 0 and 1, not ${compressedFraction}`,
    );
  }
  const totalNights = Math.round((LAST_NIGHT - FIRST_NIGHT) / DAY_MS) + 1;
  const nights = Math.trunc(
    options.nights ?? Math.max(1, Math.ceil(files / 100)),
  );
  if (nights < 1 || nights > totalNights) {
    throw new RangeError(
      `nights must be between 1 and ${totalNights}, not ${options.nights}`,
    );
  }
  if (files > nights * 2 * MAX_FILES_PER_NIGHT) {
    throw new RangeError(
      `${files} files do not fit in ${nights} nights: file names number at most ${MAX_FILES_PER_NIGHT} frames per site and night`,
    );
  }
  return {
    files,
    seed: Math.trunc(options.seed ?? 1),
    compressedFraction,
    corrupt,
    dataScale: options.dataScale ?? "tiny",
    nights,
    layout: options.layout ?? "flat",
  };
}

/** File names have four digits for the frame number; keep a margin for skipped numbers. */
const MAX_FILES_PER_NIGHT = 9000;

/** Bytes of pixel data per file at the reduced scales. */
const DATA_BUDGET = { tiny: 8 * 1024, small: 192 * 1024 } as const;

const FAMILY_OPTICS: Record<
  Family,
  {
    iaa: number;
    sfrt2: number;
    sftilt: number;
    sflinear: number;
    m2: [string, string];
  }
> = {
  GMOS: {
    iaa: 179.909,
    sfrt2: 178.519,
    sftilt: 44.84,
    sflinear: -2,
    m2: ["VISIBLE", "CLOSED"],
  },
  NIRI: {
    iaa: 89.22,
    sfrt2: -1.305,
    sftilt: 44.9,
    sflinear: 8,
    m2: ["NEAR IR", "OPEN"],
  },
  F2: {
    iaa: 359.95,
    sfrt2: 88.6,
    sftilt: -0.05,
    sflinear: 8,
    m2: ["NEAR IR", "OPEN"],
  },
  GNIRS: {
    iaa: 269.89,
    sfrt2: 91.2,
    sftilt: 44.7,
    sflinear: 8,
    m2: ["NEAR IR", "OPEN"],
  },
};

/** The per-file planner: walks the nights and yields every file's headers and data description, in order. */
class Planner {
  private readonly rng: Random;
  private readonly programs = new Map<string, Program[]>();
  private readonly calibration = new Map<string, Program>();
  private readonly nightDates: number[];
  private readonly corruptAt: Map<number, CorruptionKind>;
  private index = 0;

  constructor(private readonly o: Resolved) {
    this.rng = new Random(o.seed ^ 0x5eed);
    const total = Math.round((LAST_NIGHT - FIRST_NIGHT) / DAY_MS) + 1;
    const chosen = new Set<number>();
    while (chosen.size < o.nights) {
      chosen.add(this.rng.int(0, total - 1));
    }
    this.nightDates = [...chosen]
      .sort((a, b) => a - b)
      .map((d) => FIRST_NIGHT + d * DAY_MS);
    this.corruptAt = new Map(
      Array.from({ length: o.corrupt }, (_, k) => [
        Math.floor(((k + 0.5) * o.files) / o.corrupt),
        CORRUPTION_KINDS[k % CORRUPTION_KINDS.length]!,
      ]),
    );
  }

  *files(): Generator<PlannedFile> {
    const slots = this.nightDates.flatMap((date) =>
      (["N", "S"] as const).map((site) => ({ date, site })),
    );
    for (const [i, slot] of slots.entries()) {
      const budget =
        Math.floor(this.o.files / slots.length) +
        (i < this.o.files % slots.length ? 1 : 0);
      yield* this.night(slot.date, slot.site, budget);
    }
  }

  /** One site's night: daytime calibrations in the afternoon, twilight flats at dusk, then the science sequences. */
  private *night(
    labelMs: number,
    site: Site,
    budget: number,
  ): Generator<PlannedFile> {
    if (budget === 0) {
      return;
    }
    const labelDate = isoDate(labelMs);
    const available = SEQUENCES.filter((s) =>
      this.onSky(s.family, site, labelDate),
    );
    const sequences: {
      template: SequenceTemplate;
      frames: { frame: FrameTemplate; n: number }[];
    }[] = [];
    let planned = 0;
    while (planned < budget) {
      const template = this.rng.weighted(available, (s) => s.weight);
      const frames = template.frames.map((frame) => ({
        frame,
        n: this.rng.int(frame.count[0], frame.count[1]),
      }));
      for (const f of frames) {
        f.n = Math.min(f.n, budget - planned);
        planned += f.n;
      }
      sequences.push({ template, frames: frames.filter((f) => f.n > 0) });
    }
    const isTwilight = (s: SequenceTemplate) => s.name === "twilight-flats";
    const order = [
      ...sequences.filter((s) => s.template.daytime && !isTwilight(s.template)),
      ...sequences.filter((s) => isTwilight(s.template)),
      ...sequences.filter((s) => !s.template.daytime),
    ];
    const { utOffset } = SITES[site];
    // The night labelled D runs from 14:00 local on D-1 to 14:00 local on D.
    const base = labelMs - DAY_MS + (14 + utOffset) * HOUR_MS;
    const deadline = base + 23.5 * HOUR_MS;
    const nightStart = base + 5.5 * HOUR_MS;
    const exposures = order.flatMap((s) =>
      s.frames.map(
        (f) =>
          f.n *
          (Math.max(...f.frame.exptime) +
            INSTRUMENTS[s.template.family].overhead),
      ),
    );
    const needed = exposures.reduce((a, b) => a + b, 0) * 1000;
    const squeeze = Math.min(
      1,
      (deadline - base - 0.5 * HOUR_MS) / Math.max(needed, 1),
    );
    let t = base + 0.5 * HOUR_MS;
    let fileNumber = this.rng.int(1, 3);
    const weather = this.weather(site);
    for (const sequence of order) {
      if (isTwilight(sequence.template)) {
        t = Math.max(t, base + 4.4 * HOUR_MS);
      } else if (!sequence.template.daytime && squeeze === 1) {
        t = Math.max(t, nightStart);
      }
      const context = this.sequenceContext(
        sequence.template,
        site,
        labelDate,
        t,
      );
      let frameInSequence = 0;
      for (const { frame, n } of sequence.frames) {
        const exptime = this.rng.pick(frame.exptime);
        for (let k = 0; k < n; k++) {
          frameInSequence++;
          const name = `${site}${labelDate.replaceAll("-", "")}S${pad(fileNumber, 4)}`;
          yield this.frame(context, frame, {
            name,
            labelDate,
            start: Math.min(t, deadline),
            exptime,
            dataLabel: `${context.observationId}-${pad(frameInSequence, 3)}`,
            dither: k,
            weather,
          });
          fileNumber += this.rng.chance(0.04) ? 2 : 1;
          t +=
            (exptime + INSTRUMENTS[sequence.template.family].overhead) *
            1000 *
            squeeze;
        }
      }
    }
  }

  private onSky(family: Family, site: Site, date: string): boolean {
    return INSTRUMENTS[family].eras.some(
      (e) => e.site === site && e.from <= date && date < e.until,
    );
  }

  private weather(site: Site) {
    const [lo, hi] = SITES[site].tempRange;
    return {
      humidity: this.rng.range(5, 60),
      temperature: this.rng.range(lo, hi),
      wind: this.rng.range(0.5, 15),
      direction: this.rng.int(0, 359),
    };
  }

  private program(site: Site, labelDate: string): Program {
    const key = `${site}${semester(labelDate)}`;
    let pool = this.programs.get(key);
    if (pool === undefined) {
      const year = Number(semester(labelDate).slice(0, 4));
      const types = PROGRAM_TYPES.filter(
        ([type]) =>
          (type !== "LP" || year >= 2016) && (type !== "FT" || year >= 2015),
      );
      pool = Array.from({ length: 8 }, () => {
        const type = this.rng.weighted(types, ([, w]) => w)[0];
        const number =
          type === "Q"
            ? this.rng.int(1, 450)
            : type === "SV" || type === "DD"
              ? this.rng.int(1, 120)
              : this.rng.int(1, 40);
        return {
          id: `G${site}-${semester(labelDate)}-${type}-${number}`,
          type,
          number,
          nextObservation: this.rng.int(1, 60),
        };
      });
      this.programs.set(key, pool);
    }
    return this.rng.pick(pool);
  }

  private calibrationProgram(site: Site, labelDate: string): Program {
    const key = `${site}${labelDate}`;
    let program = this.calibration.get(key);
    if (program === undefined) {
      program = {
        id: `G${site}-CAL${labelDate.replaceAll("-", "")}`,
        type: "CAL",
        number: 0,
        nextObservation: 1,
      };
      this.calibration.set(key, program);
    }
    return program;
  }

  private sequenceContext(
    template: SequenceTemplate,
    site: Site,
    labelDate: string,
    start: number,
  ) {
    const rng = this.rng;
    const program = template.daytime
      ? this.calibrationProgram(site, labelDate)
      : this.program(site, labelDate);
    const observationId = `${program.id}-${program.nextObservation++}`;
    const instrument = INSTRUMENTS[template.family].names[site];
    if (instrument === undefined) {
      throw new Error(`${template.family} has no instrument at Gemini ${site}`);
    }
    let variant: Overrides =
      template.variants.length > 0 ? rng.pick(template.variants) : {};
    let detector: GmosDetector | undefined;
    if (template.family === "GMOS") {
      detector = GMOS_DETECTORS.find(
        (d) => d.site === site && d.from <= labelDate && labelDate < d.until,
      );
      if (detector === undefined) {
        throw new Error(`no GMOS detector at Gemini ${site} on ${labelDate}`);
      }
      const { imaging, spectroscopy } = gmosVariants(site);
      const mask = GMOS_MASKS[template.name];
      if (template.name === "imaging" || template.name === "twilight-flats") {
        variant = { ...variant, ...rng.pick(imaging) };
      } else if (mask !== undefined) {
        const masks =
          template.name === "ifu"
            ? GMOS_IFUS
            : template.name === "mos"
              ? [this.mosMask(program, site, labelDate, rng.int(1, 9))]
              : GMOS_SLITS;
        variant = {
          ...variant,
          ...rng.pick(spectroscopy),
          ...mask,
          ...rng.pick(masks),
        };
      }
    } else if (template.family === "F2" && template.name === "mos") {
      const mos = this.mosMask(program, site, labelDate, rng.int(1, 9));
      variant = {
        ...variant,
        MASKNAME: mos.MASKNAME ?? null,
        MASKID: String(mos.MASKID),
      };
    }
    const percentiles = (daytime: boolean) =>
      daytime
        ? { iq: "Any", cc: "Any", wv: "Any", bg: "Any" }
        : {
            iq: rng.pick(PERCENTILES.iq),
            cc: rng.pick(PERCENTILES.cc),
            wv: rng.pick(PERCENTILES.wv),
            bg: rng.pick(PERCENTILES.bg),
          };
    return {
      template,
      site,
      labelDate,
      program,
      observationId,
      instrument,
      variant,
      detector,
      binning:
        template.binning === undefined
          ? ([1, 1] as const)
          : rng.pick(template.binning),
      target: this.target(site, start, labelDate),
      raw: percentiles(template.daytime),
      requested: percentiles(template.daytime),
      sciband: template.daytime ? -9999 : rng.int(1, 3),
      pa: rng.pick([0, 90, 180, 270, round(rng.range(0, 360), 3)]),
      observer: rng.pick(STAFF),
      ssa: rng.pick(STAFF),
      usable: rng.chance(0.93),
    };
  }

  private mosMask(
    program: Program,
    site: Site,
    labelDate: string,
    n: number,
  ): Overrides {
    const type =
      program.type.length === 1 ? program.type : program.type.slice(0, 2);
    return {
      MASKNAME: `G${site}${semester(labelDate)}${type}${pad(program.number, 3)}-${pad(n, 2)}`,
      MASKID: 11000000 + (program.number % 10000) * 100 + n,
    };
  }

  /** A science target above 35° at `start`, named as catalogues name them. */
  private target(site: Site, start: number, labelDate: string): Target {
    const { latitude, longitude } = SITES[site];
    const rng = this.rng;
    let ha = 0;
    let dec = 0;
    for (let tries = 0; tries < 100; tries++) {
      ha = rng.range(-45, 45);
      dec = rng.range(
        Math.max(-85, latitude - 55),
        Math.min(85, latitude + 55),
      );
      if (altAz(ha, dec, latitude)[0] > 35) {
        break;
      }
    }
    const ra = (((lst(start, longitude) - ha) % 360) + 360) % 360;
    const j = `J${sexagesimal(ra, true)}${sexagesimal(dec, false)}`;
    const year = labelDate.slice(0, 4);
    const letters = () =>
      String.fromCharCode(
        97 + rng.int(0, 25),
        97 + rng.int(0, 25),
        97 + rng.int(0, 25),
      );
    const name = rng.pick([
      () => `NGC ${rng.int(1, 7840)}`,
      () => `IC ${rng.int(1, 5386)}`,
      () => `HD ${rng.int(1000, 359083)}`,
      () => `2MASS ${j.replaceAll(".", "")}`,
      () => `SDSS ${j}`,
      () => `WISE ${j}`,
      () => `SN${year}${letters()}`,
      () => `ESO ${rng.int(100, 600)}-G${pad(rng.int(1, 99), 3)}`,
      () => `Abell ${rng.int(1, 4076)}`,
    ])();
    const guideOffset = () => rng.range(-0.08, 0.08);
    return {
      name,
      ra: round(ra, 8),
      dec: round(dec, 8),
      guideName: `${rng.int(100, 400)}-${rng.int(10000, 199999)}`,
      guideRa: round(ra + guideOffset(), 8),
      guideDec: round(dec + guideOffset(), 8),
    };
  }

  private frame(
    c: ReturnType<Planner["sequenceContext"]>,
    frame: FrameTemplate,
    f: {
      name: string;
      labelDate: string;
      start: number;
      exptime: number;
      dataLabel: string;
      dither: number;
      weather: ReturnType<Planner["weather"]>;
    },
  ): PlannedFile {
    const rng = this.rng;
    const family = c.template.family;
    const instrument = INSTRUMENTS[family];
    const site = SITES[c.site];
    const optics = FAMILY_OPTICS[family];
    const ut = f.start;
    const obsStart = ut + instrument.startDelay * 1000;
    const exptime = frame.obstype === "BIAS" ? 0 : f.exptime;
    const exptimeActual =
      family === "GMOS"
        ? exptime === 0
          ? 0.000518083572387695
          : round(exptime - rng.range(0, 0.003), 10)
        : exptime;
    const obsEnd = obsStart + exptimeActual * 1000;
    const dateObs = isoDate(obsStart);
    const local = secondsOfDay(ut) - site.utOffset * 3600;
    const sidereal = lst(ut, site.longitude);
    const standard = frame.kind === "standard";
    const target: Target = standard
      ? {
          ...c.target,
          name: `HIP ${rng.int(1000, 118000)}`,
          dec: round(
            Math.max(-89, Math.min(89, c.target.dec + rng.range(-5, 5))),
            8,
          ),
        }
      : c.target;

    // Pointing.
    let ra: number;
    let dec: number;
    let el: number;
    let az: number;
    let airmassStart: number;
    let airmassEnd: number;
    let frameName = "FK5";
    let tracking = { ra: 0, dec: 0 };
    const phuOverrides: Record<string, CardValue | null> = {};
    if (frame.pointing === "target") {
      ra = target.ra;
      dec = target.dec;
      [el, az] = altAz(sidereal - ra, dec, site.latitude);
      airmassStart = airmass(el);
      airmassEnd = airmass(
        altAz(lst(obsEnd, site.longitude) - ra, dec, site.latitude)[0],
      );
    } else if (frame.pointing === "twilight") {
      ra = round((sidereal + rng.range(-3, 3) + 360) % 360, 8);
      dec = round(site.latitude + rng.range(-4, 4), 8);
      [el, az] = altAz(sidereal - ra, dec, site.latitude);
      airmassStart = airmass(el);
      airmassEnd = airmassStart;
    } else {
      // The dome at zenith (GMOS/N20220915S0113), or nothing at all when offline.
      az = round(rng.range(-180, 180), 10);
      el = 89.9999819444444;
      ra = round((sidereal + rng.range(-0.05, 0.05) + 360) % 360, 2);
      dec = 89.97;
      airmassStart = 1;
      airmassEnd = 1;
      frameName = "AZEL_TOPO";
      tracking = { ra: 1.00256633779, dec: 0.031031951889 };
      phuOverrides.EQUINOX = real(0);
    }
    const airmassMean = (airmassStart + airmassEnd) / 2;
    const offsets = (() => {
      if (frame.pointing !== "target" || frame.kind !== "science") {
        return [0, 0];
      }
      if (c.template.name === "imaging") {
        return f.dither === 0
          ? [0, 0]
          : [round(rng.range(-10, 10), 3), round(rng.range(-10, 10), 3)];
      }
      return [0, f.dither % 2 === 0 ? -3 : 3];
    })();
    const [p, q] = offsets as [number, number];
    const paRad = rad(c.pa);
    const raOff = round(-(p * Math.cos(paRad) + q * Math.sin(paRad)), 10);
    const decOff = round(-p * Math.sin(paRad) + q * Math.cos(paRad), 10);

    const science = frame.obsclass === "science" || frame.obsclass === "acq";
    const release = (() => {
      if (!science || c.program.type === "SV" || c.program.type === "CAL") {
        return dateObs;
      }
      const months =
        c.program.type === "DD" ? 6 : dateObs < "2016-08-01" ? 18 : 12;
      return addMonths(dateObs, months);
    })();
    const { weather } = f;
    const temperature = round(weather.temperature + rng.range(-0.5, 0.5), 1);
    const dewpoint = round(temperature - 10 - weather.humidity / 5, 1);
    const wind = round(weather.wind + rng.range(-1, 1), 1);
    const guiding = frame.pointing === "target";
    const slots: Record<string, CardValue> = {
      instrument: c.instrument,
      object: frame.object ?? target.name,
      obstype: frame.obstype,
      obsclass: frame.obsclass,
      programId: c.program.id,
      observationId: c.observationId,
      dataLabel: f.dataLabel,
      observer: c.observer,
      observatory: site.name,
      ssa: c.ssa,
      ra: real(ra),
      dec: real(dec),
      elevation: real(round(el, 10)),
      azimuth: real(round(az, 10)),
      crpa: real(
        round(wrap180(c.pa - optics.iaa + 180 + rng.range(-0.5, 0.5)), 10),
      ),
      ha: hourAngle(sidereal - ra),
      lt: clock(local, 1),
      trkframe: "FK5",
      dectrack: real(tracking.dec),
      trkepoch: real(round(mjd(ut), 6)),
      ratrack: real(tracking.ra),
      frame: frameName,
      waveleng: real(family === "GMOS" ? 6300 : 16500),
      rawiq: c.raw.iq === "Any" && c.template.daytime ? "UNKNOWN" : c.raw.iq,
      rawcc: c.raw.cc === "Any" && c.template.daytime ? "UNKNOWN" : c.raw.cc,
      rawwv: c.raw.wv === "Any" && c.template.daytime ? "UNKNOWN" : c.raw.wv,
      rawbg: c.raw.bg === "Any" && c.template.daytime ? "UNKNOWN" : c.raw.bg,
      rawpireq: c.template.daytime ? "UNKNOWN" : c.usable ? "YES" : "NO",
      rawgemqa: c.template.daytime ? "UNKNOWN" : c.usable ? "USABLE" : "BAD",
      ut: clock(secondsOfDay(ut), 1),
      dateObs,
      m2baffle: optics.m2[0],
      m2cenbaf: optics.m2[1],
      st: clock(sidereal * 240, 1),
      xoffset: real(p),
      yoffset: real(q),
      poffset: real(p),
      qoffset: real(q),
      raoffset: real(raOff),
      decoffset: real(decOff),
      pa: real(c.pa),
      iaa: real(optics.iaa),
      sfrt2: real(optics.sfrt2),
      sftilt: real(optics.sftilt),
      sflinear: real(optics.sflinear),
      pwfs2: guiding && instrument.guider === "PWFS2" ? "guiding" : "parked",
      oiwfs: guiding && instrument.guider === "OIWFS" ? "guiding" : "parked",
      sciband: c.sciband,
      reqiq: c.requested.iq,
      reqcc: c.requested.cc,
      reqbg: c.requested.bg,
      reqwv: c.requested.wv,
      humidity: real(round(weather.humidity, 0)),
      tambient: real(temperature),
      tambien2: real(round(temperature * 1.8 + 32, 2)),
      pressure: real(site.pressureMmHg),
      pressur2: real(Math.round((site.pressureMmHg * 133.322) / 100) * 100),
      dewpoint: real(dewpoint),
      dewpoin2: real(round(dewpoint * 1.8 + 32, 2)),
      windspee: real(wind),
      windspe2: real(round(wind * 2.23694, 4)),
      winddire: real(weather.direction),
      airmass: real(round(airmassMean, 3)),
      amstart: real(round(airmassStart, 3)),
      amend: real(round(airmassEnd, 3)),
      release,
      timeObs: clock(secondsOfDay(obsStart), 1),
      utend: clock(secondsOfDay(obsEnd), 1),
      exptime: real(exptimeActual),
      exposure: real(exptime),
      obsepoch: real(round(decimalYear(obsStart), 11)),
      mjdObs: real(round(mjd(obsStart), 10)),
      guideRa: real(target.guideRa),
      guideDec: real(target.guideDec),
      guideName: target.guideName,
      guideFocus: real(round(rng.range(-0.3, 0.1), 3)),
      coadds: 1,
      fileBase: f.name,
      f2filter: "Open",
    };
    const blocks: Record<string, readonly CardDef[]> = {
      gcal: frame.gcal === undefined ? [] : GCAL_BLOCK,
      guide: guiding
        ? instrument.guider === "OIWFS"
          ? GUIDE_OIWFS
          : GUIDE_PWFS2
        : [],
      detectorTemperatures: c.detector?.temperatures ?? [],
    };
    if (frame.gcal !== undefined) {
      slots.gcallamp = frame.gcal.lamp;
      slots.gcalfilt = frame.gcal.filter;
      slots.gcaldiff = frame.gcal.diffuser;
      slots.gcalshut = frame.gcal.shutter;
    }
    Object.assign(phuOverrides, c.variant, frame.set ?? {});
    if (frame.pointing === "offline") {
      Object.assign(phuOverrides, TELESCOPE_OFFLINE);
    }
    if (family === "GMOS" && frame.kind === "acquisition") {
      const r = gmosVariants(c.site).imaging[1] ?? {};
      Object.assign(phuOverrides, {
        FILTER2: r.FILTER2 ?? null,
        FILTID2: r.FILTID2 ?? null,
        WAVELENG: r.WAVELENG ?? null,
      });
    }

    const scale = INSTRUMENTS[family].pixelScale;
    const wcs = (
      crpix1: number,
      crpix2: number,
      pixelScale: number,
      flipX: boolean,
    ) => {
      const s = pixelScale / 3600;
      const cos = round(Math.cos(paRad), 12);
      const sin = round(Math.sin(paRad), 12);
      const sign = flipX ? -1 : 1;
      return {
        crpix1: real(round(crpix1, 10)),
        crpix2: real(round(crpix2, 10)),
        crval1: real(
          round(
            frame.pointing === "zenith"
              ? sidereal
              : (ra + raOff / 3600 + 360) % 360,
            10,
          ),
        ),
        crval2: real(
          round(
            frame.pointing === "zenith" ? site.latitude : dec + decOff / 3600,
            10,
          ),
        ),
        cd11: real(Number((sign * s * cos).toPrecision(15))),
        cd12: real(Number((-s * sin).toPrecision(15))),
        cd21: real(Number((sign * s * sin).toPrecision(15))),
        cd22: real(Number((s * cos).toPrecision(15))),
      };
    };
    const extensionOverrides: Record<string, CardValue | null> =
      frame.pointing === "offline"
        ? Object.fromEntries(
            [
              "CTYPE1",
              "CRPIX1",
              "CRVAL1",
              "CTYPE2",
              "CRPIX2",
              "CRVAL2",
              "CD1_1",
              "CD1_2",
              "CD2_1",
              "CD2_2",
              "RADECSYS",
              "EQUINOX",
              "MJD-OBS",
            ].map((k) => [k, null]),
          )
        : {};
    const level = this.level(frame, exptime);
    const extensions: Extension[] = [];
    const phuDefs = instrument.phu;

    if (family === "GMOS") {
      const detector = c.detector!;
      const [xbin, ybin] = c.binning;
      const readout =
        frame.kind === "acquisition" ? "fast" : (c.template.readout ?? "slow");
      const fullRows =
        c.template.roi === "central-spectrum" ? 1024 : detector.rows;
      const fullY0 =
        c.template.roi === "central-spectrum"
          ? detector.id.startsWith("Hamamatsu")
            ? 1624
            : 1792
          : 0;
      const ampWidth = 2048 / detector.ampsPerCcd;
      const columns = ampWidth / xbin + 32;
      const rows = this.rows(
        fullRows / ybin,
        columns * 2 * detector.amplifiers.length,
      );
      const y0 =
        rows === fullRows / ybin
          ? fullY0
          : Math.floor((detector.rows - rows * ybin) / 2);
      Object.assign(slots, {
        inport: detector.inport,
        gmoscc: detector.gmoscc,
        conid: detector.conid,
        detector: detector.detector,
        dewar: detector.dewar,
        dewarTemperature: real(round(-100 - rng.range(0, 20), 12)),
        detsize: `[1:6144,1:${detector.sizeRows}]`,
        namps: detector.ampsPerCcd,
        shutter: "OPEN",
        ampinteg: detector.integration[readout],
        timesys: detector.timesys,
        darktime: real(round(exptimeActual + rng.range(15, 25), 10)),
        grstep: real(round(rng.range(5000, 7000), 3)),
        dtay: real(round(rng.range(80, 95), 2)),
        dtaz: real(rng.int(1400, 2700)),
        gmosdc: detector.gmosdc,
        dettype: detector.dettype,
        detid: detector.detid,
        roiX: 1,
        roiXSize: 6144 / xbin,
        roiY: y0 + 1,
        roiYSize: rows,
      });
      for (const [i, amp] of detector.amplifiers.entries()) {
        const x0 = amp.ccd * 2048 + amp.x;
        const width = ampWidth / xbin;
        const section = (x1: number, x2: number) =>
          `[${x1}:${x2},${y0 + 1}:${y0 + rows * ybin}]`;
        const gain = readout === "fast" ? amp.gain * 1.18 : amp.gain;
        const ext = wcs(
          (3072 - x0) / xbin + (amp.overscanFirst ? 32 : 0),
          (detector.rows / 2 - y0) / ybin,
          detector.pixelScale * xbin,
          false,
        );
        extensions.push({
          bitpix: 16,
          axes: [columns, rows],
          level: level.value + 700 + i * 37,
          noise: level.noise,
          cards: render(
            instrument.extension,
            {
              ...ext,
              bitpix: 16,
              naxis: 2,
              extver: i + 1,
              mjdObs: real(round(mjd(obsStart), 10)),
              ccdname: detector.ccdNames[amp.ccd] ?? "",
              ampname: amp.name,
              gain: real(Number(Math.fround(gain).toPrecision(15))),
              rdnoise: real(Number(Math.fround(amp.readNoise).toPrecision(15))),
              ccdsize: `[1:2048,1:${detector.sizeRows}]`,
              ccdsum: `${xbin} ${ybin}`,
              ccdsec: `[${amp.x + 1}:${amp.x + ampWidth},${y0 + 1}:${y0 + rows * ybin}]`,
              detsec: section(x0 + 1, x0 + ampWidth),
              datasec: amp.overscanFirst
                ? `[33:${width + 32},1:${rows}]`
                : `[1:${width},1:${rows}]`,
              biassec: amp.overscanFirst
                ? `[1:32,1:${rows}]`
                : `[${width + 1}:${width + 32},1:${rows}]`,
              frameid: String(i + 1),
            },
            extensionOverrides,
            { naxes: axesCards([columns, rows]) },
          ),
        });
      }
    } else {
      const columns = instrument.columns;
      const rowBytes = columns * 4;
      const rows = this.rows(instrument.rows, rowBytes);
      const low = Math.floor((instrument.rows - rows) / 2);
      const axes = instrument.thirdAxis ? [columns, rows, 1] : [columns, rows];
      const coadds =
        family === "NIRI" || family === "GNIRS"
          ? frame.kind === "science" && f.exptime < 20
            ? rng.pick([1, 5, 10])
            : 1
          : 1;
      slots.coadds = coadds;
      const ext = wcs(
        columns / 2 + rng.range(-100, 100) - low,
        rows / 2 + rng.range(-50, 50),
        scale,
        family !== "F2",
      );
      if (family === "NIRI") {
        const deep = rng.chance(0.3);
        Object.assign(slots, ext, {
          vdduc: real(-3.49),
          vdet: real(deep ? -2.62 : -2.89),
        });
      } else if (family === "GNIRS") {
        Object.assign(slots, ext, {
          detbias: real(
            round(rng.chance(0.2) ? -0.6 : -0.3 + rng.range(-0.01, 0.01), 6),
          ),
        });
      } else {
        const filters = [phuOverrides.FILTER1, phuOverrides.FILTER2].filter(
          (v): v is string => typeof v === "string" && v !== "Open",
        );
        slots.f2filter = filters[0] ?? "Open";
      }
      extensions.push({
        bitpix: instrument.bitpix,
        axes,
        level: level.value + (family === "F2" ? 8000 : 0),
        noise: level.noise,
        cards: render(
          instrument.extension,
          {
            ...ext,
            bitpix: instrument.bitpix,
            naxis: axes.length,
            extver: 1,
            mjdObs: real(round(mjd(obsStart), 10)),
            lowrow: low,
            hirow: low + rows - 1,
            hicol: columns - 1,
            frmname: `${f.name}:0`,
          },
          extensionOverrides,
          { naxes: axesCards(axes) },
        ),
      });
    }

    const phu = render(phuDefs, slots, phuOverrides, blocks);
    const index = this.index++;
    const corrupt = this.corruptAt.get(index);
    const compressed =
      corrupt === "truncated-bz2"
        ? true
        : corrupt === undefined
          ? rng.chance(this.o.compressedFraction)
          : false;
    const fileName = `${f.name}.fits${compressed ? ".bz2" : ""}`;
    return {
      index,
      name: fileName,
      relativePath:
        this.o.layout === "by-night"
          ? join(f.labelDate.replaceAll("-", ""), fileName)
          : fileName,
      instrument: c.instrument,
      kind: frame.kind === "science" ? c.template.name : frame.kind,
      compressed,
      corrupt,
      phu,
      extensions,
      dataSeed:
        (Math.imul(this.o.seed, 0x9e3779b1) ^
          Math.imul(index + 1, 0x85ebca6b)) >>>
        0,
    };
  }

  /** Rows of data for one extension at the chosen scale. */
  private rows(fullRows: number, bytesPerRowAllExtensions: number): number {
    if (this.o.dataScale === "full") {
      return fullRows;
    }
    const budget = DATA_BUDGET[this.o.dataScale];
    return Math.max(
      1,
      Math.min(fullRows, Math.floor(budget / bytesPerRowAllExtensions)),
    );
  }

  /** The data level (ADU above bias) and the noise range (a power of two) of a frame. */
  private level(
    frame: FrameTemplate,
    exptime: number,
  ): { value: number; noise: number } {
    switch (frame.kind) {
      case "bias":
        return { value: 0, noise: 8 };
      case "dark":
        return { value: Math.min(200, exptime / 10), noise: 16 };
      case "flat":
        return {
          value:
            frame.gcal?.shutter === "CLOSED" && frame.gcal.lamp === "IRhigh"
              ? 300
              : 15000,
          noise: 256,
        };
      case "twilight":
        return { value: 12000, noise: 256 };
      case "arc":
        return { value: 150, noise: 32 };
      default:
        return { value: Math.min(20000, 40 + exptime * 3), noise: 64 };
    }
  }
}

function axesCards(axes: readonly number[]): CardDef[] {
  return axes.map((n, i): CardDef => [
    `NAXIS${i + 1}`,
    n,
    `length of data axis ${i + 1}`,
  ]);
}

// --- rendering ---------------------------------------------------------------------------

/** FITS real: Python-like shortest repr, an upper-case exponent, always a point or an exponent. */
function realText(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e15) {
    return `${x}.`;
  }
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    const [mantissa = "", exponent = "0"] = x.toExponential().split("e");
    const e = Number(exponent);
    return `${mantissa.includes(".") ? mantissa : `${mantissa}.`}E${e < 0 ? "-" : "+"}${pad(Math.abs(e))}`;
  }
  return String(x);
}

function card(keyword: string, value: CardValue, comment: string): string {
  if (keyword === "COMMENT" || keyword === "HISTORY") {
    return cardImage(`${keyword.padEnd(8)}${String(value)}`.slice(0, 80));
  }
  if (typeof value === "object") {
    const base = `${keyword.padEnd(8)}= ${realText(value.real).padStart(20)}`;
    return cardImage(
      comment === "" ? base : `${base} / ${comment}`.slice(0, 80),
    );
  }
  return formatCard(keyword, value, comment === "" ? undefined : comment);
}

/** Card images of a list of definitions: slots filled, overrides applied, blocks spliced in. */
function render(
  defs: readonly CardDef[],
  slots: Readonly<Record<string, CardValue>>,
  overrides: Readonly<Record<string, CardValue | null>>,
  blocks: Readonly<Record<string, readonly CardDef[]>>,
): string[] {
  const out: string[] = [];
  const used = new Set<string>();
  const walk = (list: readonly CardDef[]) => {
    for (const [keyword, value, comment] of list) {
      if (keyword.startsWith("@")) {
        const block = blocks[keyword.slice(1)];
        if (block === undefined) {
          throw new Error(`no block ${keyword}`);
        }
        walk(block);
        continue;
      }
      let v: CardValue | null | undefined = value;
      if (Object.hasOwn(overrides, keyword)) {
        v = overrides[keyword];
        used.add(keyword);
      } else if (typeof value === "string" && value.startsWith("$")) {
        v = slots[value.slice(1)];
        if (v === undefined) {
          throw new Error(`no value for ${keyword} (${value})`);
        }
      }
      if (v !== null && v !== undefined) {
        out.push(card(keyword, v, comment));
      }
    }
  };
  walk(defs);
  const unused = Object.keys(overrides).filter((k) => !used.has(k));
  if (unused.length > 0 && out.length > 0 && !out[0]!.startsWith("XTENSION")) {
    throw new Error(
      `template keywords not in the header: ${unused.join(", ")}`,
    );
  }
  return out;
}

// --- writing -----------------------------------------------------------------------------

const CHUNK_PIXELS = 256 * 1024;

/** Pixels of one data unit, big-endian, in chunks: an LCG's noise around a level. */
function* pixels(ext: Extension, seed: number): Generator<Buffer> {
  const total = ext.axes.reduce((a, b) => a * b, 1);
  const mask = ext.noise - 1;
  const shift = 32 - Math.log2(ext.noise);
  let state = seed | 0;
  for (let done = 0; done < total;) {
    const n = Math.min(CHUNK_PIXELS, total - done);
    if (ext.bitpix === 16) {
      const values = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        state = (Math.imul(state, 1664525) + 1013904223) | 0;
        // Physical value minus BZERO 32768, as the 16 bits of a signed integer.
        values[i] =
          ((ext.level + ((state >>> shift) & mask)) ^ 0x8000) & 0xffff;
      }
      yield Buffer.from(values.buffer).swap16();
    } else if (ext.bitpix === 32) {
      const values = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        state = (Math.imul(state, 1664525) + 1013904223) | 0;
        values[i] = ext.level + ((state >>> shift) & mask);
      }
      yield Buffer.from(values.buffer).swap32();
    } else {
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        state = (Math.imul(state, 1664525) + 1013904223) | 0;
        values[i] = ext.level + ((state >>> shift) & mask);
      }
      yield Buffer.from(values.buffer).swap32();
    }
    done += n;
  }
}

interface Sink {
  write(chunk: Buffer): Promise<void>;
  close(): Promise<void>;
  abort(): void;
}

const FLUSH_BYTES = 4 * 1024 * 1024;

/** A file written through a buffer of a few MB: one write for a small file. */
async function fileSink(path: string): Promise<Sink> {
  const handle = await open(path, "w");
  let pending: Buffer[] = [];
  let size = 0;
  const flush = async () => {
    if (size > 0) {
      const data =
        pending.length === 1 ? pending[0]! : Buffer.concat(pending, size);
      pending = [];
      size = 0;
      await handle.write(data, 0, data.length);
    }
  };
  return {
    async write(chunk) {
      pending.push(chunk);
      size += chunk.length;
      if (size >= FLUSH_BYTES) {
        await flush();
      }
    },
    async close() {
      await flush();
      await handle.close();
    },
    abort() {
      void handle.close().catch(() => undefined);
    },
  };
}

/** The system's bzip2 compressor (lbzip2 when installed, one thread per file) writing to `path`. */
function compressorSink(path: string): Sink {
  const program = decompressor().program;
  const child = spawn(program, [...compressorArgs(program), "-c"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const out = createWriteStream(path);
  child.stdout.pipe(out);
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (t: string) => {
    stderr += t;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  let pending: Buffer[] = [];
  let size = 0;
  const flush = async () => {
    if (size === 0) {
      return;
    }
    const data =
      pending.length === 1 ? pending[0]! : Buffer.concat(pending, size);
    pending = [];
    size = 0;
    if (!child.stdin.write(data)) {
      // One listener per wait, removed again: a large file waits thousands of times.
      await new Promise<void>((resolve, reject) => {
        child.once("error", reject);
        child.stdin.once("drain", () => {
          child.off("error", reject);
          resolve();
        });
      });
    }
  };
  return {
    async write(chunk) {
      pending.push(chunk);
      size += chunk.length;
      if (size >= 1024 * 1024) {
        await flush();
      }
    },
    async close() {
      await flush();
      child.stdin.end();
      const [code] = await Promise.all([exited, finished(out)]);
      if (code !== 0) {
        throw new Error(`${program} failed (exit ${code}): ${stderr.trim()}`);
      }
    },
    abort() {
      child.kill("SIGKILL");
      out.destroy();
    },
  };
}

/** Files above this many bytes stream through their own compressor; smaller ones are compressed in batches. */
const STREAM_COMPRESSION_BYTES = 8 * 1024 * 1024;
const BATCH_FILES = 48;

function compressorArgs(program: string): string[] {
  return program === "lbzip2" ? ["-n", "1", "-9", "-z"] : ["-9", "-z"];
}

/**
 * Small files are compressed many per process (`lbzip2 -z a b c …` writes
 * a.bz2, b.bz2, c.bz2): one process per file would cost more than the work.
 */
class CompressionBatches {
  private queue: {
    path: string;
    resolve: (compressed: string) => void;
    reject: (error: unknown) => void;
  }[] = [];

  /** Compresses `path` into `path.bz2` (removing `path`); resolves with the new name. */
  add(path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ path, resolve, reject });
      if (this.queue.length >= BATCH_FILES) {
        this.run();
      }
    });
  }

  flush(): void {
    if (this.queue.length > 0) {
      this.run();
    }
  }

  private run(): void {
    const batch = this.queue.splice(0);
    const program = decompressor().program;
    const child = spawn(
      program,
      [...compressorArgs(program), "-f", ...batch.map((b) => b.path)],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (t: string) => {
      stderr += t;
    });
    const fail = (error: unknown) => batch.forEach((b) => b.reject(error));
    child.once("error", fail);
    child.once("close", (code) => {
      if (code === 0) {
        batch.forEach((b) => b.resolve(`${b.path}.bz2`));
      } else {
        fail(new Error(`${program} failed (exit ${code}): ${stderr.trim()}`));
      }
    });
  }
}

type Written = { done: SyntheticFile } | { later: Promise<SyntheticFile> };

async function writePlanned(
  dir: string,
  plan: PlannedFile,
  batches: CompressionBatches,
): Promise<Written> {
  const path = join(dir, plan.relativePath);
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${plan.name}.${process.pid}.tmp`);
  const described = async (): Promise<SyntheticFile> => ({
    path,
    name: plan.name,
    instrument: plan.instrument,
    kind: plan.kind,
    ...(plan.corrupt === undefined ? {} : { corrupt: plan.corrupt }),
    bytes: (await stat(path)).size,
  });
  const finish = async (written: string): Promise<SyntheticFile> => {
    try {
      if (plan.corrupt === "truncated-bz2") {
        const { size } = await stat(written);
        await truncate(written, Math.max(16, Math.floor(size / 2)));
      }
      await rename(written, path);
    } catch (error) {
      await rm(written, { force: true });
      throw error;
    }
    return described();
  };
  try {
    if (plan.corrupt === "garbage") {
      await writeGarbage(tmp, plan.dataSeed);
      return { done: await finish(tmp) };
    }
    if (plan.corrupt === "missing-end") {
      await writeMissingEnd(tmp, plan.phu);
      return { done: await finish(tmp) };
    }
    const dataBytes = plan.extensions.reduce(
      (sum, e) =>
        sum + (e.axes.reduce((a, b) => a * b, 1) * Math.abs(e.bitpix)) / 8,
      0,
    );
    const streamed = plan.compressed && dataBytes > STREAM_COMPRESSION_BYTES;
    const sink = streamed ? compressorSink(tmp) : await fileSink(tmp);
    let offset = 0;
    let lastDataStart = 0;
    let lastDataBytes = 0;
    try {
      const primary = headerBytes(plan.phu);
      await sink.write(primary);
      offset += primary.length;
      for (const [i, ext] of plan.extensions.entries()) {
        const header = headerBytes(ext.cards);
        await sink.write(header);
        offset += header.length;
        lastDataStart = offset;
        let bytes = 0;
        for (const chunk of pixels(ext, plan.dataSeed + i * 7919)) {
          await sink.write(chunk);
          bytes += chunk.length;
        }
        const padding = dataPadding(bytes);
        if (padding > 0) {
          await sink.write(Buffer.alloc(padding));
        }
        lastDataBytes = bytes;
        offset += bytes + padding;
      }
      await sink.close();
    } catch (error) {
      sink.abort();
      throw error;
    }
    if (plan.corrupt === "truncated-data") {
      await truncate(
        tmp,
        lastDataStart + Math.max(1, Math.floor(lastDataBytes / 2)),
      );
    }
    if (plan.compressed && !streamed) {
      return {
        later: batches.add(tmp).then(finish, async (error: unknown) => {
          await rm(tmp, { force: true });
          await rm(`${tmp}.bz2`, { force: true });
          throw error;
        }),
      };
    }
    return { done: await finish(tmp) };
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** Bytes that are not FITS (and not text): a transfer that went wrong. */
async function writeGarbage(path: string, seed: number): Promise<void> {
  const size = 8192 + (seed % 16384);
  const bytes = Buffer.alloc(size);
  let state = seed | 0;
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) | 0;
    bytes[i] = state >>> 24;
  }
  bytes[0] = 0x1f; // never "SIMPLE"
  const sink = await fileSink(path);
  await sink.write(bytes);
  await sink.close();
}

/** A primary header cut off before its END card, as an interrupted copy leaves it. */
async function writeMissingEnd(
  path: string,
  phu: readonly string[],
): Promise<void> {
  const text = phu.join("");
  const size = Math.floor(text.length / 2880) * 2880 || 2880;
  const sink = await fileSink(path);
  await sink.write(
    Buffer.from(text.slice(0, size).padEnd(size, " "), "latin1"),
  );
  await sink.close();
}

/**
 * Writes a synthetic archive of `options.files` files under `dir` (created if
 * needed) and describes them, in file-name order per night and site.
 */
export async function writeSyntheticArchive(
  dir: string,
  options: SyntheticOptions,
): Promise<SyntheticFile[]> {
  const resolved = resolve(options);
  await mkdir(dir, { recursive: true });
  const plans = new Planner(resolved).files();
  const results: SyntheticFile[] = [];
  const concurrency = Math.max(2, Math.min(8, availableParallelism() * 2));
  const batches = new CompressionBatches();
  const later: Promise<void>[] = [];
  let failure: unknown;
  const worker = async () => {
    for (;;) {
      if (failure !== undefined) {
        return;
      }
      const next = plans.next();
      if (next.done === true) {
        return;
      }
      const { index } = next.value;
      try {
        const written = await writePlanned(dir, next.value, batches);
        if ("done" in written) {
          results[index] = written.done;
        } else {
          later.push(
            written.later.then(
              (file) => {
                results[index] = file;
              },
              (error: unknown) => {
                failure ??= error;
              },
            ),
          );
        }
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  batches.flush();
  await Promise.all(later);
  if (failure !== undefined) {
    throw failure;
  }
  return results;
}
