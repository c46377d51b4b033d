/**
 * The one translation of AWS SDK failures (infra/aws.ts) and the one
 * region rule, on errors shaped as the SDK throws them; the same paths
 * through the real CLI and the loopback endpoint are in test/fleet.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { awsFailure, awsRegion } from "../../infra/aws.js";
import {
  ConfigError,
  EXIT,
  ExternalServiceError,
  UsageError,
} from "../../lib/errors.js";

function sdkError(
  name: string,
  message: string,
  extra: Record<string, unknown> = {},
): Error {
  return Object.assign(new Error(message), { name, ...extra });
}

const DESCRIBE_IMAGE = {
  service: "ec2",
  action: "DescribeImages",
  resource: "ami-0123",
  flag: "--image",
  region: "us-west-2",
} as const;

describe("AWS failures", () => {
  it("a caller that may not: exit 4, naming the action, the resource and the policy to attach", () => {
    const e = awsFailure(
      sdkError("UnauthorizedOperation", "You are not authorized", {
        $metadata: { httpStatusCode: 403 },
      }),
      DESCRIBE_IMAGE,
    );
    assert.ok(e instanceof ExternalServiceError);
    assert.equal(e.exitCode, EXIT.external);
    assert.equal(e.fault, "permanent");
    assert.match(
      e.message,
      /EC2 refused DescribeImages on ami-0123: the caller may not/,
    );
    assert.match(e.suggestion ?? "", /you need ec2:DescribeImages on ami-0123/);
    assert.match(e.suggestion ?? "", /fitsfleet infra iam-policy/);
  });

  it("no credentials, or no region: a configuration error (exit 2)", () => {
    const none = awsFailure(
      sdkError("CredentialsProviderError", "Could not load credentials"),
      DESCRIBE_IMAGE,
    );
    assert.ok(none instanceof ConfigError);
    assert.equal(none.exitCode, EXIT.usage);
    assert.match(
      none.message,
      /AWS credentials: none found for ec2:DescribeImages/,
    );
    const region = awsFailure(
      sdkError("Error", "Region is missing"),
      DESCRIBE_IMAGE,
    );
    assert.ok(region instanceof ConfigError);
    assert.match(region.message, /region: not set .*Pass --region/);
  });

  it("no answer at all: transient, naming the endpoint", () => {
    const e = awsFailure(
      sdkError("Error", "connect ECONNREFUSED 127.0.0.1:9", {
        code: "ECONNREFUSED",
        $metadata: { attempts: 3 },
      }),
      { ...DESCRIBE_IMAGE, env: {} },
    );
    assert.ok(e instanceof ExternalServiceError);
    assert.equal(e.fault, "transient");
    assert.match(
      e.message,
      /EC2 at https:\/\/ec2\.us-west-2\.amazonaws\.com could not be reached/,
    );
    assert.match(e.suggestion ?? "", /AWS_ENDPOINT_URL_EC2/);
  });

  it("a request naming something wrong: a usage error naming the flag", () => {
    const e = awsFailure(
      sdkError("InvalidAMIID.NotFound", "The image id does not exist", {
        $metadata: { httpStatusCode: 400 },
      }),
      DESCRIBE_IMAGE,
    );
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /^--image ami-0123: EC2 refused DescribeImages/);
  });

  it("throttling after the SDK's retries is transient", () => {
    const e = awsFailure(
      sdkError("RequestLimitExceeded", "Request limit exceeded", {
        $metadata: { httpStatusCode: 503 },
      }),
      DESCRIBE_IMAGE,
    );
    assert.equal(e.fault, "transient");
    assert.match(e.message, /throttled DescribeImages/);
  });

  it("finds the region in the flag, then AWS_REGION, then AWS_DEFAULT_REGION", () => {
    const env = { AWS_REGION: "eu-west-1", AWS_DEFAULT_REGION: "us-east-2" };
    assert.equal(awsRegion("ap-south-1", env), "ap-south-1");
    assert.equal(awsRegion(undefined, env), "eu-west-1");
    assert.equal(
      awsRegion(undefined, { AWS_DEFAULT_REGION: "us-east-2" }),
      "us-east-2",
    );
    assert.throws(
      () => awsRegion(undefined, { AWS_REGION: "" }),
      (e: unknown) => e instanceof ConfigError && /--region/.test(e.message),
    );
  });
});
