/**
 * The builder's user-data without a bake: rendered complete and valid
 * shell, within EC2's size limit, the unit it installs the one
 * ami/README.md documents, and its dependency-free AWS helper
 * (ami/builder-aws.mjs) signing exactly as the AWS SDK's own SigV4 signer
 * does, so that what passes on the loopback endpoint (which checks no
 * signature) passes on AWS.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

import { SignatureV4 } from "@smithy/signature-v4";

import { renderBuilderUserData } from "../../ami/bake.js";
import { packageRoot } from "../../lib/paths.js";
import { tempDir } from "../helpers/tmp.js";

const HELPER = join(packageRoot(), "ami", "builder-aws.mjs");
const SHA = "ab".repeat(32);

const rendered = () =>
  renderBuilderUserData({
    build: "20250101t000000-abcdef",
    bundle: "s3://my-bucket/bundles/x/fitsfleet-0.1.0.tar.gz",
    sha256: SHA,
    version: "0.1.0",
  });

type SourceData = string | ArrayBuffer | ArrayBufferView;

const bytes = (data: SourceData): string | Buffer =>
  typeof data === "string"
    ? data
    : ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);

/** node:crypto as the SDK's hash interface. */
class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined
      ? createHash("sha256")
      : createHmac("sha256", bytes(this.secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

interface Captured {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** One server for S3, EC2 and the metadata service; it answers and remembers. */
async function fakeAws(t: Parameters<typeof tempDir>[0]) {
  const seen: Captured[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body,
      });
      if (req.url === "/latest/api/token") {
        res.end("token");
      } else if (req.url === "/latest/meta-data/instance-id") {
        res.end("i-0123456789abcdef0");
      } else if (req.method === "GET") {
        res.end("the bundle");
      } else {
        res.end(
          "<CreateTagsResponse><return>true</return></CreateTagsResponse>",
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  return { seen, port, url: `http://127.0.0.1:${port}` };
}

const CREDENTIALS = {
  accessKeyId: "ASIAEXAMPLEEXAMPLE01",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  sessionToken: "FwoGZXIvYXdzEXAMPLE//token+with/slashes=",
};

/** The Authorization header the SDK's signer gives the request as it arrived. */
async function sdkAuthorization(
  captured: Captured,
  port: number,
  service: string,
): Promise<string> {
  const signer = new SignatureV4({
    service,
    region: "eu-west-1",
    credentials: CREDENTIALS,
    sha256: NodeSha256,
    uriEscapePath: service !== "s3",
  });
  const amzDate = String(captured.headers["x-amz-date"]);
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const headers: Record<string, string> = {
    host: `127.0.0.1:${port}`,
  };
  if (captured.headers["content-type"] !== undefined) {
    headers["content-type"] = String(captured.headers["content-type"]);
  }
  const signed = await signer.sign(
    {
      method: captured.method,
      protocol: "http:",
      hostname: "127.0.0.1",
      port,
      path: captured.url,
      query: {},
      headers,
      body: captured.body === "" ? undefined : captured.body,
    },
    { signingDate },
  );
  return String(signed.headers.authorization);
}

describe("the builder's user-data", () => {
  it("is rendered complete, is valid bash, and fits EC2's 16 KB", (t) => {
    const text = rendered();
    assert.ok(text.startsWith("#!/bin/bash\n"));
    assert.doesNotMatch(text, /@@[A-Z_]+@@/);
    assert.match(text, new RegExp(`^BUNDLE_SHA256='${SHA}'$`, "m"));
    assert.match(
      text,
      /^BUNDLE='s3:\/\/my-bucket\/bundles\/x\/fitsfleet-0\.1\.0\.tar\.gz'$/m,
    );
    assert.ok(
      Buffer.byteLength(text) <= 16 * 1024,
      `${Buffer.byteLength(text)} bytes`,
    );
    const file = join(tempDir(t), "user-data");
    writeFileSync(file, text);
    execFileSync("bash", ["-n", file]);
  });

  it("installs the unit ami/README.md documents", () => {
    const template = readFileSync(
      join(packageRoot(), "ami", "builder-user-data.sh"),
      "utf8",
    );
    const unit = /<<UNIT_FILE\n([\s\S]*?)\nUNIT_FILE\n/
      .exec(template)?.[1]
      ?.replace("${NODE}", "/usr/bin/node")
      .replace("${APP}", "/opt/fitsfleet");
    const readme = readFileSync(
      join(packageRoot(), "ami", "README.md"),
      "utf8",
    );
    const documented =
      /## The unit the image installs[\s\S]*?```ini\n([\s\S]*?)\n```/.exec(
        readme,
      )?.[1];
    assert.ok(unit !== undefined && documented !== undefined);
    assert.equal(unit, documented);
  });
});

describe("ami/builder-aws.mjs", () => {
  it("gets an S3 object signed as the SDK signs it, with the role's session token", async (t) => {
    const aws = await fakeAws(t);
    const out = join(tempDir(t), "bundle.tar.gz");
    await promisify(execFile)(
      process.execPath,
      [
        HELPER,
        "get-object",
        "s3://my-bucket/bundles/2025 01/fitsfleet-0.1.0.tar.gz",
        out,
      ],
      {
        env: {
          PATH: process.env.PATH,
          AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
          AWS_SESSION_TOKEN: CREDENTIALS.sessionToken,
          AWS_REGION: "eu-west-1",
          AWS_ENDPOINT_URL_S3: aws.url,
        },
      },
    );
    assert.equal(readFileSync(out, "utf8"), "the bundle");
    const [get] = aws.seen;
    assert.equal(
      get?.url,
      "/my-bucket/bundles/2025%2001/fitsfleet-0.1.0.tar.gz",
    );
    assert.equal(
      get?.headers["x-amz-security-token"],
      CREDENTIALS.sessionToken,
    );
    assert.equal(
      get?.headers.authorization,
      await sdkAuthorization(get!, aws.port, "s3"),
    );
  });

  it("tags its own instance (from IMDSv2) through EC2's query API, signed as the SDK signs it", async (t) => {
    const aws = await fakeAws(t);
    await promisify(execFile)(
      process.execPath,
      [HELPER, "tag-self", "fitsfleet:ami-build-state=ready"],
      {
        env: {
          PATH: process.env.PATH,
          AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
          AWS_SESSION_TOKEN: CREDENTIALS.sessionToken,
          AWS_REGION: "eu-west-1",
          AWS_ENDPOINT_URL_EC2: aws.url,
          AWS_EC2_METADATA_SERVICE_ENDPOINT: aws.url,
        },
      },
    );
    const post = aws.seen.find((r) => r.method === "POST");
    assert.ok(post !== undefined);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(post.body)), {
      Action: "CreateTags",
      Version: "2016-11-15",
      "ResourceId.1": "i-0123456789abcdef0",
      "Tag.1.Key": "fitsfleet:ami-build-state",
      "Tag.1.Value": "ready",
    });
    assert.equal(
      post.headers.authorization,
      await sdkAuthorization(post, aws.port, "ec2"),
    );
    // IMDSv2: a token first, and every read carries it.
    const token = aws.seen.find((r) => r.url === "/latest/api/token");
    assert.equal(token?.method, "PUT");
    assert.equal(
      aws.seen.find((r) => r.url === "/latest/meta-data/instance-id")?.headers[
        "x-aws-ec2-metadata-token"
      ],
      "token",
    );
  });

  it("says why it failed, and never prints the credentials", async (t) => {
    const aws = await fakeAws(t);
    const out = join(tempDir(t), "x");
    const result = await promisify(execFile)(
      process.execPath,
      [HELPER, "get-object", "not-a-location", out],
      {
        env: {
          PATH: process.env.PATH,
          AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
          AWS_ENDPOINT_URL_S3: aws.url,
        },
      },
    ).then(
      () => ({ code: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /usage: get-object s3:\/\/BUCKET\/KEY FILE/);
    assert.doesNotMatch(result.stderr, /wJalrXUtnFEMI/);
  });
});
