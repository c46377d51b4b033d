/**
 * Instances as local processes. Each runs its image's boot command under
 * `init.mjs`, the leader of a process group of its own, in a folder of its
 * own (a copy of the image's root), with stdout and stderr in `console.log`
 * there, the user-data in `user-data`, its own metadata service, and an
 * environment that points the AWS SDK at the endpoint, at that metadata
 * service and (unless credentials come from the metadata service only) at
 * its role's credentials. Nothing else of the test's environment leaks in.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { fileURLToPath } from "node:url";

import { type Imds, type ImdsRequest, startImds } from "./imds.js";
import type { AwsState, ImageRecord, InstanceRecord } from "./state.js";

export const CONSOLE_LOG = "console.log";
export const USER_DATA_FILE = "user-data";

export interface InstanceContext {
  endpointUrl: string;
  s3Endpoint?: string;
  /** SIGTERM to SIGKILL, when an instance is terminated or stopped. */
  graceMs: number;
  /** "env" puts the role's credentials in the environment too; "imds" leaves the SDK to fetch them. */
  credentialsIn: "env" | "imds";
  extraEnv: Record<string, string>;
}

interface Live {
  child: ChildProcess;
  imds: Imds;
  exited: Promise<void>;
  killTimer?: NodeJS.Timeout;
}

const INIT = fileURLToPath(new URL("./init.mjs", import.meta.url));

function killGroup(pid: number | undefined): void {
  if (pid === undefined) {
    return;
  }
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // The group is already gone.
  }
}

export class InstanceProcesses {
  private readonly live = new Map<string, Live>();
  readonly imdsLogs = new Map<string, ImdsRequest[]>();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly state: AwsState,
    private readonly context: InstanceContext,
  ) {}

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(): void {
    for (const listener of [...this.listeners]) {
      listener();
    }
  }

  issueCredentials(instance: InstanceRecord): void {
    const accessKeyId = `ASIA${randomBytes(8).toString("hex").toUpperCase()}`;
    instance.credentials = {
      accessKeyId,
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: randomBytes(48).toString("base64"),
    };
    this.state.instanceKeys.set(accessKeyId, instance.id);
  }

  async start(instance: InstanceRecord, image: ImageRecord): Promise<void> {
    mkdirSync(instance.dir, { recursive: true });
    if (existsSync(image.root)) {
      // Symlinks as they are, as on a disk made from a snapshot.
      cpSync(image.root, instance.dir, {
        recursive: true,
        verbatimSymlinks: true,
      });
    }
    if (instance.userData !== undefined) {
      writeFileSync(
        join(instance.dir, USER_DATA_FILE),
        Buffer.from(instance.userData, "base64"),
        {
          mode: 0o600,
        },
      );
    }
    const imds = await startImds(instance, this.state);
    instance.imdsUrl = imds.url;
    this.imdsLogs.set(instance.id, imds.requests);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: instance.dir,
      ...image.env,
      ...this.context.extraEnv,
      AWS_REGION: this.state.region,
      AWS_DEFAULT_REGION: this.state.region,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
      AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: "IPv4",
      AWS_EC2_METADATA_V1_DISABLED: "true",
      AWS_ENDPOINT_URL_EC2: this.context.endpointUrl,
      AWS_ENDPOINT_URL_SSM: this.context.endpointUrl,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    };
    if (this.context.s3Endpoint !== undefined) {
      env.AWS_ENDPOINT_URL_S3 = this.context.s3Endpoint;
    }
    if (
      this.context.credentialsIn === "env" &&
      instance.credentials !== undefined
    ) {
      env.AWS_ACCESS_KEY_ID = instance.credentials.accessKeyId;
      env.AWS_SECRET_ACCESS_KEY = instance.credentials.secretAccessKey;
      env.AWS_SESSION_TOKEN = instance.credentials.sessionToken;
    }
    const log = openSync(join(instance.dir, CONSOLE_LOG), "a", 0o600);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [INIT, ...image.argv], {
        cwd: instance.dir,
        env,
        // A group of its own, so terminating the instance reaches every process it started.
        detached: true,
        stdio: ["pipe", log, log],
      });
    } finally {
      closeSync(log);
    }
    instance.pid = child.pid;
    const exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        this.onExit(instance, code, signal);
        resolve();
      });
      child.once("error", () => {
        this.onExit(instance, null, null);
        resolve();
      });
    });
    // The endpoint never writes to init's stdin; it only holds the pipe open.
    (child.stdin as Writable).on("error", () => undefined);
    this.live.set(instance.id, { child, imds, exited });
    child.once("spawn", () => {
      if (instance.state === "pending") {
        instance.state = "running";
        this.changed();
      }
    });
  }

  private onExit(
    instance: InstanceRecord,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    const live = this.live.get(instance.id);
    killGroup(instance.pid);
    if (live?.killTimer !== undefined) {
      clearTimeout(live.killTimer);
    }
    instance.exitCode = code;
    instance.exitSignal = signal;
    if (instance.state === "shutting-down") {
      instance.state = "terminated";
    } else if (instance.state === "stopping") {
      instance.state = "stopped";
    } else if (instance.state === "pending" || instance.state === "running") {
      // The boot command ended by itself: the instance shut itself down.
      instance.state =
        instance.shutdownBehavior === "terminate" ? "terminated" : "stopped";
      instance.stateReason = {
        code: "Client.InstanceInitiatedShutdown",
        message:
          "Client.InstanceInitiatedShutdown: Instance initiated shutdown",
      };
      instance.stateTransitionReason = `User initiated (${new Date().toISOString()})`;
    }
    void live?.imds.close();
    this.live.delete(instance.id);
    this.changed();
  }

  /** Asks the instance to go (SIGTERM), then makes it (SIGKILL after the grace period). */
  private shutDown(
    instance: InstanceRecord,
    next: "shutting-down" | "stopping",
  ): void {
    const live = this.live.get(instance.id);
    instance.state = next;
    this.changed();
    if (live === undefined) {
      instance.state = next === "shutting-down" ? "terminated" : "stopped";
      this.changed();
      return;
    }
    live.child.kill("SIGTERM");
    live.killTimer = setTimeout(
      () => killGroup(instance.pid),
      this.context.graceMs,
    );
  }

  terminate(
    instance: InstanceRecord,
    reason: { code: string; message: string },
  ): void {
    if (instance.state === "terminated" || instance.state === "shutting-down") {
      return;
    }
    instance.stateReason = reason;
    instance.stateTransitionReason = `User initiated (${new Date().toISOString()})`;
    this.shutDown(instance, "shutting-down");
  }

  stop(instance: InstanceRecord): void {
    if (instance.state !== "running" && instance.state !== "pending") {
      return;
    }
    instance.stateReason = {
      code: "Client.UserInitiatedShutdown",
      message: "Client.UserInitiatedShutdown: User initiated shutdown",
    };
    this.shutDown(instance, "stopping");
  }

  /** Kills every instance at once and waits until each process group is gone. */
  async closeAll(): Promise<void> {
    const all = [...this.live.entries()];
    for (const [id, live] of all) {
      const instance = this.state.instances.get(id);
      if (instance !== undefined && instance.state !== "shutting-down") {
        instance.state = "shutting-down";
        instance.stateReason = {
          code: "Client.EndpointClosed",
          message: "The endpoint closed",
        };
      }
      killGroup(live.child.pid);
    }
    await Promise.all(all.map(([, live]) => live.exited));
    await Promise.all(all.map(([, live]) => live.imds.close()));
  }
}
