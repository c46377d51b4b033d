/**
 * One 80-character header card, FITS standard 4.0 §4. The keyword is decoded
 * eagerly; the value and comment only when asked for, since ingest reads a few
 * dozen keywords out of hundreds of cards.
 */

export type FitsValue = string | number | bigint | boolean | Complex | null;

export interface Complex {
  re: number;
  im: number;
}

export type ValueKind =
  | "string"
  | "int"
  | "float"
  | "bool"
  | "complex"
  | "undefined" // a value indicator with a blank value field
  | "commentary" // COMMENT, HISTORY, blank keyword, or no value indicator
  | "invalid"; // a value field that is none of the above

export interface ParsedValue {
  kind: ValueKind;
  value: FitsValue;
  comment: string | undefined;
}

export const COMMENTARY = new Set(["COMMENT", "HISTORY", ""]);

export class Card {
  /** Upper-case keyword; for HIERARCH cards the words after HIERARCH. */
  readonly keyword: string;
  /** The card image(s): one 80-character string, more for CONTINUE'd long strings. */
  readonly images: string[];
  readonly hierarch: boolean;
  private parsed: ParsedValue | undefined;

  constructor(keyword: string, images: string[], hierarch = false) {
    this.keyword = keyword;
    this.images = images;
    this.hierarch = hierarch;
  }

  get kind(): ValueKind {
    return this.parse().kind;
  }

  get value(): FitsValue {
    return this.parse().value;
  }

  get comment(): string | undefined {
    return this.parse().comment;
  }

  /** Used when CONTINUE cards extend this one. */
  appendContinuation(image: string): void {
    this.images.push(image);
    this.parsed = undefined;
  }

  private parse(): ParsedValue {
    this.parsed ??= parseCardValue(this);
    return this.parsed;
  }
}

function parseCardValue(card: Card): ParsedValue {
  const image = card.images[0] ?? "";
  if (card.hierarch) {
    const eq = image.indexOf("=");
    return eq < 0 ? commentary(image.slice(8)) : parseValueField(image, eq + 1);
  }
  if (COMMENTARY.has(card.keyword) || image.slice(8, 10) !== "= ") {
    return commentary(card.images.join("").slice(8));
  }
  const first = parseValueField(image, 10);
  if (first.kind !== "string" || card.images.length === 1) {
    return first;
  }
  // Long string (CONTINUE convention). Like astropy, drop one trailing "&"
  // from every segment, the last included (real files end the last one with
  // "&" too, e.g. GMOS AMPNAME = '…right&').
  const unamp = (text: string) =>
    text.endsWith("&") ? text.slice(0, -1) : text;
  let value = unamp(first.value as string);
  const comments = first.comment === undefined ? [] : [first.comment];
  for (const continuation of card.images.slice(1)) {
    const part = parseValueField(continuation, 10);
    value += typeof part.value === "string" ? unamp(part.value) : "";
    if (part.comment !== undefined && part.comment !== "") {
      comments.push(part.comment);
    }
  }
  return {
    kind: "string",
    value,
    comment: comments.length > 0 ? comments.join(" ") : undefined,
  };
}

function commentary(text: string): ParsedValue {
  return { kind: "commentary", value: text.trimEnd(), comment: undefined };
}

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([EDed][+-]?\d+)?$/;

/** Parses the value field starting at `start` (after "= "): a value, then an optional "/ comment". */
export function parseValueField(image: string, start: number): ParsedValue {
  let i = start;
  while (i < image.length && image.charCodeAt(i) === 32) {
    i++;
  }
  if (i >= image.length) {
    return { kind: "undefined", value: null, comment: undefined };
  }
  if (image[i] === "'") {
    let out = "";
    let j = i + 1;
    for (;;) {
      const q = image.indexOf("'", j);
      if (q < 0) {
        // unterminated: take the rest, as readers tolerate
        return { kind: "invalid", value: image.slice(i), comment: undefined };
      }
      out += image.slice(j, q);
      if (image[q + 1] === "'") {
        out += "'";
        j = q + 2;
        continue;
      }
      j = q + 1;
      break;
    }
    // Trailing spaces in a string are not significant; leading ones are.
    return {
      kind: "string",
      value: out.trimEnd(),
      comment: commentAfter(image, j),
    };
  }
  const slash = image.indexOf("/", i);
  const field = (slash < 0 ? image.slice(i) : image.slice(i, slash)).trim();
  const comment = slash < 0 ? undefined : image.slice(slash + 1).trim();
  if (field === "") {
    return { kind: "undefined", value: null, comment };
  }
  if (field === "T" || field === "F") {
    return { kind: "bool", value: field === "T", comment };
  }
  if (INT.test(field)) {
    const n = Number(field);
    return {
      kind: "int",
      value: Number.isSafeInteger(n) ? n : BigInt(field),
      comment,
    };
  }
  if (FLOAT.test(field)) {
    return {
      kind: "float",
      value: Number(field.replace(/[Dd]/, "E")),
      comment,
    };
  }
  if (field.startsWith("(") && field.endsWith(")")) {
    const parts = field
      .slice(1, -1)
      .split(",")
      .map((p) => p.trim());
    if (
      parts.length === 2 &&
      parts.every((p) => INT.test(p) || FLOAT.test(p))
    ) {
      const [re, im] = parts.map((p) => Number(p.replace(/[Dd]/, "E")));
      return { kind: "complex", value: { re: re ?? 0, im: im ?? 0 }, comment };
    }
  }
  return { kind: "invalid", value: field, comment };
}

function commentAfter(image: string, from: number): string | undefined {
  const slash = image.indexOf("/", from);
  return slash < 0 ? undefined : image.slice(slash + 1).trim();
}
