/**
 * Parameter Store over the SSM JSON 1.1 protocol (`X-Amz-Target:
 * AmazonSSM.<Action>`, a JSON body, errors as `{"__type": …}`). Who may read
 * what is a simple model of IAM: the operator may do anything; an instance
 * may only read parameters under its role's prefixes. Every read is recorded
 * with its caller, so a test can show that a secret reached the instance
 * through SSM and its role, never through user-data.
 */
import { randomBytes } from "node:crypto";

import type { AwsState } from "./state.js";

export interface RolePolicy {
  /** Parameter name prefixes the role may read, like "/fitsfleet/run-1/". */
  ssmReadPrefixes?: string[];
}

export interface SsmParameter {
  name: string;
  type: "String" | "StringList" | "SecureString";
  value: string;
  version: number;
  lastModified: Date;
  description?: string;
  keyId?: string;
}

export interface Caller {
  /** "operator" or an instance id. */
  principal: string;
  accessKeyId?: string;
  role?: string;
}

export interface SsmRead {
  action: string;
  name: string;
  principal: string;
  accessKeyId?: string;
  type?: SsmParameter["type"];
  withDecryption: boolean;
  allowed: boolean;
}

export class SsmError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = "SsmError";
  }
}

export type SsmAction = (
  body: Record<string, unknown>,
  caller: Caller,
) => Record<string, unknown>;

export interface SsmContext {
  state: AwsState;
  parameters: Map<string, SsmParameter>;
  reads: SsmRead[];
  roles: Record<string, RolePolicy>;
}

function stringField(
  body: Record<string, unknown>,
  name: string,
  requiredField = true,
): string {
  const value = body[name];
  if (typeof value === "string") {
    return value;
  }
  if (!requiredField && value === undefined) {
    return "";
  }
  throw new SsmError(
    "ValidationException",
    `1 validation error detected: Value at '${name.charAt(0).toLowerCase() + name.slice(1)}' failed to satisfy constraint: Member must not be null`,
  );
}

function stringList(body: Record<string, unknown>, name: string): string[] {
  const value = body[name];
  return Array.isArray(value)
    ? value.filter((v): v is string => typeof v === "string")
    : [];
}

export function createSsmActions(ctx: SsmContext): Record<string, SsmAction> {
  const { state, parameters, reads } = ctx;
  const arn = (name: string) =>
    `arn:aws:ssm:${state.region}:${state.accountId}:parameter${name.startsWith("/") ? "" : "/"}${name}`;

  const mayRead = (caller: Caller, name: string): boolean => {
    if (caller.principal === "operator") {
      return true;
    }
    const prefixes =
      caller.role === undefined
        ? []
        : (ctx.roles[caller.role]?.ssmReadPrefixes ?? []);
    return prefixes.some((p) => name.startsWith(p));
  };

  const denied = (caller: Caller, action: string, name: string) =>
    new SsmError(
      "AccessDeniedException",
      `User: arn:aws:sts::${state.accountId}:assumed-role/${caller.role ?? "none"}/${caller.principal} is not authorized to perform: ssm:${action} on resource: ${arn(name)} because no identity-based policy allows the ssm:${action} action`,
    );

  const ciphertext = (p: SsmParameter) =>
    Buffer.concat([
      Buffer.from([1, 2, 2, 0]),
      randomBytes(24),
      Buffer.from(String(p.version)),
    ]).toString("base64");

  const view = (p: SsmParameter, withDecryption: boolean) => ({
    Name: p.name,
    Type: p.type,
    Value:
      p.type === "SecureString" && !withDecryption ? ciphertext(p) : p.value,
    Version: p.version,
    LastModifiedDate: p.lastModified.getTime() / 1000,
    ARN: arn(p.name),
    DataType: "text",
  });

  const read = (
    action: string,
    caller: Caller,
    name: string,
    withDecryption: boolean,
  ): SsmParameter | undefined => {
    const allowed = mayRead(caller, name);
    const p = parameters.get(name);
    reads.push({
      action,
      name,
      principal: caller.principal,
      accessKeyId: caller.accessKeyId,
      type: p?.type,
      withDecryption,
      allowed,
    });
    if (!allowed) {
      throw denied(caller, action, name);
    }
    return p;
  };

  const operatorOnly = (caller: Caller, action: string, name: string) => {
    if (caller.principal !== "operator") {
      throw denied(caller, action, name);
    }
  };

  return {
    PutParameter(body, caller) {
      const name = stringField(body, "Name");
      operatorOnly(caller, "PutParameter", name);
      const value = stringField(body, "Value");
      const type = (body.Type as SsmParameter["type"] | undefined) ?? "String";
      if (!["String", "StringList", "SecureString"].includes(type)) {
        throw new SsmError(
          "ValidationException",
          `Invalid parameter type ${type}`,
        );
      }
      const existing = parameters.get(name);
      if (existing !== undefined && body.Overwrite !== true) {
        throw new SsmError(
          "ParameterAlreadyExists",
          "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
        );
      }
      if (
        existing !== undefined &&
        existing.type !== type &&
        body.Type !== undefined
      ) {
        throw new SsmError(
          "HierarchyTypeMismatchException",
          "The parameter type cannot be changed.",
        );
      }
      const p: SsmParameter = {
        name,
        type: existing?.type ?? type,
        value,
        version: (existing?.version ?? 0) + 1,
        lastModified: new Date(),
        description:
          typeof body.Description === "string"
            ? body.Description
            : existing?.description,
        keyId: typeof body.KeyId === "string" ? body.KeyId : existing?.keyId,
      };
      parameters.set(name, p);
      return { Version: p.version, Tier: "Standard" };
    },

    GetParameter(body, caller) {
      const name = stringField(body, "Name");
      const withDecryption = body.WithDecryption === true;
      const p = read("GetParameter", caller, name, withDecryption);
      if (p === undefined) {
        throw new SsmError("ParameterNotFound", `Parameter ${name} not found.`);
      }
      return { Parameter: view(p, withDecryption) };
    },

    GetParameters(body, caller) {
      const names = stringList(body, "Names");
      if (names.length === 0 || names.length > 10) {
        throw new SsmError(
          "ValidationException",
          "Names must hold 1 to 10 names.",
        );
      }
      const withDecryption = body.WithDecryption === true;
      const found: ReturnType<typeof view>[] = [];
      const invalid: string[] = [];
      for (const name of names) {
        const p = read("GetParameters", caller, name, withDecryption);
        if (p === undefined) {
          invalid.push(name);
        } else {
          found.push(view(p, withDecryption));
        }
      }
      return { Parameters: found, InvalidParameters: invalid };
    },

    GetParametersByPath(body, caller) {
      const path = stringField(body, "Path");
      if (!path.startsWith("/")) {
        throw new SsmError(
          "ValidationException",
          'The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/".',
        );
      }
      const base = path.endsWith("/") ? path : `${path}/`;
      const withDecryption = body.WithDecryption === true;
      if (!mayRead(caller, base)) {
        reads.push({
          action: "GetParametersByPath",
          name: path,
          principal: caller.principal,
          accessKeyId: caller.accessKeyId,
          withDecryption,
          allowed: false,
        });
        throw denied(caller, "GetParametersByPath", path);
      }
      const max = typeof body.MaxResults === "number" ? body.MaxResults : 10;
      if (max < 1 || max > 10) {
        throw new SsmError(
          "ValidationException",
          "MaxResults must be between 1 and 10.",
        );
      }
      const matching = [...parameters.values()]
        .filter(
          (p) =>
            p.name.startsWith(base) &&
            (body.Recursive === true ||
              !p.name.slice(base.length).includes("/")),
        )
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      const start =
        typeof body.NextToken === "string"
          ? Number(Buffer.from(body.NextToken, "base64url").toString())
          : 0;
      if (!Number.isInteger(start) || start < 0) {
        throw new SsmError(
          "InvalidNextToken",
          "The specified token is not valid.",
        );
      }
      const page = matching.slice(start, start + max);
      for (const p of page) {
        reads.push({
          action: "GetParametersByPath",
          name: p.name,
          principal: caller.principal,
          accessKeyId: caller.accessKeyId,
          type: p.type,
          withDecryption,
          allowed: true,
        });
      }
      const next =
        start + max < matching.length
          ? Buffer.from(String(start + max)).toString("base64url")
          : undefined;
      return {
        Parameters: page.map((p) => view(p, withDecryption)),
        ...(next === undefined ? {} : { NextToken: next }),
      };
    },

    DeleteParameter(body, caller) {
      const name = stringField(body, "Name");
      operatorOnly(caller, "DeleteParameter", name);
      if (!parameters.delete(name)) {
        throw new SsmError("ParameterNotFound", `Parameter ${name} not found.`);
      }
      return {};
    },

    DeleteParameters(body, caller) {
      const names = stringList(body, "Names");
      const deleted: string[] = [];
      const invalid: string[] = [];
      for (const name of names) {
        operatorOnly(caller, "DeleteParameters", name);
        (parameters.delete(name) ? deleted : invalid).push(name);
      }
      return { DeletedParameters: deleted, InvalidParameters: invalid };
    },
  };
}
