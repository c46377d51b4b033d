/**
 * Each instance's own metadata service, on its own loopback port: IMDSv2
 * (a PUT for a session token, then the token on every GET), and IMDSv1
 * GETs without a token only where the instance allows them; a refused
 * GET gets 401, as on EC2. The spot `instance-action` and the rebalance
 * recommendation are 404 until a test injects them.
 */
import { randomBytes } from "node:crypto";
import {
  createServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";

import type { AwsState, InstanceRecord } from "./state.js";

export interface ImdsRequest {
  method: string;
  path: string;
  /** "v2" with a valid token, "v1" without one, "refused" when turned away. */
  kind: "v2" | "v1" | "refused" | "token";
  status: number;
}

export interface Imds {
  url: string;
  requests: ImdsRequest[];
  close(): Promise<void>;
}

const MAX_TTL = 21_600;

export async function startImds(
  instance: InstanceRecord,
  state: AwsState,
): Promise<Imds> {
  const tokens = new Map<string, number>();
  const requests: ImdsRequest[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const send = (
      status: number,
      body: string,
      kind: ImdsRequest["kind"],
      headers: Record<string, string> = {},
    ) => {
      requests.push({ method: req.method ?? "", path, kind, status });
      res.writeHead(status, { "content-type": "text/plain", ...headers });
      res.end(body);
    };
    if (instance.metadataOptions.httpEndpoint === "disabled") {
      send(403, "Forbidden", "refused");
      return;
    }
    if (req.method === "PUT" && path === "/latest/api/token") {
      // EC2 refuses token requests that went through a proxy, so a token cannot leave the host.
      if (req.headers["x-forwarded-for"] !== undefined) {
        send(403, "Forbidden", "refused");
        return;
      }
      const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL) {
        send(400, "Bad Request", "refused");
        return;
      }
      const token = randomBytes(32).toString("base64url");
      tokens.set(token, Date.now() + ttl * 1000);
      send(200, token, "token", {
        "x-aws-ec2-metadata-token-ttl-seconds": String(ttl),
      });
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(405, "Method Not Allowed", "refused");
      return;
    }
    const token = req.headers["x-aws-ec2-metadata-token"];
    let kind: ImdsRequest["kind"];
    if (typeof token === "string") {
      const expires = tokens.get(token);
      if (expires === undefined || expires < Date.now()) {
        send(401, "Unauthorized", "refused");
        return;
      }
      kind = "v2";
    } else if (instance.metadataOptions.httpTokens === "required") {
      send(401, "Unauthorized", "refused");
      return;
    } else {
      kind = "v1";
    }
    const body = metadata(instance, state, path);
    if (body === undefined) {
      send(404, "Not Found", kind);
      return;
    }
    send(200, body, kind);
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function listing(entries: string[]): string {
  return entries.join("\n");
}

/** The body at `path`, or undefined for 404. */
function metadata(
  instance: InstanceRecord,
  state: AwsState,
  path: string,
): string | undefined {
  const md = "/latest/meta-data/";
  const tags = state.tagsOf(instance.id);
  const tagsAllowed =
    instance.metadataOptions.instanceMetadataTags === "enabled";
  if (path === "/latest/user-data") {
    return instance.userData === undefined
      ? undefined
      : Buffer.from(instance.userData, "base64").toString();
  }
  if (path === "/latest/dynamic/instance-identity/document") {
    return JSON.stringify(
      {
        accountId: state.accountId,
        architecture: "x86_64",
        availabilityZone: instance.zone,
        imageId: instance.imageId,
        instanceId: instance.id,
        instanceType: instance.instanceType,
        pendingTime: instance.launchTime.toISOString().replace(/\.\d+Z$/, "Z"),
        privateIp: "127.0.0.1",
        region: state.region,
        version: "2017-09-30",
      },
      null,
      2,
    );
  }
  if (!path.startsWith(md) && path !== "/latest/meta-data") {
    return undefined;
  }
  const key = path.startsWith(md) ? path.slice(md.length) : "";
  const credentials = instance.credentials;
  const role = instance.role;
  switch (key) {
    case "":
      return listing([
        "ami-id",
        "ami-launch-index",
        "events/",
        "hostname",
        ...(role === undefined ? [] : ["iam/"]),
        "instance-id",
        "instance-life-cycle",
        "instance-type",
        "local-hostname",
        "local-ipv4",
        "placement/",
        ...(instance.lifecycle === "spot" ? ["spot/"] : []),
        ...(tagsAllowed ? ["tags/"] : []),
      ]);
    case "ami-id":
      return instance.imageId;
    case "ami-launch-index":
      return String(instance.amiLaunchIndex);
    case "instance-id":
      return instance.id;
    case "instance-type":
      return instance.instanceType;
    case "instance-life-cycle":
      return instance.lifecycle;
    case "hostname":
    case "local-hostname":
      return `ip-127-0-0-1.ec2.internal`;
    case "local-ipv4":
      return "127.0.0.1";
    case "placement/":
      return listing(["availability-zone", "availability-zone-id", "region"]);
    case "placement/availability-zone":
      return instance.zone;
    case "placement/availability-zone-id":
      return instance.zoneId;
    case "placement/region":
      return state.region;
    case "events/":
      return listing(["recommendations/"]);
    case "events/recommendations/":
      return listing(["rebalance"]);
    case "events/recommendations/rebalance":
      return instance.rebalance === undefined
        ? undefined
        : JSON.stringify(instance.rebalance);
    case "spot/":
      return instance.lifecycle === "spot"
        ? listing(["instance-action", "termination-time"])
        : undefined;
    case "spot/instance-action":
      return instance.spotAction === undefined
        ? undefined
        : JSON.stringify(instance.spotAction);
    case "spot/termination-time":
      return instance.spotAction?.action === "terminate"
        ? instance.spotAction.time
        : undefined;
    case "iam/":
      return role === undefined
        ? undefined
        : listing(["info", "security-credentials/"]);
    case "iam/info":
      return role === undefined
        ? undefined
        : JSON.stringify({
            Code: "Success",
            LastUpdated: instance.launchTime.toISOString(),
            InstanceProfileArn: instance.instanceProfileArn,
            InstanceProfileId: "AIPA" + instance.id.slice(2, 19).toUpperCase(),
          });
    case "iam/security-credentials/":
    case "iam/security-credentials":
      return role;
    case "tags/":
      return tagsAllowed ? listing(["instance/"]) : undefined;
    case "tags/instance":
    case "tags/instance/":
      return tagsAllowed ? listing([...tags.keys()]) : undefined;
  }
  if (
    key === `iam/security-credentials/${role}` &&
    role !== undefined &&
    credentials !== undefined
  ) {
    return JSON.stringify({
      Code: "Success",
      LastUpdated: new Date().toISOString(),
      Type: "AWS-HMAC",
      AccessKeyId: credentials.accessKeyId,
      SecretAccessKey: credentials.secretAccessKey,
      Token: credentials.sessionToken,
      Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
    });
  }
  if (key.startsWith("tags/instance/") && tagsAllowed) {
    return tags.get(decodeURIComponent(key.slice("tags/instance/".length)));
  }
  return undefined;
}
