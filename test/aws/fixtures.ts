/** What the loopback endpoint's tests share: an endpoint per test and small boot commands. */
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

/** An instance that idles until it is terminated. */
export const IDLE = ["sleep", "600"];

/** Whether a process (or process group, for a negative id) still exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const SECURE_LAUNCH = {
  MetadataOptions: {
    HttpTokens: "required" as const,
    HttpPutResponseHopLimit: 1,
  },
};
