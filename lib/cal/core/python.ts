/**
 * The few pieces of Python semantics the reference's calibration rules lean
 * on, reproduced exactly: NUMERIC columns arrive in Python as `Decimal`, which
 * compares with a float literal by exact value (so `Decimal('2.7') < 2.7` is
 * true, because the double nearest 2.7 lies just above it); `header.types`
 * is read back with `ast.literal_eval`; and psycopg2 sends a float parameter
 * as the literal `repr(x)`, which PostgreSQL reads as an exact `numeric`.
 */

/** Something the reference would have raised on (the queue entry then fails). */
export class ReferenceRaised extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A rational number num/den with den > 0, for exact comparisons. */
interface Exact {
  num: bigint;
  den: bigint;
}

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

function decimalParts(text: string): RegExpExecArray {
  const m = DECIMAL_TEXT.exec(text.trim());
  if (m === null || `${m[2] ?? ""}${m[3] ?? ""}` === "") {
    throw new ReferenceRaised(`not a decimal number: ${JSON.stringify(text)}`);
  }
  return m;
}

function exactOfDecimal(m: RegExpExecArray): Exact {
  const digits = `${m[2] ?? ""}${m[3] ?? ""}`;
  const exponent = Number(m[4] ?? "0") - (m[3] ?? "").length;
  let num = BigInt(digits);
  let den = 1n;
  if (exponent >= 0) {
    num *= 10n ** BigInt(exponent);
  } else {
    den = 10n ** BigInt(-exponent);
  }
  return { num: m[1] === "-" ? -num : num, den };
}

function exactOfDouble(x: number): Exact {
  if (!Number.isFinite(x)) {
    throw new ReferenceRaised(`not a finite number: ${x}`);
  }
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  // value = mantissa * 2^power, the subnormals without the implicit bit.
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const power = (biased === 0 ? 1 : biased) - 1075;
  const signed = negative ? -mantissa : mantissa;
  return power >= 0
    ? { num: signed << BigInt(power), den: 1n }
    : { num: signed, den: 1n << BigInt(-power) };
}

function compareExact(a: Exact, b: Exact): -1 | 0 | 1 {
  const left = a.num * b.den;
  const right = b.num * a.den;
  return left < right ? -1 : left > right ? 1 : 0;
}

/**
 * Exact values of doubles the rules compare with (a handful of literals),
 * so the bit-level conversion runs once per literal.
 */
const DOUBLES = new Map<number, Exact>();

function exactOfLiteral(x: number): Exact {
  let exact = DOUBLES.get(x);
  if (exact === undefined) {
    exact = exactOfDouble(x);
    if (DOUBLES.size < 4096 && !Object.is(x, -0)) {
      DOUBLES.set(x, exact);
    }
  }
  return exact;
}

/** A NUMERIC value as PostgreSQL printed it: Python's `Decimal`. */
export class Decimal {
  private parts: RegExpExecArray | undefined;
  private value: Exact | undefined;

  constructor(readonly text: string) {
    // Checked here, so a bad text raises where it always did.
    this.parts = decimalParts(text);
  }

  /** The rational value, worked out on first use: most Decimals are never compared. */
  private get exact(): Exact {
    if (this.value === undefined) {
      this.value = exactOfDecimal(this.parts!);
      this.parts = undefined;
    }
    return this.value;
  }

  /** `float(d)`: the nearest double, as Number() also rounds. */
  toFloat(): number {
    return Number(this.text);
  }

  /** Exact comparison with a Python float (or int), as `Decimal < 2.7` does. */
  compare(x: number): -1 | 0 | 1 {
    return compareExact(this.exact, exactOfLiteral(x));
  }

  lt(x: number): boolean {
    return this.compare(x) < 0;
  }

  gt(x: number): boolean {
    return this.compare(x) > 0;
  }

  ge(x: number): boolean {
    return this.compare(x) >= 0;
  }

  /** Python truthiness: only zero is false. */
  get truthy(): boolean {
    return this.exact.num !== 0n;
  }
}

/**
 * The Decimal of a NUMERIC column's text, one object per distinct text: a
 * Decimal never changes (its exact value is worked out once), and an
 * archive's frames share few distinct values.
 */
const DECIMALS = new Map<string, Decimal>();

export function decimalOf(text: string): Decimal {
  let d = DECIMALS.get(text);
  if (d === undefined) {
    d = new Decimal(text);
    if (DECIMALS.size >= 100_000) {
      DECIMALS.clear();
    }
    DECIMALS.set(text, d);
  }
  return d;
}

/**
 * A float parameter as psycopg2 sends it: the literal `repr(x)`, which the
 * server reads as an exact numeric. JavaScript's shortest round-trip digits
 * are the same as Python's repr; only the exponent spelling can differ, and
 * both spellings are the same numeric.
 */
export function floatLiteral(x: number): Decimal {
  return new Decimal(String(x));
}

/**
 * What `ast.literal_eval(header.types)` gives, reduced to the one operation
 * the rules use: `'TAG' in types`. A set, list or tuple of strings tests
 * membership; a bare string tests for a substring, as Python's `in` would.
 */
export interface PyTags {
  has(tag: string): boolean;
}

class Tokens {
  private at = 0;
  constructor(private readonly text: string) {}

  private skip(): void {
    while (this.at < this.text.length && /\s/.test(this.text[this.at]!)) {
      this.at++;
    }
  }

  peek(): string | undefined {
    this.skip();
    return this.text[this.at];
  }

  take(expected?: string): string {
    this.skip();
    const c = this.text[this.at];
    if (c === undefined || (expected !== undefined && c !== expected)) {
      throw this.error();
    }
    this.at++;
    return c;
  }

  word(w: string): boolean {
    this.skip();
    if (this.text.startsWith(w, this.at)) {
      this.at += w.length;
      return true;
    }
    return false;
  }

  string(): string {
    const quote = this.take();
    if (quote !== "'" && quote !== '"') {
      throw this.error();
    }
    let out = "";
    for (;;) {
      const c = this.text[this.at++];
      if (c === undefined) {
        throw this.error();
      }
      if (c === quote) {
        return out;
      }
      if (c === "\\") {
        const e = this.text[this.at++];
        const escapes: Record<string, string> = {
          n: "\n",
          t: "\t",
          r: "\r",
          "\\": "\\",
          "'": "'",
          '"': '"',
        };
        if (e === undefined) {
          throw this.error();
        }
        out += escapes[e] ?? `\\${e}`;
      } else {
        out += c;
      }
    }
  }

  end(): void {
    this.skip();
    if (this.at !== this.text.length) {
      throw this.error();
    }
  }

  error(): ReferenceRaised {
    return new ReferenceRaised(
      `ast.literal_eval cannot read header.types ${JSON.stringify(this.text)}`,
    );
  }
}

export function parseTypes(text: string | null): PyTags {
  if (text === null) {
    // literal_eval(None) raises ValueError("malformed node or string").
    throw new ReferenceRaised("header.types is NULL: ast.literal_eval raises");
  }
  const tokens = new Tokens(text);
  let result: PyTags;
  const first = tokens.peek();
  if (tokens.word("set()")) {
    result = { has: () => false };
  } else if (first === "'" || first === '"') {
    const s = tokens.string();
    result = { has: (tag) => s.includes(tag) };
  } else if (first === "{" || first === "[" || first === "(") {
    tokens.take();
    const close = first === "{" ? "}" : first === "[" ? "]" : ")";
    const items = new Set<string>();
    while (tokens.peek() !== close) {
      items.add(tokens.string());
      if (tokens.peek() === ":") {
        // A dict: `in` looks at its keys.
        tokens.take(":");
        tokens.string();
      }
      if (tokens.peek() !== close) {
        tokens.take(",");
      }
    }
    tokens.take(close);
    result = { has: (tag) => items.has(tag) };
  } else {
    throw tokens.error();
  }
  tokens.end();
  return result;
}

/**
 * A TIMESTAMP WITHOUT TIME ZONE as text, 'YYYY-MM-DDTHH:MM:SS.ffffff': the
 * naive datetime the reference compares and subtracts.
 */
export class Timestamp {
  constructor(readonly iso: string) {
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?$/.test(iso)) {
      throw new ReferenceRaised(`not a timestamp: ${JSON.stringify(iso)}`);
    }
  }

  get year(): number {
    return Number(this.iso.slice(0, 4));
  }
}
