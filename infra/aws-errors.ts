/**
 * One translation of AWS SDK errors into fitsfleet errors: what failed, on
 * which resource, and what to do. Messages come from AWS (never from our
 * requests), so no secret can travel in them; they are redacted anyway.
 */
import {
  ExternalServiceError,
  FitsfleetError,
  PreconditionError,
  UsageError,
} from "../lib/errors.js";
import { redactText } from "../lib/redact.js";

interface AwsLikeError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

const DENIED = new Set([
  "AccessDenied",
  "AccessDeniedException",
  "UnauthorizedOperation",
  "AuthFailure",
  "InvalidClientTokenId",
  "UnrecognizedClientException",
  "ExpiredToken",
  "ExpiredTokenException",
  "MissingAuthenticationTokenException",
]);

const NETWORK = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);

/** `what`: the action and its object, as the operator would say it ("create the launch template fitsfleet-x"). */
export function describeAwsError(
  error: unknown,
  what: string,
  service = "EC2",
): FitsfleetError {
  if (error instanceof FitsfleetError) {
    return error;
  }
  const e = (error ?? {}) as AwsLikeError;
  const name = e.name ?? "Error";
  const message = redactText(e.message ?? String(error));
  const detail = `${service}: cannot ${what}: ${name}: ${message}`;
  if (DENIED.has(name)) {
    return new PreconditionError(detail, {
      cause: error,
      suggestion:
        "check the AWS credentials in use (AWS_PROFILE, AWS_ACCESS_KEY_ID) and that their policy allows this; `fitsfleet infra iam-policy` prints the least-privilege policy",
    });
  }
  if (
    NETWORK.has(e.code ?? "") ||
    NETWORK.has(name) ||
    name === "TimeoutError" ||
    (e.$metadata?.httpStatusCode ?? 0) >= 500
  ) {
    return new ExternalServiceError(service, detail, {
      cause: error,
      suggestion: `check the network path to ${service} (AWS_ENDPOINT_URL_${service.toUpperCase()} if set) and try again`,
    });
  }
  if (
    /^Invalid|NotFound|Malformed|MissingParameter|ValidationError|Unsupported/.test(
      name,
    )
  ) {
    return new UsageError(detail, {
      cause: error,
      suggestion: "check the named flag or resource id",
    });
  }
  return new FitsfleetError("aws", 1, detail, { cause: error });
}

/** True for an error that says the resource is already gone. */
export function isNotFound(error: unknown): boolean {
  const name = (error as AwsLikeError | undefined)?.name ?? "";
  return /NotFound|NotFoundException|DoesNotExist/i.test(name);
}
