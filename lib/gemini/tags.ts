/**
 * Gemini data tags (the archive's `header.types`), computed as the reference's
 * metadata library does: every rule of the file's instrument class yields at
 * most one TagSet; the TagSets are ordered (blockers and removers first) and
 * applied. The rules are tables per class, so another instrument is one more
 * table. Rules and their sources: docs/MAPPING-NOTES.md §2 and §4.
 */
import type { FitsValue } from "../fits/card.js";
import { Header } from "../fits/header.js";
import type { InstrumentClass } from "./gemini-file.js";
import { specphotStandard } from "./specphot-standards.js";

export interface TagSet {
  add: string[];
  remove?: string[];
  blockedBy?: string[];
  blocks?: string[];
  ifPresent?: string[];
}

export interface TagResult {
  instrumentClass: InstrumentClass | undefined;
  tags: Set<string>;
  /** Set when a rule failed in a way that breaks the whole computation (tags are then empty). */
  error: string | undefined;
}

/** A strict read of a keyword that is absent: the rule yields nothing. */
class MissingKeyword extends Error {}

/**
 * What the GMOS STANDARD rule needs beyond the PHU: ut_datetime's last resort
 * is the date in the extensions' FRMNAME or in the file name. Without it that
 * fallback finds nothing.
 */
export interface TagFileContext {
  sci: Header[];
  fileName: string;
}

/** What a rule sees: the primary header with Python-like reads. */
export class PhuView {
  constructor(
    readonly phu: Header,
    readonly file: TagFileContext = { sci: [new Header()], fileName: "" },
  ) {}

  has(keyword: string): boolean {
    return this.phu.has(keyword);
  }

  get(keyword: string): FitsValue | undefined {
    return this.phu.get(keyword);
  }

  /** A string value, '' when absent or not a string (the rules' usual default). */
  str(keyword: string): string {
    const value = this.phu.get(keyword);
    return typeof value === "string" ? value : "";
  }

  /** Throws MissingKeyword when absent, so the rule yields nothing. */
  strict(keyword: string): FitsValue {
    const value = this.phu.get(keyword);
    if (value === undefined) {
      throw new MissingKeyword(keyword);
    }
    return value;
  }

  /** Python `==` against a string or number (True == 1, 1 == 1.0). */
  is(keyword: string, expected: string | number): boolean {
    return pyEquals(this.phu.get(keyword), expected);
  }

  /** Any keyword name in the header contains `part`. */
  anyKeywordContains(part: string): boolean {
    return this.phu.cards.some((c) => c.keyword.includes(part));
  }
}

function pyEquals(
  value: FitsValue | undefined,
  expected: string | number,
): boolean {
  if (typeof expected === "number") {
    if (typeof value === "boolean") {
      return (value ? 1 : 0) === expected;
    }
    return typeof value === "number"
      ? value === expected
      : typeof value === "bigint"
        ? Number(value) === expected
        : false;
  }
  return value === expected;
}

type Rule = (h: PhuView) => TagSet | undefined;

const set = (add: string[], extra: Omit<TagSet, "add"> = {}): TagSet => ({
  add,
  ...extra,
});

/** The airmass descriptor (§5.5): ≥ 1 or undefined; a non-blank string is an error. */
export function airmassDescriptor(h: PhuView): number | undefined {
  const value = h.get("AIRMASS") ?? -1;
  if (typeof value === "string") {
    if (value.trim() === "") {
      return undefined;
    }
    throw new Error(
      `AIRMASS is the string ${JSON.stringify(value)}, not a number`,
    );
  }
  const n =
    typeof value === "number"
      ? value
      : typeof value === "bigint"
        ? Number(value)
        : typeof value === "boolean"
          ? Number(value)
          : NaN;
  return n >= 1 ? n : undefined;
}

const PROCESSED_CAL_KEYWORDS = [
  "PROCARC",
  "GBIAS",
  "PROCBIAS",
  "PROCDARK",
  "GIFLAG",
  "PROCFLAT",
  "GIFRINGE",
  "PROCFRNG",
  "PROCPNHL",
  "PROCSTND",
  "PROCILLM",
];

const GEMINI_RULES: Rule[] = [
  () => set(["GEMINI"]),
  (h) =>
    ["acq", "acqCal"].includes(String(h.strict("OBSCLASS")))
      ? set(["ACQUISITION"])
      : undefined,
  (h) => {
    if (!h.is("FRAME", "AZEL_TOPO")) {
      return undefined;
    }
    return airmassDescriptor(h) === 1
      ? set(["AZEL_TARGET", "AT_ZENITH"])
      : set(["AZEL_TARGET"]);
  },
  (h) =>
    h.has("GIFRINGE") || h.has("PROCFRNG") ? set(["FRINGE", "CAL"]) : undefined,
  (h) => {
    const lamp = h.str("GCALLAMP");
    return lamp === "IRhigh" || lamp.startsWith("QH")
      ? set(["GCALFLAT", "FLAT", "CAL"])
      : undefined;
  },
  (h) => {
    if (String(h.strict("INSTRUME")).startsWith("GMOS")) {
      return undefined;
    }
    const lamp = h.str("GCALLAMP");
    const shutter = h.str("GCALSHUT");
    if (lamp === "IRhigh" || lamp === "IRlow" || lamp.startsWith("QH")) {
      if (shutter === "OPEN") {
        return set(["GCAL_IR_ON", "LAMPON"], { blockedBy: ["PROCESSED"] });
      }
      if (shutter === "CLOSED") {
        return set(["GCAL_IR_OFF", "LAMPOFF"], {
          blockedBy: ["PROCESSED", "PINHOLE"],
        });
      }
    } else if (lamp === "No Value" && shutter === "CLOSED") {
      return set(["GCAL_IR_OFF", "LAMPOFF"], { blockedBy: ["PROCESSED"] });
    }
    return undefined;
  },
  (h) => {
    const site = h.str("OBSERVAT").toUpperCase();
    return site === "GEMINI-NORTH"
      ? set(["NORTH"])
      : site === "GEMINI-SOUTH"
        ? set(["SOUTH"])
        : undefined;
  },
  (h) => {
    const mode = h.str("OBSMODE").toUpperCase();
    return mode === ""
      ? undefined
      : set(mode === "IMAGE" ? [mode] : [mode, "SPECT"]);
  },
  (h) => (h.is("DATATYPE", "marked-nodandchop") ? set(["NODCHOP"]) : undefined),
  (h) => {
    const frames = [h.get("TRKFRAME"), h.get("FRAME")];
    if (!frames.includes("FK5") && !frames.includes("APPT")) {
      return undefined;
    }
    const rates = [h.get("DECTRACK"), h.get("RATRACK")].map(pyFloat);
    return rates.every((r) => r === 0)
      ? set(["SIDEREAL"])
      : set(["NON_SIDEREAL"]);
  },
  (h) =>
    h.has("BPMASK") || h.has("PROCBPM")
      ? set(["BPM", "CAL", "PROCESSED"], {
          blocks: [
            "IMAGE",
            "SPECT",
            "NON_SIDEREAL",
            "AZEL_TARGET",
            "GCALFLAT",
            "LAMPON",
            "GCAL_IR_ON",
            "GCAL_IR_OFF",
            "DARK",
          ],
        })
      : undefined,
  (h) =>
    h.str("OBSTYPE").toUpperCase() === "MASK"
      ? set(["MASK"], { blocks: ["IMAGE", "SPECT"] })
      : undefined,
  (h) => (h.has("GEM-TLM") ? undefined : set(["RAW"])),
  (h) => set([h.anyKeywordContains("PREPAR") ? "PREPARED" : "UNPREPARED"]),
  (h) => {
    const add = [
      ...(h.anyKeywordContains("TRIMOVER") ? ["OVERSCAN_TRIMMED"] : []),
      ...(h.anyKeywordContains("SUBOVER") ? ["OVERSCAN_SUBTRACTED"] : []),
    ];
    return add.length > 0 ? set(add) : undefined;
  },
  (h) =>
    PROCESSED_CAL_KEYWORDS.some((k) => h.has(k))
      ? set(["PROCESSED"])
      : undefined,
  (h) =>
    pyEquals(h.strict("OBSTYPE"), "OBJECT") &&
    (h.has("GMOSAIC") || h.has("PROCSCI"))
      ? set(["PROCESSED_SCIENCE", "PROCESSED"], { blocks: ["RAW"] })
      : undefined,
  (h) => (h.has("EXTRACT") ? set(["EXTRACTED"]) : undefined),
];

/** Python float(): numbers and numeric strings; anything else (or absent) is NaN. */
function pyFloat(value: FitsValue | undefined): number {
  if (typeof value === "number") {
    return value;
  }
  if (typeof value === "boolean") {
    return value ? 1 : 0;
  }
  if (typeof value === "bigint") {
    return Number(value);
  }
  if (
    typeof value === "string" &&
    value.trim() !== "" &&
    Number.isFinite(Number(value.trim()))
  ) {
    return Number(value.trim());
  }
  return NaN;
}

/** OBSTYPE DARK: a calibration that is neither an image nor a spectrum (GMOS, NIRI, GNIRS). */
const darkRule: Rule = (h) =>
  h.is("OBSTYPE", "DARK")
    ? set(["DARK", "CAL"], { blocks: ["IMAGE", "SPECT"] })
    : undefined;
const arcRule: Rule = (h) =>
  h.is("OBSTYPE", "ARC") ? set(["ARC", "CAL"]) : undefined;

const GMOS_IFU_MASKS: Record<string, string> = {
  "IFU-B": "ONESLIT_BLUE",
  "IFU-B-NS": "ONESLIT_BLUE",
  "IFU-R": "ONESLIT_RED",
  "IFU-R-NS": "ONESLIT_RED",
  "IFU-2": "TWOSLIT",
  "IFU-NS-2": "TWOSLIT",
};
const GMOS_IFU_SLIT: Record<string, string> = {
  b: "ONESLIT_BLUE",
  r: "ONESLIT_RED",
  s: "TWOSLIT",
};

function gmosIsSpect(h: PhuView): boolean {
  return !(
    h.is("MASKTYP", 0) ||
    h.is("MASKNAME", "None") ||
    h.is("GRATING", "MIRROR")
  );
}

const GMOS_RULES: Rule[] = [
  () => set(["GMOS"]),
  darkRule,
  arcRule,
  (h) =>
    h.is("OBSTYPE", "BIAS")
      ? set(["BIAS", "CAL"], { blocks: ["IMAGE", "SPECT"] })
      : undefined,
  (h) => {
    const hartmann =
      h.is("GRATING", "MIRROR") &&
      (h.str("FILTER1").includes("Hartmann") ||
        h.str("FILTER2").includes("Hartmann"));
    return h.is("OBSTYPE", "FLAT") && !hartmann
      ? set(["GCALFLAT", "FLAT", "CAL"])
      : undefined;
  },
  (h) => {
    if (h.str("OBJECT").toUpperCase() !== "TWILIGHT") {
      return undefined;
    }
    return gmosIsSpect(h)
      ? set(["TWILIGHT", "CAL", "SLITILLUM"])
      : set(["TWILIGHT", "CAL", "FLAT"]);
  },
  (h) =>
    h.str("OBJECT").toUpperCase() === "DOMEFLAT"
      ? set(["DOMEFLAT", "CAL", "FLAT"])
      : undefined,
  (h) =>
    gmosIsSpect(h) && specphotStandard(h.phu, h.file) !== undefined
      ? set(["STANDARD", "CAL"])
      : undefined,
  (h) =>
    h.has("SENSFUNC")
      ? set(["PROCESSED", "STANDARD", "CAL"], { blocks: ["RAW"] })
      : undefined,
  (h) => {
    if (h.is("OBSTYPE", "BIAS") || !h.is("MASKTYP", -1)) {
      return undefined;
    }
    const mask = h.str("MASKNAME");
    const named = GMOS_IFU_MASKS[mask];
    const slit = /g[ns]ifu_slit([rbs])_mdf/.exec(mask)?.[1];
    const kind =
      named ?? (slit === undefined ? undefined : GMOS_IFU_SLIT[slit]);
    return kind === undefined ? undefined : set(["IFU", kind]);
  },
  (h) =>
    h.is("MASKTYP", 0)
      ? undefined
      : set(["THRUSLIT"], { ifPresent: ["IMAGE"] }),
  (h) => set([h.is("GRATING", "MIRROR") ? "IMAGE" : "SPECT"]),
  (h) => {
    const bpm = h.is("OBSTYPE", "BPM") || h.has("BPMASK");
    return !h.is("OBSTYPE", "BIAS") &&
      !bpm &&
      h.is("MASKTYP", 1) &&
      h.str("MASKNAME").endsWith("arcsec")
      ? set(["LS"])
      : undefined;
  },
  (h) => {
    const mask = h.str("MASKNAME");
    const mos =
      !h.is("OBSTYPE", "BIAS") &&
      h.is("MASKTYP", 1) &&
      !mask.startsWith("IFU") &&
      !mask.startsWith("focus") &&
      !mask.endsWith("arcsec");
    return mos ? set(["MOS"]) : undefined;
  },
  (h) => (h.has("NODPIX") ? set(["NODANDSHUFFLE"]) : undefined),
];

const NIRI_RULES: Rule[] = [
  () => set(["NIRI"]),
  darkRule,
  (h) => (h.is("OBSTYPE", "ARC") ? set(["ARC"]) : undefined),
  (h) => (h.is("OBSTYPE", "FLAT") ? set(["CAL", "FLAT"]) : undefined),
  (h) => {
    if (h.str("FILTER3").includes("grism")) {
      return set(["SPECT", "LS"]);
    }
    return h.str("OBJECT").toUpperCase() === "TWILIGHT"
      ? set(["IMAGE", "CAL", "FLAT", "TWILIGHT"])
      : set(["IMAGE"]);
  },
];

function f2Slit(h: PhuView): boolean {
  return (
    h.is("DECKER", "Long_slit") ||
    h.is("DCKERPOS", "Long_slit") ||
    /^.?pix-slit/.test(h.str("MOSPOS"))
  );
}

function f2Spect(h: PhuView): boolean {
  return [h.str("GRISM"), h.str("GRISMPOS")].some((g) =>
    /^(JH.?|HK.?|R3K.?)/.test(g),
  );
}

const F2_RULES: Rule[] = [
  () => set(["F2"]),
  (h) =>
    h.str("FILTER1").startsWith("DK") ||
    h.str("FILTER2").startsWith("DK") ||
    h.is("OBSTYPE", "DARK")
      ? set(["DARK", "CAL"], { blocks: ["IMAGE", "SPECT"] })
      : undefined,
  (h) =>
    h.is("GRISM", "Open") || h.is("GRISMPOS", "Open")
      ? set(["IMAGE"])
      : undefined,
  (h) => (f2Spect(h) && f2Slit(h) ? set(["LS", "SPECT"]) : undefined),
  (h) =>
    f2Spect(h) &&
    (h.is("DECKER", "mos") ||
      h.is("DCKERPOS", "mos") ||
      /^mos.?/.test(h.str("MOSPOS")))
      ? set(["MOS", "SPECT"])
      : undefined,
  // Acquisitions through the slit: inferred from the reference's v4.2.2 output (MAPPING-NOTES §4.4).
  (h) =>
    f2Slit(h) ? set(["LS", "THRUSLIT"], { ifPresent: ["IMAGE"] }) : undefined,
  arcRule,
  (h) => (h.is("OBSTYPE", "FLAT") ? set(["FLAT", "CAL"]) : undefined),
  (h) => {
    if (h.str("OBJECT").toUpperCase() !== "TWILIGHT") {
      return undefined;
    }
    return h.is("GRISM", "Open")
      ? set(["TWILIGHT", "CAL"])
      : set(["TWILIGHT", "CAL"], { blocks: ["FLAT"] });
  },
  (h) => {
    const disperser = h.str("DISPERSR");
    return disperser.startsWith("DISP_WOLLASTON")
      ? set(["POL"])
      : disperser.startsWith("DISP_PRISM")
        ? set(["SPECT", "IFU"])
        : undefined;
  },
];

function gnirsSubmode(h: PhuView): string[] {
  const slit = h.str("SLIT").toLowerCase();
  if (slit.includes("ifu")) {
    return ["IFU"];
  }
  if (
    (slit.includes("arcsec") || slit.includes("pin")) &&
    h.str("GRATING").includes("mm")
  ) {
    const prism = h.str("PRISM");
    if (prism.includes("MIR")) {
      return ["LS"];
    }
    if (prism.includes("XD")) {
      return ["XD"];
    }
  }
  return [];
}

const GNIRS_RULES: Rule[] = [
  () => set(["GNIRS"]),
  darkRule,
  arcRule,
  // The submode for acquisitions is inferred from the reference's v4.2.2 output (MAPPING-NOTES §4.5).
  (h) =>
    h.is("ACQMIR", "In") ? set(["IMAGE", ...gnirsSubmode(h)]) : undefined,
  (h) =>
    h.str("SLIT").includes("Acq")
      ? undefined
      : set(["THRUSLIT"], { ifPresent: ["IMAGE"] }),
  (h) =>
    h.is("ACQMIR", "Out") ? set(["SPECT", ...gnirsSubmode(h)]) : undefined,
  (h) => {
    if (!h.is("OBSTYPE", "FLAT")) {
      return undefined;
    }
    return h.str("SLIT").includes("Pinholes")
      ? set(["PINHOLE", "CAL"], { remove: ["GCALFLAT", "FLAT"] })
      : set(["FLAT", "CAL"]);
  },
];

const CLASS_RULES: Record<InstrumentClass, Rule[]> = {
  GEMINI: GEMINI_RULES,
  GMOS: [...GEMINI_RULES, ...GMOS_RULES],
  NIRI: [...GEMINI_RULES, ...NIRI_RULES],
  F2: [...GEMINI_RULES, ...F2_RULES],
  GNIRS: [...GEMINI_RULES, ...GNIRS_RULES],
};

/** The instrument class of a file (§1.3), or undefined when it is not Gemini data we know. */
export function instrumentClass(phu: Header): InstrumentClass | undefined {
  const instrument = (phu.string("INSTRUME") ?? "").toUpperCase();
  if (instrument === "GMOS-N" || instrument === "GMOS-S") {
    return "GMOS";
  }
  if (instrument === "NIRI" || instrument === "GNIRS") {
    return instrument;
  }
  if (instrument === "F2" || instrument === "FLAM") {
    return "F2";
  }
  const site = [phu.string("OBSERVAT"), phu.string("TELESCOP")].map((s) =>
    (s ?? "").toUpperCase(),
  );
  return site.some((s) => s === "GEMINI-NORTH" || s === "GEMINI-SOUTH")
    ? "GEMINI"
    : undefined;
}

/** Orders TagSets as the reference does (§2.3): fewer if_present, fewer blocked_by, more remove+blocks first. */
export function applyTagSets(sets: TagSet[]): Set<string> {
  const ordered = sets
    .map((s, index) => ({ s, index }))
    .sort((a, b) => {
      const ip = (a.s.ifPresent?.length ?? 0) - (b.s.ifPresent?.length ?? 0);
      const bb = (a.s.blockedBy?.length ?? 0) - (b.s.blockedBy?.length ?? 0);
      const rb =
        (b.s.remove?.length ?? 0) +
        (b.s.blocks?.length ?? 0) -
        ((a.s.remove?.length ?? 0) + (a.s.blocks?.length ?? 0));
      return ip || bb || rb || a.index - b.index;
    })
    .map(({ s }) => s);
  const tags = new Set<string>();
  const removals = new Set<string>();
  const blocked = new Set<string>();
  for (const s of ordered) {
    if (
      s.ifPresent !== undefined &&
      s.ifPresent.length > 0 &&
      !s.ifPresent.every((t) => tags.has(t))
    ) {
      continue;
    }
    if (
      s.blockedBy?.some((t) => tags.has(t)) === true ||
      s.add.some((t) => blocked.has(t))
    ) {
      continue;
    }
    s.remove?.forEach((t) => removals.add(t));
    s.add.filter((t) => !removals.has(t)).forEach((t) => tags.add(t));
    s.blocks?.forEach((t) => blocked.add(t));
  }
  return tags;
}

export function computeTags(phu: Header, file?: TagFileContext): TagResult {
  const cls = instrumentClass(phu);
  if (cls === undefined) {
    return { instrumentClass: undefined, tags: new Set(), error: undefined };
  }
  const view = new PhuView(phu, file);
  const sets: TagSet[] = [];
  try {
    for (const rule of CLASS_RULES[cls]) {
      try {
        const result = rule(view);
        if (
          result !== undefined &&
          (result.add.length > 0 ||
            (result.remove?.length ?? 0) > 0 ||
            (result.blocks?.length ?? 0) > 0)
        ) {
          sets.push(result);
        }
      } catch (error) {
        if (!(error instanceof MissingKeyword)) {
          throw error;
        }
      }
    }
  } catch (error) {
    return {
      instrumentClass: cls,
      tags: new Set(),
      error: `tags could not be computed: ${(error as Error).message}`,
    };
  }
  return { instrumentClass: cls, tags: applyTagSets(sets), error: undefined };
}

/** The archive's `types` text: a Python set repr, with the tags sorted so it is reproducible. */
export function typesText(tags: Set<string>): string {
  return tags.size === 0
    ? "set()"
    : `{${[...tags]
        .sort()
        .map((t) => `'${t}'`)
        .join(", ")}}`;
}
