// The image builder's AWS client: fetches the bundle from S3 and tags the
// builder instance, signed (SigV4) with the instance role's credentials.
// Plain JavaScript without a dependency, because it runs before the bundle,
// which holds the AWS SDK, is on the machine, and Debian's image has no AWS
// CLI. `ami bake` puts it in the builder's user-data.
//
//   node builder-aws.mjs get-object s3://BUCKET/KEY FILE
//   node builder-aws.mjs tag-self KEY=VALUE...
//
// Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN if
// set, else the instance role's, over IMDSv2. Endpoints: AWS_ENDPOINT_URL_S3,
// AWS_ENDPOINT_URL_EC2 (or AWS_ENDPOINT_URL), else AWS's. Nothing secret is
// ever printed.
import { createHash, createHmac } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

const env = process.env;
const IMDS = (
  env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? "http://169.254.169.254"
).replace(/\/$/, "");
const ATTEMPTS = 6;

const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const hmac = (key, data) => createHmac("sha256", key).update(data).digest();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries what fails for a moment at boot: the network, IMDS, throttling, 5xx. */
async function retrying(what, fn) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (error.permanent === true || attempt >= ATTEMPTS) {
        throw new Error(`${what}: ${error.message}`);
      }
      await sleep(500 * 2 ** attempt);
    }
  }
}

function fail(message, permanent) {
  return Object.assign(new Error(message), { permanent });
}

let imdsToken;
async function metadata(path) {
  imdsToken ??= await (async () => {
    const r = await fetch(`${IMDS}/latest/api/token`, {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "21600" },
      signal: AbortSignal.timeout(3000),
    });
    if (!r.ok) {
      throw fail(`IMDSv2 refused a token (HTTP ${r.status})`, false);
    }
    return r.text();
  })();
  const r = await fetch(`${IMDS}${path}`, {
    headers: { "x-aws-ec2-metadata-token": imdsToken },
    signal: AbortSignal.timeout(3000),
  });
  if (!r.ok) {
    throw fail(`IMDS ${path}: HTTP ${r.status}`, r.status === 404);
  }
  return (await r.text()).trim();
}

async function credentials() {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      sessionToken: env.AWS_SESSION_TOKEN,
    };
  }
  return retrying("the instance role's credentials", async () => {
    const base = "/latest/meta-data/iam/security-credentials/";
    const role = (await metadata(base)).split("\n")[0];
    const c = JSON.parse(await metadata(`${base}${role}`));
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.Token,
    };
  });
}

async function region() {
  return (
    env.AWS_REGION ??
    env.AWS_DEFAULT_REGION ??
    retrying("the region", () => metadata("/latest/meta-data/placement/region"))
  );
}

/** RFC 3986 encoding, as SigV4 wants it. */
const encode = (s) =>
  encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );

/**
 * Signs a request (AWS Signature Version 4, headers). `url.pathname` must
 * already be encoded as it will be sent; S3 signs it as it is, other
 * services encode it once more.
 */
function sign(request, creds, regionName, service, now = new Date()) {
  const url = new URL(request.url);
  const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
  const day = amzDate.slice(0, 8);
  const body = request.body ?? "";
  const headers = {
    ...request.headers,
    host: url.host,
    "x-amz-date": amzDate,
    "x-amz-content-sha256": sha256(body),
    ...(creds.sessionToken
      ? { "x-amz-security-token": creds.sessionToken }
      : {}),
  };
  const names = Object.keys(headers)
    .map((h) => h.toLowerCase())
    .sort();
  const lower = Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const path =
    service === "s3"
      ? url.pathname
      : url.pathname
          .split("/")
          .map((p) => encode(p))
          .join("/");
  const query = [...url.searchParams]
    .map(([k, v]) => [encode(k), encode(v)])
    .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonical = [
    request.method,
    path || "/",
    query,
    names.map((h) => `${h}:${String(lower[h]).trim()}\n`).join(""),
    names.join(";"),
    lower["x-amz-content-sha256"],
  ].join("\n");
  const scope = `${day}/${regionName}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join(
    "\n",
  );
  let key = hmac(`AWS4${creds.secretAccessKey}`, day);
  for (const part of [regionName, service, "aws4_request"]) {
    key = hmac(key, part);
  }
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
  };
}

/** The error code in an AWS XML error body, or the HTTP status. */
async function awsError(response) {
  const text = await response.text().catch(() => "");
  const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
  return `HTTP ${response.status}${code === undefined ? "" : ` ${code}`}`;
}

async function getObject(location, file) {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(location ?? "");
  if (match === null || file === undefined) {
    throw fail("usage: get-object s3://BUCKET/KEY FILE", true);
  }
  const [, bucket, key] = match;
  const [creds, regionName] = await Promise.all([credentials(), region()]);
  const custom = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const path = key.split("/").map(encode).join("/");
  // Path style for another store (MinIO, a test's), as the bundle was uploaded.
  const url =
    custom === undefined
      ? `https://${bucket}.s3.${regionName}.amazonaws.com/${path}`
      : `${custom.replace(/\/$/, "")}/${bucket}/${path}`;
  await retrying(`get ${location}`, async () => {
    const response = await fetch(url, {
      headers: sign({ method: "GET", url }, creds, regionName, "s3"),
    });
    if (!response.ok) {
      throw fail(
        await awsError(response),
        response.status < 500 && response.status !== 429,
      );
    }
    await pipeline(Readable.fromWeb(response.body), createWriteStream(file));
  });
}

async function tagSelf(pairs) {
  const tags = pairs.map((p) => {
    const at = p.indexOf("=");
    if (at < 1) {
      throw fail(`tag-self: ${p} is not KEY=VALUE`, true);
    }
    return [p.slice(0, at), p.slice(at + 1)];
  });
  const [creds, regionName, instanceId] = await Promise.all([
    credentials(),
    region(),
    retrying("the instance id", () =>
      metadata("/latest/meta-data/instance-id"),
    ),
  ]);
  const endpoint = (
    env.AWS_ENDPOINT_URL_EC2 ??
    env.AWS_ENDPOINT_URL ??
    `https://ec2.${regionName}.amazonaws.com`
  ).replace(/\/$/, "");
  const url = `${endpoint}/`;
  const body = new URLSearchParams([
    ["Action", "CreateTags"],
    ["Version", "2016-11-15"],
    ["ResourceId.1", instanceId],
    ...tags.flatMap(([k, v], i) => [
      [`Tag.${i + 1}.Key`, k],
      [`Tag.${i + 1}.Value`, v],
    ]),
  ]).toString();
  await retrying(`tag ${instanceId}`, async () => {
    const headers = sign(
      {
        method: "POST",
        url,
        body,
        headers: {
          "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        },
      },
      creds,
      regionName,
      "ec2",
    );
    const response = await fetch(url, { method: "POST", headers, body });
    if (!response.ok) {
      throw fail(
        await awsError(response),
        response.status < 500 && response.status !== 429,
      );
    }
  });
}

const [command, ...args] = process.argv.slice(2);
const commands = {
  "get-object": () => getObject(args[0], args[1]),
  "tag-self": () => tagSelf(args),
};
if (command !== undefined) {
  const run = commands[command];
  if (run === undefined) {
    process.stderr.write(`builder-aws: unknown command ${command}\n`);
    process.exit(2);
  }
  run().catch((error) => {
    process.stderr.write(`builder-aws: ${command}: ${error.message}\n`);
    process.exit(1);
  });
}
