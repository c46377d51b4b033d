/**
 * Small FITS files with pixel data for the pixel-reading and preview tests:
 * cards and big-endian values, written with the project's header writer.
 */
import { writeFileSync } from "node:fs";

import type { FitsValue } from "../../lib/fits/card.js";
import { dataPadding, formatCard, headerBytes } from "../../lib/fits/write.js";

export type Bitpix = 8 | 16 | 32 | 64 | -32 | -64;

/** Stored values (before BZERO/BSCALE) as big-endian bytes. */
export function encodeValues(
  bitpix: Bitpix,
  values: readonly (number | bigint)[],
): Buffer {
  const size = Math.abs(bitpix) / 8;
  const bytes = Buffer.alloc(values.length * size);
  values.forEach((v, i) => {
    const at = i * size;
    switch (bitpix) {
      case 8:
        bytes.writeUInt8(Number(v), at);
        break;
      case 16:
        bytes.writeInt16BE(Number(v), at);
        break;
      case 32:
        bytes.writeInt32BE(Number(v), at);
        break;
      case 64:
        bytes.writeBigInt64BE(BigInt(v), at);
        break;
      case -32:
        bytes.writeFloatBE(Number(v), at);
        break;
      case -64:
        bytes.writeDoubleBE(Number(v), at);
        break;
    }
  });
  return bytes;
}

export interface HduSpec {
  /** Extra cards after the mandatory ones, as [keyword, value] pairs. */
  cards?: [string, FitsValue][];
  bitpix?: Bitpix;
  axes?: number[];
  /** Stored values in FITS order (first axis fastest); default zeros. */
  values?: readonly (number | bigint)[];
  /** Raw data bytes instead of `values`. */
  data?: Buffer;
  /** Extension type for HDUs after the first; default IMAGE. */
  xtension?: string;
}

/** The bytes of a FITS file: a primary HDU and extensions, each padded to 2880-byte blocks. */
export function fitsBytes(hdus: readonly HduSpec[]): Buffer {
  const parts: Buffer[] = [];
  hdus.forEach((hdu, index) => {
    const bitpix = hdu.bitpix ?? 8;
    const axes = hdu.axes ?? [];
    const cards =
      index === 0
        ? [formatCard("SIMPLE", true)]
        : [formatCard("XTENSION", hdu.xtension ?? "IMAGE")];
    cards.push(formatCard("BITPIX", bitpix), formatCard("NAXIS", axes.length));
    axes.forEach((n, i) => cards.push(formatCard(`NAXIS${i + 1}`, n)));
    if (index > 0) {
      cards.push(formatCard("PCOUNT", 0), formatCard("GCOUNT", 1));
    }
    for (const [keyword, value] of hdu.cards ?? []) {
      cards.push(formatCard(keyword, value));
    }
    parts.push(headerBytes(cards));
    const count = axes.length === 0 ? 0 : axes.reduce((a, b) => a * b, 1);
    const data =
      hdu.data ??
      encodeValues(bitpix, hdu.values ?? new Array<number>(count).fill(0));
    parts.push(data, Buffer.alloc(dataPadding(data.length)));
  });
  return Buffer.concat(parts);
}

export function writeFits(path: string, hdus: readonly HduSpec[]): string {
  writeFileSync(path, fitsBytes(hdus));
  return path;
}

export interface AmpSpec {
  /** Unbinned, 1-based inclusive detector columns and rows: [x1, x2, y1, y2]. */
  detsec: [number, number, number, number];
  /** Overscan columns on the left (true) or right of the data. */
  overscanLeft: boolean;
  bias: number;
  gain: number;
  /** The value every data pixel has after (raw - bias) × gain. */
  level: number;
}

/**
 * A raw GMOS-like frame: one int16 (BZERO 32768) extension per amplifier,
 * with `overscan` bias columns beside the data section, CCDSUM, GAIN.
 */
export function gmosFrame(
  amps: readonly AmpSpec[],
  options: {
    xbin: number;
    ybin: number;
    overscan?: number;
    instrument?: string;
  },
): HduSpec[] {
  const overscan = options.overscan ?? 8;
  const extensions = amps.map((amp): HduSpec => {
    const [x1, x2, y1, y2] = amp.detsec;
    const width = (x2 - x1 + 1) / options.xbin;
    const height = (y2 - y1 + 1) / options.ybin;
    const total = width + overscan;
    const dataX = amp.overscanLeft ? overscan : 0;
    const biasX = amp.overscanLeft ? 0 : width;
    const signal = amp.level / amp.gain;
    const values: number[] = [];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < total; x++) {
        const inData = x >= dataX && x < dataX + width;
        // Stored = physical - BZERO.
        values.push(Math.round(amp.bias + (inData ? signal : 0)) - 32768);
      }
    }
    return {
      bitpix: 16,
      axes: [total, height],
      values,
      cards: [
        ["BZERO", 32768],
        ["BSCALE", 1],
        ["EXTNAME", "SCI"],
        ["CCDSUM", `${options.xbin} ${options.ybin}`],
        ["DETSEC", `[${x1}:${x2},${y1}:${y2}]`],
        ["DATASEC", `[${dataX + 1}:${dataX + width},1:${height}]`],
        ["BIASSEC", `[${biasX + 1}:${biasX + overscan},1:${height}]`],
        ["GAIN", amp.gain],
      ],
    };
  });
  return [
    { cards: [["INSTRUME", options.instrument ?? "GMOS-N"]] },
    ...extensions,
  ];
}
