/**
 * The AWS clients of the operator's commands and of the instance boot, and
 * the one translation of an AWS SDK failure into a FitsfleetError that
 * names what was asked for and says what to do.
 *
 * Region: the caller's (a --region flag, the fleet configuration), else the
 * SDK's own chain (AWS_REGION, the profile). Endpoint: the SDK itself
 * honours AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_SSM (and
 * AWS_ENDPOINT_URL), which is how the loopback endpoint of the tests and an
 * instance on it are reached; `endpoint` overrides them for both clients.
 * Credentials always come from the SDK's default chain: the operator's
 * profile or variables, an instance's role through IMDSv2.
 */
import { EC2Client } from "@aws-sdk/client-ec2";
import { SSMClient } from "@aws-sdk/client-ssm";

import {
  ConfigError,
  ExternalServiceError,
  type FitsfleetError,
  isTransient,
} from "../lib/errors.js";
import { redactText } from "../lib/redact.js";

export interface AwsClientOptions {
  region?: string;
  endpoint?: string;
}

export interface AwsClients {
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  /** Closes both clients' sockets, so that a command's process can end. */
  destroy(): void;
}

export function awsClients(options: AwsClientOptions = {}): AwsClients {
  const config = {
    ...(options.region === undefined ? {} : { region: options.region }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
  };
  const ec2 = new EC2Client(config);
  const ssm = new SSMClient(config);
  return {
    ec2,
    ssm,
    destroy() {
      ec2.destroy();
      ssm.destroy();
    },
  };
}

export type AwsService = "ec2" | "ssm";

/** What was asked of AWS when it failed, for the message and the advice. */
export interface AwsRequest {
  service: AwsService;
  /** The API action, such as PutParameter. */
  action: string;
  /** What it was about: a parameter name, an instance id. */
  resource: string;
  /** The IAM action the caller needs, such as ssm:PutParameter. */
  permission: string;
  region?: string;
  /** The endpoint the client used, when known (see clientTarget). */
  endpoint?: string;
  /** Who called: decides the advice on permissions. */
  caller: "operator" | "instance";
  env?: Record<string, string | undefined>;
}

const SERVICE_NAMES: Record<AwsService, string> = {
  ec2: "EC2",
  ssm: "SSM Parameter Store",
};

/** The endpoint the SDK uses for `service`, for messages. */
export function endpointOf(
  service: AwsService,
  region: string | undefined,
  env: Record<string, string | undefined> = process.env,
): string {
  return (
    env[`AWS_ENDPOINT_URL_${service.toUpperCase()}`] ??
    env.AWS_ENDPOINT_URL ??
    `https://${service}.${region ?? "<region>"}.amazonaws.com`
  );
}

/** The region and endpoint a client sends to, for messages; what cannot be resolved is left out. */
export async function clientTarget(
  client: EC2Client | SSMClient,
): Promise<{ region?: string; endpoint?: string }> {
  const target: { region?: string; endpoint?: string } = {};
  try {
    target.region = await client.config.region();
  } catch {
    // No region anywhere: the request itself fails and says so.
  }
  try {
    const fixed = await client.config.endpoint?.();
    target.endpoint =
      fixed === undefined
        ? await client.config.serviceConfiguredEndpoint?.()
        : `${fixed.protocol}//${fixed.hostname}${fixed.port === undefined ? "" : `:${fixed.port}`}${fixed.path === "/" ? "" : fixed.path}`;
  } catch {
    // Resolved per request from the region: endpointOf says which.
  }
  return target;
}

/** AWS refused who the caller is (or is not). */
const NOT_AUTHENTICATED = new Set([
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "ExpiredTokenException",
  "ExpiredToken",
  "AuthFailure",
  "MissingAuthenticationTokenException",
]);

/** AWS knows the caller, who may not do this. */
const NOT_AUTHORISED = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnauthorizedOperation",
]);

const THROTTLED = new Set([
  "ThrottlingException",
  "Throttling",
  "RequestLimitExceeded",
  "TooManyUpdates",
]);

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

function errorMessage(error: unknown): string {
  return redactText(error instanceof Error ? error.message : String(error));
}

/**
 * The failure of one AWS request as a FitsfleetError. AWS's messages name
 * actions and ARNs, never parameter values, and pass the redactor anyway.
 */
export function awsFailure(
  error: unknown,
  request: AwsRequest,
): FitsfleetError {
  const name = errorName(error);
  const message = errorMessage(error);
  const service = SERVICE_NAMES[request.service];
  const what = `${request.action} on ${request.resource}`;
  const context = {
    service: request.service,
    action: request.action,
    resource: request.resource,
    awsError: name,
  };
  if (name === "CredentialsProviderError") {
    return new ConfigError(
      [
        `AWS credentials: none found for ${request.permission} on ${request.resource} (${message})`,
      ],
      {
        cause: error,
        context,
        suggestion:
          request.caller === "instance"
            ? "launch the instance with the workers' instance profile (IamInstanceProfile) and IMDSv2 enabled"
            : "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary credentials), or run `aws sso login`",
      },
    );
  }
  if (/Region is missing/i.test(message)) {
    return new ConfigError(
      [
        `region: not set for ${service} ${what}. Pass --region or set AWS_REGION`,
      ],
      { cause: error, context },
    );
  }
  if (NOT_AUTHORISED.has(name)) {
    return new ExternalServiceError(
      request.service,
      `${service} refused ${what}: the caller may not (${name}: ${message})`,
      {
        cause: error,
        context,
        fault: "permanent",
        suggestion:
          request.caller === "instance"
            ? `the instance role needs ${request.permission} on ${request.resource}: attach the worker policy that \`fitsfleet infra iam-policy --which worker\` prints for this secrets prefix`
            : `you need ${request.permission} on ${request.resource}: attach the operator policy that \`fitsfleet infra iam-policy --which operator\` prints for this prefix, or use a profile that has it`,
      },
    );
  }
  if (NOT_AUTHENTICATED.has(name)) {
    return new ExternalServiceError(
      request.service,
      `${service} did not accept the AWS credentials for ${what} (${name}: ${message})`,
      {
        cause: error,
        context,
        fault: "permanent",
        suggestion:
          "check which credentials are in use (`aws sts get-caller-identity`); refresh an expired session, or set AWS_PROFILE to the right profile",
      },
    );
  }
  if (THROTTLED.has(name)) {
    return new ExternalServiceError(
      request.service,
      `${service} throttled ${what} after the SDK's retries (${name}: ${message})`,
      {
        cause: error,
        context,
        suggestion: "run it again in a minute",
      },
    );
  }
  if (isTransient(error)) {
    const endpoint =
      request.endpoint ??
      endpointOf(request.service, request.region, request.env);
    return new ExternalServiceError(
      request.service,
      `${service} at ${endpoint} could not be reached or is not answering, for ${what} (${name}: ${message})`,
      {
        cause: error,
        context: { ...context, endpoint },
        suggestion:
          "check the network and the region (--region, AWS_REGION) or endpoint (AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL_EC2), then run it again",
      },
    );
  }
  return new ExternalServiceError(
    request.service,
    `${service} failed ${what} (${name}: ${message})`,
    { cause: error, context, fault: "permanent" },
  );
}
