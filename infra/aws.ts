/**
 * The AWS clients of the operator's commands and of the instance boot, and
 * the one translation of an AWS SDK failure into a FitsfleetError that
 * names what was asked for and says what to do.
 *
 * Region: one rule, `awsRegion`: a --region flag, else AWS_REGION, else
 * AWS_DEFAULT_REGION (an instance: its fleet configuration's). Endpoint:
 * the SDK itself honours AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_SSM (and
 * AWS_ENDPOINT_URL), which is how the loopback endpoint of the tests and an
 * instance on it are reached. Credentials always come from the SDK's
 * default chain: the operator's profile or variables, an instance's role
 * through IMDSv2.
 *
 * The SDK is imported only when a client is made: it takes a moment to
 * load, and command groups such as `rebuild` import this module for the
 * region rule alone.
 */
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { SSMClient } from "@aws-sdk/client-ssm";

import {
  ConfigError,
  ExternalServiceError,
  faultKind,
  FitsfleetError,
  isTransient,
  UsageError,
} from "../lib/errors.js";
import { redactText } from "../lib/redact.js";

const REGION_PROBLEM =
  "region: not set (no --region, AWS_REGION or AWS_DEFAULT_REGION). Pass --region or set AWS_REGION";

/** The region: the flag, else AWS_REGION, else AWS_DEFAULT_REGION; none is a ConfigError naming --region. */
export function awsRegion(
  flag: string | undefined,
  env: Record<string, string | undefined> = process.env,
): string {
  for (const region of [flag, env.AWS_REGION, env.AWS_DEFAULT_REGION]) {
    if (region !== undefined && region.trim() !== "") {
      return region.trim();
    }
  }
  throw new ConfigError([REGION_PROBLEM]);
}

/** An EC2 client for `region` on the default credential chain; destroy() it when done. */
export async function ec2Client(region: string): Promise<EC2Client> {
  const { EC2Client } = await import("@aws-sdk/client-ec2");
  return new EC2Client({ region });
}

/** An SSM client for `region` on the default credential chain; destroy() it when done. */
export async function ssmClient(region: string): Promise<SSMClient> {
  const { SSMClient } = await import("@aws-sdk/client-ssm");
  return new SSMClient({ region });
}

export type AwsService = "ec2" | "ssm" | "s3";

/** What was asked of AWS when it failed, for the message and the advice. */
export interface AwsRequest {
  service: AwsService;
  /** The API action, such as PutParameter. */
  action: string;
  /** What it was about: a parameter name, an instance id. */
  resource: string;
  /** The flag that named the resource, for an answer that it is wrong (--image). */
  flag?: string;
  /** The IAM action the caller needs (default service:action). */
  permission?: string;
  region?: string;
  /** The endpoint the client used, when known (see clientTarget). */
  endpoint?: string;
  /** Who called: decides the advice on permissions (default operator). */
  caller?: "operator" | "instance";
  env?: Record<string, string | undefined>;
}

const SERVICE_NAMES: Record<AwsService, string> = {
  ec2: "EC2",
  ssm: "SSM Parameter Store",
  s3: "S3",
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

/** `awsFailure` with the region and endpoint `client` sends to. */
export async function clientFailure(
  client: EC2Client | SSMClient,
  error: unknown,
  request: AwsRequest,
): Promise<FitsfleetError> {
  return awsFailure(error, { ...(await clientTarget(client)), ...request });
}

/** Sends one request through `run`; a failure is thrown as `clientFailure` says. */
export async function awsCall<T>(
  client: EC2Client | SSMClient,
  request: AwsRequest,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw await clientFailure(client, error, request);
  }
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

/** AWS says the request names something wrong or missing: the operator's to fix. */
const WRONG_REQUEST =
  /^Invalid|NotFound|Malformed|MissingParameter|ValidationError|ValidationException|Unsupported/;

interface AwsLikeError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

function errorMessage(error: unknown): string {
  return redactText(error instanceof Error ? error.message : String(error));
}

/**
 * The failure of one AWS request as a FitsfleetError. AWS's messages name
 * actions and ARNs, never parameter values, and pass the redactor anyway.
 *
 * No credentials or no region: a ConfigError (exit 2). Refused (not
 * allowed, or credentials not accepted): ExternalServiceError (4), never
 * worth a retry, pointing at `fitsfleet infra iam-policy`. Throttled, or
 * not reached (naming the endpoint): ExternalServiceError, transient. A
 * request naming something wrong (NotFound, Invalid…): a UsageError (2)
 * naming the flag or resource. Anything else: ExternalServiceError.
 */
export function awsFailure(
  error: unknown,
  request: AwsRequest,
): FitsfleetError {
  if (error instanceof FitsfleetError) {
    return error;
  }
  const name = errorName(error);
  const message = errorMessage(error);
  const service = SERVICE_NAMES[request.service];
  const what = `${request.action} on ${request.resource}`;
  const permission =
    request.permission ?? `${request.service}:${request.action}`;
  const caller = request.caller ?? "operator";
  const context = {
    service: request.service,
    action: request.action,
    resource: request.resource,
    awsError: name,
  };
  if (name === "CredentialsProviderError") {
    return new ConfigError(
      [
        `AWS credentials: none found for ${permission} on ${request.resource} (${message})`,
      ],
      {
        cause: error,
        context,
        suggestion:
          caller === "instance"
            ? "launch the instance with the workers' instance profile (IamInstanceProfile) and IMDSv2 enabled"
            : "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary credentials), or run `aws sso login`",
      },
    );
  }
  if (/Region is missing/i.test(message)) {
    return new ConfigError([`${REGION_PROBLEM} (for ${service} ${what})`], {
      cause: error,
      context,
    });
  }
  if (NOT_AUTHORISED.has(name)) {
    const prefix = request.service === "ssm" ? " for this prefix" : "";
    return new ExternalServiceError(
      request.service,
      `${service} refused ${what}: the caller may not (${name}: ${message})`,
      {
        cause: error,
        context,
        fault: "permanent",
        suggestion:
          caller === "instance"
            ? `the instance role needs ${permission} on ${request.resource}: attach the worker policy that \`fitsfleet infra iam-policy --which worker\` prints${prefix}`
            : `you need ${permission} on ${request.resource}: attach the operator policy that \`fitsfleet infra iam-policy --which operator\` prints${prefix}, or use a profile that has it`,
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
      { cause: error, context, suggestion: "run it again in a minute" },
    );
  }
  const status = (error as AwsLikeError | undefined)?.$metadata?.httpStatusCode;
  if (status === undefined && isTransient(error)) {
    // No HTTP answer at all: the network, the endpoint or the region.
    const endpoint =
      request.endpoint ??
      endpointOf(request.service, request.region, request.env);
    return new ExternalServiceError(
      request.service,
      `${service} at ${endpoint} could not be reached or is not answering, for ${what} (${name}: ${message})`,
      {
        cause: error,
        context: { ...context, endpoint },
        suggestion: `check the network and the region (--region, AWS_REGION) or endpoint (AWS_ENDPOINT_URL_${request.service.toUpperCase()}), then run it again`,
      },
    );
  }
  if (WRONG_REQUEST.test(name)) {
    return new UsageError(
      request.flag === undefined
        ? `${service} refused ${what} (${name}: ${message})`
        : `${request.flag} ${request.resource}: ${service} refused ${request.action} (${name}: ${message})`,
      {
        cause: error,
        context,
        suggestion: `check ${request.flag ?? "the resource named"}: its value must exist in this account and region${request.region === undefined ? "" : ` (${request.region})`}`,
      },
    );
  }
  const fault = faultKind(error);
  return new ExternalServiceError(
    request.service,
    `${service} failed ${what} (${name}: ${message})`,
    {
      cause: error,
      context,
      fault,
      suggestion: fault === "transient" ? "run it again later" : undefined,
    },
  );
}

/** True for an error that says the resource is already gone. */
export function isNotFound(error: unknown): boolean {
  const name = (error as AwsLikeError | undefined)?.name ?? "";
  return /NotFound|NotFoundException|DoesNotExist/i.test(name);
}
