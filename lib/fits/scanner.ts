/**
 * A push parser for the structure of a FITS file: feed it the bytes in chunks
 * of any size (from disk, S3 or a decompressor) and it yields every HDU's
 * header. Data units are counted, never kept, so memory stays at one 2880-byte
 * block whatever the file size; a caller that needs checksums sees every byte
 * exactly once in the same pass.
 *
 * Sizes follow FITS 4.0 §4.4.1: Nbits = |BITPIX| × GCOUNT × (PCOUNT + NAXIS1 ×
 * … × NAXISn), with NAXIS1 = 0 skipped for random groups, padded to 2880.
 */
import { Card } from "./card.js";
import { FitsFormatError } from "./errors.js";
import { Header } from "./header.js";

export const BLOCK = 2880;
const NON_PRINTABLE = /[^\x20-\x7e]/;
const LOWER = /[a-z]/;
const CARD = 80;
const VALID_BITPIX = new Set([8, 16, 32, 64, -32, -64]);

export interface Hdu {
  index: number;
  /** "primary", or the XTENSION value (IMAGE, BINTABLE, TABLE, …). */
  type: string;
  header: Header;
  headerOffset: number;
  dataOffset: number;
  /** Bytes of data, without the padding to a 2880-byte multiple. */
  dataSize: number;
  bitpix: number;
  axes: number[];
  pcount: number;
  gcount: number;
  randomGroups: boolean;
}

export interface FitsStructure {
  hdus: Hdu[];
  /** Total bytes seen. */
  size: number;
  /** Oddities that do not stop reading: unpadded last data unit, trailing bytes, odd characters. */
  warnings: string[];
}

type State =
  | { kind: "header"; header: Header; start: number; blocks: number }
  | { kind: "data"; remaining: number; padding: number }
  | { kind: "trailing" };

export class FitsScanner {
  private readonly file: string | undefined;
  private readonly hdus: Hdu[] = [];
  private readonly warnings: string[] = [];
  private readonly partial = Buffer.alloc(BLOCK);
  private filled = 0;
  private offset = 0; // bytes consumed so far
  private state: State = {
    kind: "header",
    header: new Header(),
    start: 0,
    blocks: 0,
  };

  constructor(options: { file?: string } = {}) {
    this.file = options.file;
  }

  /** Consumes the next chunk; throws FitsFormatError as soon as the bytes show a problem. */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      const state = this.state;
      if (state.kind === "trailing") {
        this.offset += chunk.length - at;
        return;
      }
      if (state.kind === "data") {
        const skip = Math.min(
          state.remaining + state.padding,
          chunk.length - at,
        );
        this.consumeData(state, skip);
        at += skip;
        continue;
      }
      // Header: whole blocks straight from the chunk when aligned, else via the partial buffer.
      if (this.filled === 0 && chunk.length - at >= BLOCK) {
        const block = chunk.subarray(at, at + BLOCK);
        at += BLOCK;
        this.offset += BLOCK;
        this.headerBlock(state, block);
        continue;
      }
      const take = Math.min(BLOCK - this.filled, chunk.length - at);
      this.partial.set(chunk.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      this.offset += take;
      if (this.filled === BLOCK) {
        this.filled = 0;
        this.headerBlock(state, this.partial);
      } else if (
        this.hdus.length === 0 &&
        state.blocks === 0 &&
        this.filled >= 10
      ) {
        this.checkSimple(this.partial.subarray(0, this.filled));
      }
    }
  }

  /** Bytes of data unit (and padding) the caller may skip without reading, e.g. by seeking. */
  skippable(): number {
    return this.state.kind === "data"
      ? this.state.remaining + this.state.padding
      : 0;
  }

  /** Records that `n` bytes (at most `skippable()`) were skipped. */
  skip(n: number): void {
    const state = this.state;
    if (state.kind !== "data" || n > state.remaining + state.padding) {
      throw new Error("FitsScanner.skip: not inside a data unit");
    }
    this.consumeData(state, n);
  }

  /** Counts `n` bytes of data unit, then padding; at the end of both, a new header begins. */
  private consumeData(
    state: Extract<State, { kind: "data" }>,
    n: number,
  ): void {
    const fromData = Math.min(n, state.remaining);
    state.remaining -= fromData;
    state.padding -= n - fromData;
    this.offset += n;
    if (state.remaining === 0 && state.padding === 0) {
      this.state = {
        kind: "header",
        header: new Header(),
        start: this.offset,
        blocks: 0,
      };
    }
  }

  /** Declares the end of the bytes and returns the structure; throws if the file ended too soon. */
  end(): FitsStructure {
    const state = this.state;
    if (this.offset === 0) {
      throw this.error("not-fits", "the file is empty", 0);
    }
    if (state.kind === "header") {
      const startedNew = state.blocks > 0 || this.filled > 0;
      if (this.hdus.length === 0) {
        this.checkSimple(this.partial.subarray(0, this.filled));
        throw this.error(
          "missing-end",
          "the file ends inside the primary header (no END card)",
          this.offset,
        );
      }
      if (startedNew) {
        if (
          state.blocks === 0 &&
          this.filled > 0 &&
          !this.startsWith(this.partial, "XTENSION")
        ) {
          this.warnings.push(
            `${this.filled} byte(s) after the last HDU ignored`,
          );
        } else {
          throw this.error(
            "missing-end",
            `the file ends inside the header of HDU ${this.hdus.length} (no END card)`,
            this.offset,
          );
        }
      }
    } else if (state.kind === "data") {
      if (state.remaining > 0) {
        const hdu = this.hdus[this.hdus.length - 1];
        throw this.error(
          "truncated-data",
          `the file ends ${state.remaining} byte(s) before the end of the data unit of HDU ${hdu?.index} (${hdu?.dataSize} bytes from byte ${hdu?.dataOffset})`,
          this.offset,
        );
      }
      this.warnings.push(
        `the last data unit is not padded to a multiple of ${BLOCK} bytes (${state.padding} byte(s) short)`,
      );
    }
    return { hdus: this.hdus, size: this.offset, warnings: this.warnings };
  }

  private headerBlock(
    state: Extract<State, { kind: "header" }>,
    block: Uint8Array,
  ): void {
    const blockStart = this.offset - BLOCK;
    if (state.blocks === 0) {
      if (this.hdus.length === 0) {
        this.checkSimple(block);
      } else if (!this.startsWith(block, "XTENSION")) {
        // Not another extension: zero padding or junk after the last HDU.
        const blank = block.every((b) => b === 0 || b === 32);
        if (!blank) {
          this.warnings.push(
            `bytes after the last HDU (from byte ${blockStart}) do not start an extension and were ignored`,
          );
        }
        this.state = { kind: "trailing" };
        return;
      }
    }
    state.blocks++;
    const header = state.header;
    // One string per block; cards are slices of it (cheap in V8), each
    // screened for bad characters by one native regex test.
    const text = Buffer.from(block.buffer, block.byteOffset, BLOCK).toString(
      "latin1",
    );
    for (let c = 0; c < BLOCK; c += CARD) {
      const image = text.slice(c, c + CARD);
      if (NON_PRINTABLE.test(image)) {
        this.checkCharacters(block, c, blockStart + c);
      }
      let keyword = text.slice(c, c + 8).trimEnd();
      if (LOWER.test(keyword)) {
        keyword = keyword.toUpperCase();
      }
      if (keyword === "END" && text.slice(c + 3, c + CARD).trim() === "") {
        this.finishHeader(state, blockStart + c);
        return;
      }
      // The standard continues a string ending in "&"; real writers omit the
      // "&" (IGRINS-2) or continue HISTORY cards (IRAF). Like astropy, join
      // every CONTINUE to the card before it.
      if (keyword === "CONTINUE") {
        const previous = header.cards[header.cards.length - 1];
        if (previous !== undefined) {
          previous.appendContinuation(image);
          continue;
        }
      }
      if (keyword === "HIERARCH") {
        const eq = image.indexOf("=");
        const name = (eq < 0 ? image.slice(9) : image.slice(9, eq))
          .trim()
          .toUpperCase();
        header.add(new Card(name, [image], true));
        continue;
      }
      header.add(new Card(keyword, [image]));
    }
  }

  private finishHeader(
    state: Extract<State, { kind: "header" }>,
    endOffset: number,
  ): void {
    const index = this.hdus.length;
    const dataOffset = state.start + state.blocks * BLOCK;
    const hdu = layout(
      state.header,
      index,
      state.start,
      dataOffset,
      (message) => this.error("bad-keyword", message, endOffset, index),
    );
    this.hdus.push(hdu);
    const padding = (BLOCK - (hdu.dataSize % BLOCK)) % BLOCK;
    if (hdu.dataSize + padding === 0) {
      this.state = {
        kind: "header",
        header: new Header(),
        start: dataOffset,
        blocks: 0,
      };
    } else {
      this.state = { kind: "data", remaining: hdu.dataSize, padding };
    }
  }

  private checkSimple(bytes: Uint8Array): void {
    if (bytes.length >= 9 && !this.startsWith(bytes, "SIMPLE  =")) {
      throw this.error(
        "not-fits",
        "not a FITS file: it does not start with SIMPLE =",
        0,
      );
    }
    if (
      bytes.length < 9 &&
      bytes.length > 0 &&
      !"SIMPLE  =".startsWith(latin1(bytes, 0, bytes.length))
    ) {
      throw this.error(
        "not-fits",
        "not a FITS file: it does not start with SIMPLE =",
        0,
      );
    }
  }

  /** Line breaks mean the cards are not 80-character records; other bytes outside ASCII are tolerated. */
  private checkCharacters(
    block: Uint8Array,
    from: number,
    cardOffset: number,
  ): void {
    for (let i = from; i < from + CARD; i++) {
      const b = block[i] ?? 0;
      if (b >= 32 && b <= 126) {
        continue;
      }
      if (b === 10 || b === 13) {
        throw this.error(
          "bad-card",
          `card ${from / CARD + 1} of its block holds a line break at column ${i - from + 1}: header cards must be 80-character records without line breaks`,
          cardOffset,
        );
      }
      this.warnings.push(
        `byte 0x${b.toString(16).padStart(2, "0")} outside printable ASCII at byte ${cardOffset + i - from}`,
      );
      return;
    }
  }

  private startsWith(bytes: Uint8Array, text: string): boolean {
    for (let i = 0; i < text.length; i++) {
      if (bytes[i] !== text.charCodeAt(i)) {
        return false;
      }
    }
    return true;
  }

  private error(
    problem: FitsFormatError["problem"],
    message: string,
    offset: number,
    hdu?: number,
  ): FitsFormatError {
    return new FitsFormatError(problem, message, {
      file: this.file,
      ...(hdu === undefined ? {} : { hdu }),
      offset,
    });
  }
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(
    bytes.buffer,
    bytes.byteOffset + start,
    end - start,
  ).toString("latin1");
}

/** Reads the mandatory keywords and computes the data unit's size. */
function layout(
  header: Header,
  index: number,
  headerOffset: number,
  dataOffset: number,
  fail: (message: string) => FitsFormatError,
): Hdu {
  const type =
    index === 0
      ? "primary"
      : (header.string("XTENSION") ?? "").trim().toUpperCase();
  const bitpix = header.get("BITPIX");
  if (typeof bitpix !== "number" || !VALID_BITPIX.has(bitpix)) {
    throw fail(
      `BITPIX must be one of 8, 16, 32, 64, -32, -64; got ${describe(bitpix)}`,
    );
  }
  const naxis = header.get("NAXIS");
  if (
    typeof naxis !== "number" ||
    !Number.isInteger(naxis) ||
    naxis < 0 ||
    naxis > 999
  ) {
    throw fail(
      `NAXIS must be an integer from 0 to 999; got ${describe(naxis)}`,
    );
  }
  const axes: number[] = [];
  for (let n = 1; n <= naxis; n++) {
    const value = header.get(`NAXIS${n}`);
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      throw fail(
        `NAXIS${n} must be a non-negative integer (NAXIS = ${naxis}); got ${describe(value)}`,
      );
    }
    axes.push(value);
  }
  const randomGroups =
    index === 0 && naxis > 0 && axes[0] === 0 && header.get("GROUPS") === true;
  const pcount =
    index === 0 && !randomGroups ? 0 : integerOr(header, "PCOUNT", 0, fail);
  const gcount =
    index === 0 && !randomGroups ? 1 : integerOr(header, "GCOUNT", 1, fail);
  const counted = randomGroups ? axes.slice(1) : axes;
  const elements =
    naxis === 0 ? 0 : counted.reduce((product, n) => product * n, 1);
  const dataSize =
    naxis === 0 && pcount === 0
      ? 0
      : (Math.abs(bitpix) / 8) * gcount * (pcount + elements);
  if (!Number.isSafeInteger(dataSize)) {
    throw fail(
      `the data unit size (${dataSize} bytes) is not a safe integer; the NAXISn values are implausible`,
    );
  }
  return {
    index,
    type,
    header,
    headerOffset,
    dataOffset,
    dataSize,
    bitpix,
    axes,
    pcount,
    gcount,
    randomGroups,
  };
}

function integerOr(
  header: Header,
  keyword: string,
  fallback: number,
  fail: (m: string) => FitsFormatError,
): number {
  const value = header.get(keyword);
  if (value === undefined) {
    return fallback;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw fail(
      `${keyword} must be a non-negative integer; got ${describe(value)}`,
    );
  }
  return value;
}

function describe(value: unknown): string {
  return value === undefined
    ? "nothing (keyword missing)"
    : JSON.stringify(value);
}
