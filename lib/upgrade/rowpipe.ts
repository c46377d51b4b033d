/**
 * COPY text rows in flight: counted, fingerprinted, and optionally cut down
 * to some of their fields, one chunk at a time.
 *
 * The fingerprint is order-independent (a sum of per-row hashes), because
 * neither a dump nor a table returns rows in a defined order. Each row hashes
 * the chosen fields in COPY text form, so source and target agree exactly
 * when the values do. Two MurmurHash3 lanes, four bytes at a time, keep it
 * fast in JavaScript; it guards against lost, duplicated or altered rows in
 * the load path, not against an adversary.
 */
import { Transform, type TransformCallback } from "node:stream";

const TAB = 9;
const NEWLINE = 10;

export class RowDigest {
  rows = 0;
  bytes = 0;
  private a = 0;
  private b = 0;
  private scratch = Buffer.alloc(4096);

  /** One row, `line[start..end)`; `want` marks the fields to hash (null: all of them). */
  add(line: Buffer, start: number, end: number, want: Uint8Array | null): void {
    if (want === null) {
      this.addBytes(line, start, end);
      return;
    }
    // Gather the kept fields, tab-joined, so the hash is that of a row holding only them.
    if (this.scratch.length < end - start) {
      this.scratch = Buffer.alloc(2 * (end - start));
    }
    let out = 0;
    let field = 0;
    let on = want[0] === 1;
    let started = on;
    for (let i = start; i < end; i++) {
      const byte = line[i]!;
      if (byte === TAB) {
        field++;
        on = want[field] === 1;
        if (on && started) {
          this.scratch[out++] = TAB;
        }
        started ||= on;
      } else if (on) {
        this.scratch[out++] = byte;
      }
    }
    this.addBytes(this.scratch, 0, out);
  }

  /**
   * Two 32-bit MurmurHash3 lanes (different seeds) over the bytes, read four
   * at a time; their sums over all rows, modulo 2^32, are the fingerprint.
   */
  private addBytes(buf: Buffer, start: number, end: number): void {
    let h1 = 0x9747b28c;
    let h2 = 0x2c1b3c6d;
    const words = end - ((end - start) & 3);
    let i = start;
    for (; i < words; i += 4) {
      let k =
        buf[i]! |
        (buf[i + 1]! << 8) |
        (buf[i + 2]! << 16) |
        (buf[i + 3]! << 24);
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h1 ^= k;
      h1 = (h1 << 13) | (h1 >>> 19);
      h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
      h2 ^= k;
      h2 = (h2 << 13) | (h2 >>> 19);
      h2 = (Math.imul(h2, 5) + 0xe6546b64) | 0;
    }
    let k = 0;
    const tail = end - i;
    if (tail === 3) {
      k ^= buf[i + 2]! << 16;
    }
    if (tail >= 2) {
      k ^= buf[i + 1]! << 8;
    }
    if (tail >= 1) {
      k ^= buf[i]!;
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h1 ^= k;
      h2 ^= k;
    }
    const length = end - start;
    this.a = (this.a + mix(h1 ^ length)) >>> 0;
    this.b = (this.b + mix(h2 ^ length)) >>> 0;
    this.rows++;
  }

  /** Count, then the two lanes, as hex: equal strings mean equal multisets of rows (with high probability). */
  get value(): string {
    return `${this.rows}:${this.a.toString(16).padStart(8, "0")}${this.b.toString(16).padStart(8, "0")}`;
  }
}

/** MurmurHash3's finaliser: every input bit affects every output bit. */
function mix(h: number): number {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export interface RowPipeOptions {
  /** Fields to hash (indexes into each input row, ascending); null hashes the whole row. */
  digestFields: number[] | null;
  /** Fields to pass on (ascending); null passes rows unchanged. */
  outputFields: number[] | null;
  /** Emit nothing (a pure checksum pass). */
  discard?: boolean;
}

/** Splits the stream into rows, feeds the digest, and passes on (parts of) each row. */
export class RowPipe extends Transform {
  readonly digest = new RowDigest();
  private partial: Buffer = Buffer.alloc(0);

  private readonly want: Uint8Array | null;

  constructor(private readonly options: RowPipeOptions) {
    super();
    const fields = options.digestFields;
    this.want =
      fields === null ? null : new Uint8Array(Math.max(0, ...fields) + 1);
    for (const f of fields ?? []) {
      this.want![f] = 1;
    }
  }

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: TransformCallback,
  ): void {
    const buffer =
      this.partial.length > 0 ? Buffer.concat([this.partial, chunk]) : chunk;
    const last = buffer.lastIndexOf(NEWLINE);
    if (last < 0) {
      this.partial = buffer;
      done();
      return;
    }
    this.partial = Buffer.from(buffer.subarray(last + 1));
    const { outputFields, discard } = this.options;
    const out: Buffer[] = [];
    let start = 0;
    while (start <= last) {
      const end = buffer.indexOf(NEWLINE, start);
      this.digest.add(buffer, start, end, this.want);
      if (outputFields !== null && discard !== true) {
        out.push(project(buffer, start, end, outputFields));
      }
      start = end + 1;
    }
    this.digest.bytes += last + 1;
    if (discard !== true) {
      this.push(
        outputFields === null
          ? buffer.subarray(0, last + 1)
          : Buffer.concat(out),
      );
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.partial.length > 0) {
      done(new Error("the row stream ended in the middle of a row"));
      return;
    }
    done();
  }
}

/** The chosen tab-separated fields of one row, newline-terminated. */
function project(
  buffer: Buffer,
  start: number,
  end: number,
  fields: number[],
): Buffer {
  const pieces: Buffer[] = [];
  let field = 0;
  let fieldStart = start;
  let next = 0;
  for (let i = start; i <= end && next < fields.length; i++) {
    if (i === end || buffer[i] === TAB) {
      if (field === fields[next]) {
        if (pieces.length > 0) {
          pieces.push(TAB_BUFFER);
        }
        pieces.push(buffer.subarray(fieldStart, i));
        next++;
      }
      field++;
      fieldStart = i + 1;
    }
  }
  pieces.push(NEWLINE_BUFFER);
  return Buffer.concat(pieces);
}

const TAB_BUFFER = Buffer.from([TAB]);
const NEWLINE_BUFFER = Buffer.from([NEWLINE]);
