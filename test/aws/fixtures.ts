/** What the loopback endpoint's tests share: an endpoint per test and small boot commands. */
import { readFileSync } from "node:fs";
import type { TestContext } from "node:test";

import { tempDir } from "../helpers/tmp.js";
import {
  type AwsEndpoint,
  type AwsEndpointOptions,
  startAwsEndpoint,
} from "./endpoint.js";

export async function testEndpoint(
  t: TestContext,
  options: Partial<AwsEndpointOptions> = {},
): Promise<AwsEndpoint> {
  const aws = await startAwsEndpoint({
    root: tempDir(t, "ff-aws-"),
    terminateGraceMs: 2000,
    ...options,
  });
  t.after(() => aws.close());
  return aws;
}

/** The environment an operator's CLI needs to reach the endpoint as the operator. */
export function operatorEnv(aws: AwsEndpoint): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_EC2: aws.url,
    AWS_ENDPOINT_URL_SSM: aws.url,
    AWS_REGION: aws.region,
    AWS_ACCESS_KEY_ID: aws.operatorCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.operatorCredentials.secretAccessKey,
  };
}

/** An instance that idles until it is terminated. */
export const IDLE = ["sleep", "600"];

/**
 * Whether a process (or process group, for a negative id) still runs. A
 * killed grandchild stays a zombie until whoever adopted it reaps it, so
 * a zombie counts as gone.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (pid < 0) {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return (
      stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
    );
  } catch {
    return false;
  }
}

/** Waits until no process in `pids` runs, or until the deadline; returns those still running. */
export async function untilGone(
  pids: number[],
  timeoutMs = 30_000,
): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return pids.filter(alive);
}

export const SECURE_LAUNCH = {
  MetadataOptions: {
    HttpTokens: "required" as const,
    HttpPutResponseHopLimit: 1,
  },
};
