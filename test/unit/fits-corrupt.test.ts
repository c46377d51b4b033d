/**
 * Each way a file can be damaged gives its own specific error, naming the
 * file; oddities that do not stop reading become warnings.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { bunzip2, bunzip2Each } from "../../lib/fits/bzip2.js";
import { FitsFormatError, type FitsProblem } from "../../lib/fits/errors.js";
import {
  readFitsFile,
  readFitsStream,
  readHeaders,
} from "../../lib/fits/read.js";
import { dataPadding, headerBytes } from "../../lib/fits/write.js";
import { sharedPath } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const PRIMARY = [
  "SIMPLE  =                    T",
  "BITPIX  =                   16",
  "NAXIS   =                    2",
  "NAXIS1  =                  100",
  "NAXIS2  =                   10",
];

function image(cards = PRIMARY, dataBytes = 2000): Buffer {
  return Buffer.concat([
    headerBytes(cards),
    Buffer.alloc(dataBytes + dataPadding(dataBytes)),
  ]);
}

async function problemOf(path: string): Promise<FitsProblem> {
  try {
    await readFitsFile(path);
  } catch (error) {
    assert.ok(
      error instanceof FitsFormatError,
      `expected a FitsFormatError, got ${String(error)}`,
    );
    assert.ok(
      error.message.startsWith(path),
      `the message names the file: ${error.message}`,
    );
    return error.problem;
  }
  assert.fail(`${path} was read without error`);
}

describe("damaged FITS files", () => {
  it("a valid file reads cleanly (the baseline for the cases below)", async (t) => {
    const path = join(tempDir(t), "ok.fits");
    writeFileSync(path, image());
    const result = await readFitsFile(path);
    assert.equal(result.structure.hdus[0]?.dataSize, 2000);
    assert.deepEqual(result.structure.warnings, []);
  });

  it("an empty file, and a file that is not FITS", async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, "empty.fits"), "");
    writeFileSync(
      join(dir, "text.fits"),
      "Hello, this is a text file and certainly not FITS.\n",
    );
    writeFileSync(join(dir, "short.fits"), "SIM");
    assert.equal(await problemOf(join(dir, "empty.fits")), "not-fits");
    assert.equal(await problemOf(join(dir, "text.fits")), "not-fits");
    assert.equal(await problemOf(join(dir, "short.fits")), "missing-end");
  });

  it("a header without END", async (t) => {
    const path = join(tempDir(t), "noend.fits");
    writeFileSync(
      path,
      headerBytes(PRIMARY)
        .subarray(0, 2880)
        .toString("latin1")
        .replace("END", "   "),
      "latin1",
    );
    assert.equal(await problemOf(path), "missing-end");
  });

  it("cards separated by line breaks are not 80-character cards", async (t) => {
    const path = join(tempDir(t), "lines.fits");
    writeFileSync(
      path,
      `${PRIMARY.map((c) => c.padEnd(80)).join("\n")}\nEND`.padEnd(2880, " "),
    );
    assert.equal(await problemOf(path), "bad-card");
  });

  it("a bad NAXIS, NAXISn or BITPIX", async (t) => {
    const dir = tempDir(t);
    const cases: [string, string[]][] = [
      [
        "naxis.fits",
        PRIMARY.map((c) =>
          c.startsWith("NAXIS ") ? "NAXIS   =                 -1" : c,
        ),
      ],
      ["naxis2.fits", PRIMARY.filter((c) => !c.startsWith("NAXIS2"))],
      [
        "bitpix.fits",
        PRIMARY.map((c) =>
          c.startsWith("BITPIX") ? "BITPIX  =                   12" : c,
        ),
      ],
    ];
    for (const [name, cards] of cases) {
      writeFileSync(join(dir, name), image(cards));
      assert.equal(await problemOf(join(dir, name)), "bad-keyword", name);
    }
    await assert.rejects(
      readFitsFile(join(dir, "naxis2.fits")),
      /NAXIS2 must be a non-negative integer \(NAXIS = 2\); got nothing \(keyword missing\)/,
    );
  });

  it("a truncated data unit, but only a warning for missing padding", async (t) => {
    const dir = tempDir(t);
    const full = image();
    writeFileSync(join(dir, "cut.fits"), full.subarray(0, 2880 + 1000));
    assert.equal(await problemOf(join(dir, "cut.fits")), "truncated-data");
    await assert.rejects(
      readFitsFile(join(dir, "cut.fits")),
      /ends 1000 byte\(s\) before the end of the data unit of HDU 0/,
    );
    writeFileSync(join(dir, "unpadded.fits"), full.subarray(0, 2880 + 2000));
    const result = await readFitsFile(join(dir, "unpadded.fits"));
    assert.match(result.structure.warnings.join("\n"), /not padded/);
  });

  it("a truncated extension header, and junk after the last HDU", async (t) => {
    const dir = tempDir(t);
    const extension = headerBytes([
      "XTENSION= 'IMAGE   '",
      "BITPIX  =                   16",
      "NAXIS   =                    0",
      "PCOUNT  =                    0",
      "GCOUNT  =                    1",
    ]);
    writeFileSync(
      join(dir, "exthead.fits"),
      Buffer.concat([image(), extension.subarray(0, 1600)]),
    );
    assert.equal(await problemOf(join(dir, "exthead.fits")), "missing-end");
    writeFileSync(
      join(dir, "junk.fits"),
      Buffer.concat([image(), Buffer.from("garbage".repeat(500))]),
    );
    const result = await readFitsFile(join(dir, "junk.fits"));
    assert.equal(result.structure.hdus.length, 1);
    assert.match(result.structure.warnings.join("\n"), /after the last HDU/);
  });

  it("headers-only reading reports the same problems without reading data", async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, "cut.fits"), image().subarray(0, 2880 + 100));
    assert.throws(
      () => readHeaders(join(dir, "cut.fits")),
      (e: unknown) =>
        e instanceof FitsFormatError && e.problem === "truncated-data",
    );
  });
});

describe("damaged bzip2 files", () => {
  const original = sharedPath(
    "fixtures",
    "fits",
    "gemini",
    "gmos-n_illum_HAM_44_12amp_v1.fits.bz2",
  );

  it("a good .bz2 gives both checksums in one pass", async () => {
    const result = await readFitsFile(original);
    const bytes = readFileSync(original);
    assert.equal(result.fileSize, bytes.length);
    assert.equal(result.compressed, true);
    const shell = (command: string) =>
      execFileSync("sh", ["-c", command], { encoding: "utf8" }).trim();
    assert.equal(
      result.dataSize,
      Number(shell(`bzip2 -dc '${original}' | wc -c`)),
    );
    assert.equal(
      result.dataMd5,
      shell(`bzip2 -dc '${original}' | md5sum`).split(" ")[0],
    );
    assert.equal(result.fileMd5, shell(`md5sum '${original}'`).split(" ")[0]);
    assert.equal(result.structure.hdus.length, 13);
  });

  it("truncated, corrupt, or not bzip2 at all", async (t) => {
    const dir = tempDir(t);
    const bytes = readFileSync(original);
    writeFileSync(
      join(dir, "truncated.fits.bz2"),
      bytes.subarray(0, Math.floor(bytes.length / 2)),
    );
    const corrupt = Buffer.from(bytes);
    for (let i = 2000; i < 2100; i++) {
      corrupt[i] = (corrupt[i] ?? 0) ^ 0x5a;
    }
    writeFileSync(join(dir, "corrupt.fits.bz2"), corrupt);
    writeFileSync(join(dir, "plain.fits.bz2"), image());
    for (const [name, reason] of [
      ["truncated.fits.bz2", /truncated/],
      ["corrupt.fits.bz2", /corrupt|integrity/],
      ["plain.fits.bz2", /not bzip2-compressed/],
    ] as const) {
      const path = join(dir, name);
      assert.equal(await problemOf(path), "bzip2", name);
      await assert.rejects(readFitsFile(path), reason);
    }
  });
});

describe("both decompressors", () => {
  const original = sharedPath(
    "fixtures",
    "fits",
    "gemini",
    "gmos-s_illum_HAM_44_12amp_v1.fits.bz2",
  );
  const bytes = readFileSync(original);
  const corrupt = Buffer.from(bytes);
  corrupt.fill(0x5a, 3000, 3200);

  async function drain(
    use: { program: string; args: string[] },
    input: Buffer,
  ): Promise<{ size: number; md5: string }> {
    const hash = createHash("md5");
    let size = 0;
    for await (const chunk of bunzip2([input], "x.fits.bz2", use)) {
      hash.update(chunk);
      size += chunk.length;
    }
    return { size, md5: hash.digest("hex") };
  }

  /** The same through bunzip2Each, whose pieces share one buffer. */
  async function drainEach(
    use: { program: string; args: string[] },
    input: Buffer,
  ): Promise<{ size: number; md5: string }> {
    const hash = createHash("md5");
    let size = 0;
    await bunzip2Each(
      [input],
      "x.fits.bz2",
      (piece) => {
        hash.update(piece);
        size += piece.length;
      },
      use,
    );
    return { size, md5: hash.digest("hex") };
  }

  for (const use of [
    { program: "lbzip2", args: ["-n", "1", "-d", "-c"] },
    { program: "bzip2", args: ["-d", "-c"] },
  ]) {
    it(`${use.program}: same bytes, and the same three errors`, async () => {
      const expected = execFileSync(
        "sh",
        ["-c", `bzip2 -dc '${original}' | md5sum`],
        { encoding: "utf8" },
      ).split(" ")[0];
      assert.equal((await drain(use, bytes)).md5, expected);
      assert.equal((await drainEach(use, bytes)).md5, expected);
      for (const [input, reason] of [
        [
          bytes.subarray(0, 5000),
          /x\.fits\.bz2: cannot decompress: the compressed data is truncated/,
        ],
        [
          corrupt,
          /x\.fits\.bz2: cannot decompress: the compressed data is corrupt/,
        ],
        [
          Buffer.from("SIMPLE  =                    T"),
          /x\.fits\.bz2: cannot decompress: it is not bzip2-compressed data/,
        ],
      ] as const) {
        for (const how of [drain, drainEach]) {
          await assert.rejects(
            how(use, input),
            (e: unknown) =>
              e instanceof FitsFormatError &&
              e.problem === "bzip2" &&
              reason.test(e.message),
            how.name,
          );
        }
      }
    });
  }

  it("a callback that throws stops the decompressor and is the error", async () => {
    let pieces = 0;
    await assert.rejects(
      bunzip2Each([bytes], "x.fits.bz2", () => {
        pieces++;
        throw new Error("enough");
      }),
      /^Error: enough$/,
    );
    assert.equal(pieces, 1, "no piece after the one that threw");
    assert.deepEqual(childrenNamed(/bzip2/), [], "no decompressor left");
  });

  it("a copy taken on the way (throughData) sees the same bytes and gives the same checksums", async () => {
    const direct = await readFitsFile(original);
    const copy: Buffer[] = [];
    const through = await readFitsStream(
      "x.fits.bz2",
      (async function* () {
        yield bytes;
      })(),
      {
        throughData: async function* (data) {
          for await (const chunk of data) {
            copy.push(Buffer.from(chunk));
            yield chunk;
          }
        },
      },
    );
    assert.equal(through.dataMd5, direct.dataMd5);
    assert.equal(through.dataSize, direct.dataSize);
    assert.equal(through.fileMd5, direct.fileMd5);
    assert.equal(through.structure.hdus.length, direct.structure.hdus.length);
    assert.equal(
      createHash("md5").update(Buffer.concat(copy)).digest("hex"),
      direct.dataMd5,
    );
  });
});

/** Command names of this process's live children matching `name` (Linux /proc). */
function childrenNamed(name: RegExp): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid …"; comm may hold spaces and parentheses.
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const [state, ppid] = stat.slice(close + 2).split(" ");
    if (Number(ppid) === process.pid && state !== "Z" && name.test(comm)) {
      found.push(comm);
    }
  }
  return found;
}
