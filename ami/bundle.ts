/**
 * The fitsfleet bundle a worker image is baked from: this package as `npm
 * pack` makes it (package.json `files`: the dist/ build, the migrations,
 * the mappings and the image builder's files) plus its production
 * dependencies, copied from the installed node_modules as `npm ls
 * --omit=dev` lists them, in one `.tar.gz` with a single top folder.
 *
 * Copying the installed tree rather than running `npm install` keeps a
 * bake offline and quick, and gives the exact versions the operator's
 * tests ran with. The price is that native modules (sharp) are this
 * machine's build, so a bundle is made on Linux x64 only, for x64
 * instances. The archive is reproducible: entries sorted, one fixed
 * mtime, owner 0, gzip without a name or time, so the same tree gives
 * the same sha256.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGzip } from "node:zlib";

import {
  EXIT,
  FitsfleetError,
  MissingDependencyError,
  PreconditionError,
} from "../lib/errors.js";
import { packageRoot } from "../lib/paths.js";

/** The top folder of the archive; the builder strips it. */
export const BUNDLE_TOP = "fitsfleet";

/** npm's own fixed time for packed files (1985-10-26T08:15:00Z). */
const FIXED_MTIME = 499162500;

/** Type declarations and source maps: never loaded at run time. */
const UNUSED_AT_RUNTIME = /(\.d\.[cm]?ts|\.map)$/;

export interface Bundle {
  path: string;
  sha256: string;
  bytes: number;
  version: string;
  /** Production packages copied into node_modules. */
  packages: number;
}

const exec = promisify(execFile);

async function npm(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await exec("npm", args, {
      cwd,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, npm_config_update_notifier: "false" },
    });
    return stdout;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") {
      throw new MissingDependencyError("npm", "npm");
    }
    throw new FitsfleetError(
      "bundle-failed",
      EXIT.failed,
      `could not build the bundle: npm ${args[0]} failed: ${(e.stderr ?? e.message).trim().split("\n").slice(-5).join("\n")}`,
      { cause: error },
    );
  }
}

/**
 * Builds the bundle into `outDir` (a temporary folder by default) from the
 * package at `root` (this one by default), whose dist/ must be built.
 */
export async function buildBundle(
  options: { root?: string; outDir?: string } = {},
): Promise<Bundle> {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new PreconditionError(
      `the bundle holds this machine's native modules (sharp), and this is ${process.platform}-${process.arch}: the workers run on Linux x64`,
      {
        suggestion:
          "run `fitsfleet ami bake` on a Linux x64 machine (a CI runner, or an EC2 instance)",
      },
    );
  }
  const root = options.root ?? packageRoot();
  if (!existsSync(join(root, "dist", "cli", "main.js"))) {
    throw new PreconditionError(
      `${join(root, "dist")} is not built: the bundle carries the dist/ build`,
      { suggestion: "run `npm run build` first" },
    );
  }
  const outDir = options.outDir ?? mkdtempSync(join(tmpdir(), "ff-bundle-"));
  const stage = mkdtempSync(join(tmpdir(), "ff-bundle-stage-"));
  try {
    // Independent, and each mostly npm's own start-up: together.
    const [packOut, lsOut] = await Promise.all([
      npm(
        ["pack", "--json", "--ignore-scripts", "--pack-destination", stage],
        root,
      ),
      npm(["ls", "--omit=dev", "--all", "--parseable"], root),
    ]);
    const packed = JSON.parse(packOut) as {
      filename: string;
      version: string;
    }[];
    const tarball = packed[0];
    if (tarball === undefined) {
      throw new FitsfleetError(
        "bundle-failed",
        EXIT.failed,
        "could not build the bundle: npm pack made nothing",
      );
    }
    const top = join(stage, BUNDLE_TOP);
    mkdirSync(top);
    await exec("tar", [
      "-xzf",
      join(stage, tarball.filename),
      "-C",
      top,
      "--strip-components=1",
    ]);
    rmSync(join(stage, tarball.filename));

    const listed = lsOut
      .split("\n")
      .filter((line) => line !== "" && line !== root);
    for (const dir of listed) {
      const rel = relative(root, dir);
      if (rel.startsWith("..") || !rel.startsWith(`node_modules${sep}`)) {
        throw new PreconditionError(
          `production dependency ${dir} is outside ${root}/node_modules: the bundle cannot carry it`,
        );
      }
      // Nested node_modules are listed on their own lines, and only those are production ones.
      cpSync(dir, join(top, rel), {
        recursive: true,
        filter: (src) => {
          const inner = relative(dir, src);
          return (
            inner === "" ||
            (!inner.split(sep).includes("node_modules") &&
              !inner.split(sep).includes("dist-types") &&
              !UNUSED_AT_RUNTIME.test(inner))
          );
        },
      });
    }

    const path = join(outDir, `fitsfleet-${tarball.version}.tar.gz`);
    const sha256 = await writeArchive(stage, path);
    return {
      path,
      sha256,
      bytes: statSync(path).size,
      version: tarball.version,
      packages: listed.length,
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** GNU tar for the sorted, normalised entries; zlib and the hash in one pass. */
async function writeArchive(stage: string, path: string): Promise<string> {
  const tar = spawn(
    "tar",
    [
      "--sort=name",
      `--mtime=@${FIXED_MTIME}`,
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--format=gnu",
      "-C",
      stage,
      "-cf",
      "-",
      BUNDLE_TOP,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  tar.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    tar.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT"
          ? new MissingDependencyError("tar", "tar")
          : error,
      ),
    );
    tar.once("close", resolve);
  });
  const hash = createHash("sha256");
  await pipeline(
    tar.stdout,
    // Level 6 and no header name or time: the same bytes on every machine with this zlib.
    createGzip({ level: 6 }),
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
    createWriteStream(path),
  );
  const code = await exited;
  if (code !== 0) {
    throw new FitsfleetError(
      "bundle-failed",
      EXIT.failed,
      `could not build the bundle: tar exited ${code}: ${stderr.trim()}`,
    );
  }
  return hash.digest("hex");
}

/** The sha256 of a file, hex. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}
