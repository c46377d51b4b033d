/**
 * A loopback AWS endpoint for tests: EC2 (Query protocol) and SSM (JSON
 * 1.1) on one HTTP server on 127.0.0.1, whose instances are local
 * processes. The real `@aws-sdk/client-ec2` and `@aws-sdk/client-ssm` talk
 * to it unchanged. SigV4 signatures are not checked, but each call's access
 * key id is recorded and decides who the caller is: an instance's role
 * credentials make the instance the caller, any other key is the operator.
 *
 *   const aws = await startAwsEndpoint({ root: tempDir(t) });
 *   t.after(() => aws.close());
 *   const ami = aws.registerImage({ name: "worker", argv: [process.execPath, "boot.mjs"], root });
 *   await aws.ec2Client().send(new RunInstancesCommand({ ImageId: ami, … }));
 */
import { mkdirSync } from "node:fs";
import {
  createServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

import { EC2Client, type EC2ClientConfig } from "@aws-sdk/client-ec2";
import { SSMClient, type SSMClientConfig } from "@aws-sdk/client-ssm";

import { DEFAULT_REGION, SPOT_PRICES, type SpotPriceTable } from "./catalog.js";
import { createEc2Actions, DEFAULT_POLICY, type LaunchPolicy } from "./ec2.js";
import type { ImdsRequest } from "./imds.js";
import { InstanceProcesses } from "./instances.js";
import { Ec2Error, errorXml, parseQuery, responseXml } from "./query.js";
import {
  type Caller,
  createSsmActions,
  type RolePolicy,
  SsmError,
  type SsmParameter,
  type SsmRead,
} from "./ssm.js";
import {
  type ApiCall,
  AwsState,
  type BlockDevice,
  type CapacityRule,
  type InstanceRecord,
  type InstanceStateName,
  type LaunchData,
  newId,
} from "./state.js";

export type {
  ApiCall,
  CapacityRule,
  ImdsRequest,
  InstanceStateName,
  LaunchPolicy,
  RolePolicy,
  SpotPriceTable,
  SsmRead,
};

export interface ImageSpec {
  name: string;
  /** The command an instance of this image runs, in its own folder (a copy of `root`). */
  argv: string[];
  /** Files every instance starts with; none when omitted. */
  root?: string;
  env?: Record<string, string>;
  ownerId?: string;
  /** "v2.0" makes IMDSv2 (tokens required, hop limit 2) the default, as on EC2. */
  imdsSupport?: "v2.0";
  rootVolume?: {
    encrypted?: boolean;
    volumeSize?: number;
    deviceName?: string;
  };
  tags?: Record<string, string>;
}

export interface AwsEndpointOptions {
  /** Where image and instance folders go. */
  root: string;
  images?: ImageSpec[];
  /** Spot prices by instance type and zone letter; catalog.ts has the defaults. */
  prices?: SpotPriceTable;
  region?: string;
  /** IAM roles by instance profile name; with it, only these profiles may be launched. */
  roles?: Record<string, RolePolicy>;
  policy?: Partial<LaunchPolicy>;
  /** SIGTERM to SIGKILL when an instance is terminated (default 5 s). */
  terminateGraceMs?: number;
  /** "env" (default) also puts the role's credentials in the instance's environment. */
  instanceCredentials?: "env" | "imds";
  instanceEnv?: Record<string, string>;
  s3Endpoint?: string;
  operatorAccessKeyId?: string;
}

export interface InstanceView {
  id: string;
  state: InstanceStateName;
  stateReason?: { code: string; message: string };
  imageId: string;
  instanceType: string;
  zone: string;
  subnetId: string;
  lifecycle: "spot" | "on-demand";
  fleetId?: string;
  launchTemplateId?: string;
  tags: Record<string, string>;
  /** The instance's folder: its working directory, `user-data` and `console.log`. */
  dir: string;
  pid?: number;
  exitCode?: number | null;
  exitSignal?: string | null;
  imdsUrl?: string;
  metadataOptions: InstanceRecord["metadataOptions"];
  shutdownBehavior: "stop" | "terminate";
  role?: string;
  /** The access key id of its role credentials, to match against `calls()`. */
  accessKeyId?: string;
  userData?: string;
  volumes: (BlockDevice & { volumeId: string })[];
  spotAction?: { action: string; time: string };
}

export interface LaunchTemplateView {
  id: string;
  name: string;
  data: LaunchData;
  tags: Record<string, string>;
}

export interface SecretLeak {
  parameter: string;
  where: string;
}

export interface AwsEndpoint {
  url: string;
  region: string;
  accountId: string;
  operatorCredentials: { accessKeyId: string; secretAccessKey: string };
  /** An EC2 client signed as the operator; destroyed by close(). */
  ec2Client(config?: Partial<EC2ClientConfig>): EC2Client;
  ssmClient(config?: Partial<SSMClientConfig>): SSMClient;
  registerImage(spec: ImageSpec): string;
  /** Launches matching the rule fail with InsufficientInstanceCapacity (after `afterInstances` succeed). */
  injectCapacityError(rule?: CapacityRule): { clear(): void };
  /** The next `count` calls of `action` (EC2 or SSM) fail with RequestLimitExceeded / ThrottlingException. */
  injectThrottle(action: string, count: number): void;
  /**
   * Posts a spot interruption notice (`spot/instance-action`, two minutes
   * ahead); with `enforceAfterMs` the endpoint also interrupts the instance then.
   */
  injectSpotInterruption(
    instanceId: string,
    options?: {
      action?: "terminate" | "stop" | "hibernate";
      enforceAfterMs?: number;
    },
  ): { action: string; time: string };
  injectRebalanceRecommendation(instanceId: string): { noticeTime: string };
  /**
   * Holds the next call of `action` (EC2 or SSM) before it is carried out:
   * `reached` resolves when one arrives, `release()` lets it go on. The
   * call completes on the endpoint even if its caller has died meanwhile,
   * as a request that reached AWS does.
   */
  holdAction(action: string): { reached: Promise<void>; release(): void };
  clearFaults(): void;
  instances(): InstanceView[];
  instance(id: string): InstanceView;
  /** Resolves once `predicate` holds for the instances (checked on every change and every 50 ms), or rejects at the deadline. */
  waitFor(
    predicate: (instances: InstanceView[]) => boolean,
    timeoutMs?: number,
  ): Promise<InstanceView[]>;
  launchTemplates(): LaunchTemplateView[];
  parameters(): SsmParameter[];
  calls(): ApiCall[];
  ssmReads(): SsmRead[];
  imdsRequests(instanceId: string): ImdsRequest[];
  /** SecureString values found in user-data, launch templates, tags or image settings. */
  secretLeaks(): SecretLeak[];
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

function accessKeyOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  return typeof auth === "string"
    ? /Credential=([^/,\s]+)\//.exec(auth)?.[1]
    : undefined;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString();
}

export async function startAwsEndpoint(
  options: AwsEndpointOptions,
): Promise<AwsEndpoint> {
  const region = options.region ?? DEFAULT_REGION;
  const state = new AwsState(region, options.prices ?? SPOT_PRICES);
  const operatorCredentials = {
    accessKeyId: options.operatorAccessKeyId ?? "AKIAFITSFLEETOPERATOR",
    secretAccessKey: "loopback-operator-secret",
  };
  const parameters = new Map<string, SsmParameter>();
  const holds = new Map<
    string,
    { arrived: () => void; released: Promise<void> }
  >();
  const holdIfAsked = async (action: string) => {
    const hold = holds.get(action);
    if (hold !== undefined) {
      holds.delete(action);
      hold.arrived();
      await hold.released;
    }
  };
  const reads: SsmRead[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const clients: { destroy(): void }[] = [];
  mkdirSync(join(options.root, "images"), { recursive: true });
  mkdirSync(join(options.root, "instances"), { recursive: true });

  // The URL is known only once the server listens; instances start later.
  const context = {
    endpointUrl: "",
    s3Endpoint: options.s3Endpoint,
    graceMs: options.terminateGraceMs ?? 5000,
    credentialsIn: options.instanceCredentials ?? "env",
    extraEnv: options.instanceEnv ?? {},
  };
  const processes = new InstanceProcesses(state, context);
  const ec2 = createEc2Actions({
    state,
    processes,
    root: options.root,
    policy: { ...DEFAULT_POLICY, ...options.policy },
    instanceProfiles:
      options.roles === undefined ? undefined : Object.keys(options.roles),
  });
  const ssm = createSsmActions({
    state,
    parameters,
    reads,
    roles: options.roles ?? {},
  });

  const callerOf = (req: IncomingMessage): Caller => {
    const accessKeyId = accessKeyOf(req);
    const instanceId =
      accessKeyId === undefined
        ? undefined
        : state.instanceKeys.get(accessKeyId);
    if (instanceId === undefined) {
      return { principal: "operator", accessKeyId };
    }
    return {
      principal: instanceId,
      accessKeyId,
      role: state.instances.get(instanceId)?.role,
    };
  };

  const handleEc2 = async (
    body: string,
    caller: Caller,
    res: ServerResponse,
  ) => {
    const params = parseQuery(body);
    const action = typeof params.Action === "string" ? params.Action : "";
    const call: ApiCall = {
      service: "ec2",
      action,
      accessKeyId: caller.accessKeyId,
      principal: caller.principal,
      at: new Date(),
    };
    state.calls.push(call);
    try {
      if (caller.accessKeyId === undefined) {
        throw new Ec2Error(
          "AuthFailure",
          "AWS was not able to validate the provided access credentials",
          401,
        );
      }
      await holdIfAsked(action);
      const handler = Object.hasOwn(ec2, action) ? ec2[action] : undefined;
      if (handler === undefined) {
        throw new Ec2Error(
          "InvalidAction",
          `The action ${action} is not valid for this web service.`,
        );
      }
      if (state.takeThrottle(action)) {
        throw new Ec2Error(
          "RequestLimitExceeded",
          "Request limit exceeded.",
          503,
        );
      }
      const result = await handler(params, caller.principal);
      res.writeHead(200, { "content-type": "text/xml;charset=UTF-8" });
      res.end(responseXml(action, result));
    } catch (error) {
      const e =
        error instanceof Ec2Error
          ? error
          : new Ec2Error("InternalError", (error as Error).message, 500);
      call.error = e.code;
      res.writeHead(e.status, { "content-type": "text/xml;charset=UTF-8" });
      res.end(errorXml(e));
    }
  };

  const handleSsm = async (
    target: string,
    body: string,
    caller: Caller,
    res: ServerResponse,
  ) => {
    const action = target.slice("AmazonSSM.".length);
    const call: ApiCall = {
      service: "ssm",
      action,
      accessKeyId: caller.accessKeyId,
      principal: caller.principal,
      at: new Date(),
    };
    state.calls.push(call);
    try {
      if (caller.accessKeyId === undefined) {
        throw new SsmError(
          "MissingAuthenticationTokenException",
          "Missing Authentication Token",
        );
      }
      await holdIfAsked(action);
      const handler = Object.hasOwn(ssm, action) ? ssm[action] : undefined;
      if (handler === undefined) {
        throw new SsmError(
          "UnknownOperationException",
          `Unknown operation ${action}`,
        );
      }
      if (state.takeThrottle(action)) {
        throw new SsmError("ThrottlingException", "Rate exceeded");
      }
      let input: unknown;
      try {
        input = body === "" ? {} : JSON.parse(body);
      } catch {
        throw new SsmError(
          "SerializationException",
          "The request body is not valid JSON.",
        );
      }
      const result = handler(input as Record<string, unknown>, caller);
      res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify(result));
    } catch (error) {
      const e =
        error instanceof SsmError
          ? error
          : new SsmError("InternalServerError", (error as Error).message, 500);
      call.error = e.code;
      res.writeHead(e.status, {
        "content-type": "application/x-amz-json-1.1",
        "x-amzn-errortype": e.code,
      });
      res.end(JSON.stringify({ __type: e.code, message: e.message }));
    }
  };

  const server = createServer((req, res) => {
    void (async () => {
      if (!LOOPBACK.has(req.socket.remoteAddress ?? "")) {
        res.writeHead(403).end();
        return;
      }
      const body = await readBody(req);
      const caller = callerOf(req);
      const target = req.headers["x-amz-target"];
      if (
        req.method === "POST" &&
        typeof target === "string" &&
        target.startsWith("AmazonSSM.")
      ) {
        await handleSsm(target, body, caller, res);
      } else if (
        req.method === "POST" &&
        String(req.headers["content-type"]).startsWith(
          "application/x-www-form-urlencoded",
        )
      ) {
        await handleEc2(body, caller, res);
      } else {
        res
          .writeHead(400, { "content-type": "text/plain" })
          .end("not an EC2 or SSM request");
      }
    })().catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
      }
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  context.endpointUrl = url;

  const registerImage = (spec: ImageSpec): string => {
    const id = newId("ami");
    let root = spec.root;
    if (root === undefined) {
      root = join(options.root, "images", id);
      mkdirSync(root, { recursive: true });
    }
    state.images.set(id, {
      id,
      name: spec.name,
      ownerId: spec.ownerId ?? state.accountId,
      state: "available",
      creationDate: new Date(),
      argv: spec.argv,
      env: spec.env ?? {},
      root,
      imdsSupport: spec.imdsSupport,
      rootDevice: {
        deviceName: spec.rootVolume?.deviceName ?? "/dev/xvda",
        encrypted: spec.rootVolume?.encrypted ?? false,
        volumeSize: spec.rootVolume?.volumeSize ?? 8,
      },
    });
    state.add(id, "image");
    state.setTags(id, Object.entries(spec.tags ?? {}));
    return id;
  };
  for (const spec of options.images ?? []) {
    registerImage(spec);
  }

  const record = (id: string): InstanceRecord => {
    const found = state.instances.get(id);
    if (found === undefined) {
      throw new Error(`no instance ${id}`);
    }
    return found;
  };

  const view = (i: InstanceRecord): InstanceView => ({
    id: i.id,
    state: i.state,
    stateReason: i.stateReason,
    imageId: i.imageId,
    instanceType: i.instanceType,
    zone: i.zone,
    subnetId: i.subnetId,
    lifecycle: i.lifecycle,
    fleetId: i.fleetId,
    launchTemplateId: i.launchTemplate?.id,
    tags: Object.fromEntries(state.tagsOf(i.id)),
    dir: i.dir,
    pid: i.pid,
    exitCode: i.exitCode,
    exitSignal: i.exitSignal,
    imdsUrl: i.imdsUrl,
    metadataOptions: { ...i.metadataOptions },
    shutdownBehavior: i.shutdownBehavior,
    role: i.role,
    accessKeyId: i.credentials?.accessKeyId,
    userData: i.userData,
    volumes: i.volumes.map((v) => ({ ...v })),
    spotAction: i.spotAction,
  });

  const instances = () => [...state.instances.values()].map(view);

  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  return {
    url,
    region,
    accountId: state.accountId,
    operatorCredentials,
    ec2Client(config = {}) {
      const client = new EC2Client({
        endpoint: url,
        region,
        credentials: operatorCredentials,
        ...config,
      });
      clients.push(client);
      return client;
    },
    ssmClient(config = {}) {
      const client = new SSMClient({
        endpoint: url,
        region,
        credentials: operatorCredentials,
        ...config,
      });
      clients.push(client);
      return client;
    },
    registerImage,
    injectCapacityError(rule = {}) {
      const entry = { ...rule, launched: 0 };
      state.capacityRules.push(entry);
      return {
        clear() {
          const at = state.capacityRules.indexOf(entry);
          if (at >= 0) {
            state.capacityRules.splice(at, 1);
          }
        },
      };
    },
    injectThrottle(action, count) {
      state.throttles.set(action, (state.throttles.get(action) ?? 0) + count);
    },
    injectSpotInterruption(
      instanceId,
      { action = "terminate", enforceAfterMs } = {},
    ) {
      const i = record(instanceId);
      if (i.lifecycle !== "spot") {
        throw new Error(`${instanceId} is not a spot instance`);
      }
      i.spotAction = { action, time: isoSeconds(Date.now() + 120_000) };
      if (enforceAfterMs !== undefined) {
        later(enforceAfterMs, () => {
          const reason = {
            code: "Server.SpotInstanceTermination",
            message:
              "Server.SpotInstanceTermination: Spot instance termination",
          };
          if (action === "terminate") {
            processes.terminate(i, reason);
          } else {
            i.stateReason = reason;
            processes.stop(i);
          }
        });
      }
      processes.changed();
      return i.spotAction;
    },
    injectRebalanceRecommendation(instanceId) {
      const i = record(instanceId);
      i.rebalance = { noticeTime: isoSeconds(Date.now()) };
      processes.changed();
      return i.rebalance;
    },
    holdAction(action) {
      let arrived = () => undefined as void;
      let release = () => undefined as void;
      const reached = new Promise<void>((resolve) => {
        arrived = resolve;
      });
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      holds.set(action, { arrived, released });
      return { reached, release };
    },
    clearFaults() {
      state.capacityRules.splice(0);
      state.throttles.clear();
    },
    instances,
    instance: (id) => view(record(id)),
    waitFor(predicate, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const now = instances();
          if (predicate(now)) {
            stop();
            resolve(now);
          }
        };
        const timer = setTimeout(() => {
          stop();
          reject(
            new Error(
              `instances did not reach the expected state within ${timeoutMs} ms: ${JSON.stringify(instances().map((i) => [i.id, i.state, i.exitCode]))}`,
            ),
          );
        }, timeoutMs);
        const unsubscribe = processes.onChange(check);
        // Also polled: a predicate may look at an instance's files, which change without an event.
        const poll = setInterval(check, 50);
        const stop = () => {
          clearTimeout(timer);
          clearInterval(poll);
          unsubscribe();
        };
        check();
      });
    },
    launchTemplates: () =>
      [...state.launchTemplates.values()].map((lt) => ({
        id: lt.id,
        name: lt.name,
        data: structuredClone(lt.data),
        tags: Object.fromEntries(state.tagsOf(lt.id)),
      })),
    parameters: () => [...parameters.values()].map((p) => ({ ...p })),
    calls: () => [...state.calls],
    ssmReads: () => [...reads],
    imdsRequests: (instanceId) => [
      ...(processes.imdsLogs.get(instanceId) ?? []),
    ],
    secretLeaks() {
      const secrets = [...parameters.values()].filter(
        (p) => p.type === "SecureString" && p.value.length >= 4,
      );
      const places: [string, string][] = [];
      for (const lt of state.launchTemplates.values()) {
        places.push([`launch template ${lt.name}`, JSON.stringify(lt.data)]);
        if (lt.data.userData !== undefined) {
          places.push([
            `launch template ${lt.name} user-data`,
            Buffer.from(lt.data.userData, "base64").toString(),
          ]);
        }
      }
      for (const i of state.instances.values()) {
        if (i.userData !== undefined) {
          places.push([
            `instance ${i.id} user-data`,
            Buffer.from(i.userData, "base64").toString(),
          ]);
        }
      }
      for (const [id, tags] of state.tags) {
        places.push([`tags of ${id}`, JSON.stringify([...tags])]);
      }
      for (const img of state.images.values()) {
        places.push([
          `image ${img.id}`,
          JSON.stringify({ argv: img.argv, env: img.env }),
        ]);
      }
      return secrets.flatMap((s) =>
        places
          .filter(([, text]) => text.includes(s.value))
          .map(([where]) => ({ parameter: s.name, where })),
      );
    },
    async close() {
      for (const timer of timers) {
        clearTimeout(timer);
      }
      timers.clear();
      await processes.closeAll();
      for (const client of clients) {
        client.destroy();
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
