/**
 * The EC2 Query protocol's wire format: a form-encoded request whose keys
 * flatten structures and lists (`Filter.1.Value.2`, `TagSpecification.1.Tag.1.Key`),
 * and an XML response whose lists are `<item>` elements. Error bodies are
 * `<Response><Errors><Error>…`, which the SDK turns into an exception named
 * by `Code` with `$metadata.httpStatusCode` from the status line.
 */
import { randomUUID } from "node:crypto";

export type QueryNode = string | QueryNode[] | { [key: string]: QueryNode };
export type QueryTree = { [key: string]: QueryNode };

/** Nests `A.1.B=x` into `{ A: [{ B: "x" }] }` (numbered segments are 1-based list positions). */
export function parseQuery(body: string): QueryTree {
  const root: QueryTree = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const parts = key.split(".");
    let node: QueryTree | QueryNode[] = root;
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      const nextIsIndex = !last && /^\d+$/.test(parts[i + 1] ?? "");
      const slot: string | number = Array.isArray(node)
        ? Number(part) - 1
        : part;
      const container = node as Record<string | number, QueryNode>;
      if (last) {
        container[slot] = value;
        return;
      }
      const existing: QueryNode | undefined = container[slot];
      if (existing === undefined || typeof existing === "string") {
        container[slot] = nextIsIndex ? [] : {};
      }
      node = container[slot] as QueryTree | QueryNode[];
    });
  }
  return root;
}

function child(
  node: QueryNode | undefined,
  key: string,
): QueryNode | undefined {
  if (node === undefined || typeof node === "string" || Array.isArray(node)) {
    return undefined;
  }
  return node[key];
}

/** The node at a dotted path of structure members. */
export function at(
  node: QueryNode | undefined,
  path: string,
): QueryNode | undefined {
  return path.split(".").reduce<QueryNode | undefined>(child, node);
}

export function str(
  node: QueryNode | undefined,
  path: string,
): string | undefined {
  const value = at(node, path);
  return typeof value === "string" ? value : undefined;
}

export function int(
  node: QueryNode | undefined,
  path: string,
): number | undefined {
  const value = str(node, path);
  if (value === undefined) {
    return undefined;
  }
  const n = Number(value);
  if (!Number.isInteger(n)) {
    throw new Ec2Error(
      "InvalidParameterValue",
      `Invalid value '${value}' for ${path}`,
    );
  }
  return n;
}

export function bool(
  node: QueryNode | undefined,
  path: string,
): boolean | undefined {
  const value = str(node, path);
  return value === undefined ? undefined : value === "true";
}

/** A list's members (holes from skipped numbers dropped). */
export function list(node: QueryNode | undefined, path: string): QueryNode[] {
  const value = at(node, path);
  return Array.isArray(value) ? value.filter((v) => v !== undefined) : [];
}

export function strings(node: QueryNode | undefined, path: string): string[] {
  return list(node, path).filter((v): v is string => typeof v === "string");
}

export interface QueryFilter {
  name: string;
  values: string[];
}

export function filters(node: QueryNode | undefined): QueryFilter[] {
  return list(node, "Filter").map((f) => ({
    name: str(f, "Name") ?? "",
    values: strings(f, "Value"),
  }));
}

export function tagsOf(
  node: QueryNode | undefined,
  path = "Tag",
): [string, string][] {
  return list(node, path).map((t) => [
    str(t, "Key") ?? "",
    str(t, "Value") ?? "",
  ]);
}

export interface TagSpecification {
  resourceType: string;
  tags: [string, string][];
}

export function tagSpecifications(
  node: QueryNode | undefined,
  path = "TagSpecification",
): TagSpecification[] {
  return list(node, path).map((spec) => ({
    resourceType: str(spec, "ResourceType") ?? "",
    tags: tagsOf(spec),
  }));
}

/** An EC2 API error: the code the SDK names its exception after, and the HTTP status. */
export class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = "Ec2Error";
  }
}

export type XmlValue =
  | string
  | number
  | boolean
  | Date
  | null
  | undefined
  | XmlValue[]
  | { [key: string]: XmlValue };

function escapeXml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** Members with their XML names; arrays become `<item>` lists, absent values are left out. */
export function toXml(value: XmlValue): string {
  if (value === null || value === undefined) {
    return "";
  }
  if (value instanceof Date) {
    return value.toISOString();
  }
  if (Array.isArray(value)) {
    return value.map((v) => `<item>${toXml(v)}</item>`).join("");
  }
  if (typeof value === "object") {
    return Object.entries(value)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `<${k}>${toXml(v)}</${k}>`)
      .join("");
  }
  return escapeXml(String(value));
}

export function responseXml(
  action: string,
  body: Record<string, XmlValue>,
): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
    `<requestId>${randomUUID()}</requestId>${toXml(body)}</${action}Response>`
  );
}

export function errorXml(error: Ec2Error): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>` +
    `<Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message>` +
    `</Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`
  );
}

/** `*` and `?` wildcards, as EC2 filters allow. */
export function wildcardMatch(pattern: string, value: string): boolean {
  if (!/[*?]/.test(pattern)) {
    return pattern === value;
  }
  const re = pattern
    .split("")
    .map((c) =>
      c === "*"
        ? ".*"
        : c === "?"
          ? "."
          : c.replace(/[.+^${}()|[\]\\]/g, "\\$&"),
    )
    .join("");
  return new RegExp(`^${re}$`, "s").test(value);
}

/**
 * One page of `items` after `token`. EC2 accepts MaxResults from 5 to 1000
 * on the describe calls paged here, and a token names where the next page starts.
 */
export function paginate<T>(
  items: T[],
  maxResults: number | undefined,
  token: string | undefined,
  min = 5,
): { page: T[]; nextToken?: string } {
  let start = 0;
  if (token !== undefined && token !== "") {
    const decoded = Number(Buffer.from(token, "base64url").toString());
    if (!Number.isInteger(decoded) || decoded < 0) {
      throw new Ec2Error("InvalidNextToken", "The specified token is invalid.");
    }
    start = decoded;
  }
  if (maxResults === undefined) {
    return { page: items.slice(start) };
  }
  if (maxResults < min || maxResults > 1000) {
    throw new Ec2Error(
      "InvalidParameterValue",
      `Value (${maxResults}) for parameter maxResults is invalid. Expecting a value between ${min} and 1000.`,
    );
  }
  const end = start + maxResults;
  return {
    page: items.slice(start, end),
    nextToken:
      end < items.length
        ? Buffer.from(String(end)).toString("base64url")
        : undefined,
  };
}
