/**
 * A storage root in an S3 bucket, under an optional key prefix.
 *
 * Listing is concurrent. ListObjectsV2 returns at most 1000 keys a request
 * and each request waits for the one before it (the continuation token), so
 * one stream of requests lists a large bucket slowly (the reference's
 * `key_names()` takes "almost an hour"). We run up to `listConcurrency`
 * streams, each listing one key range (lo, hi] with StartAfter lo until a
 * key passes hi. S3 lists keys in UTF-8 byte order, which `compareKeys`
 * reproduces, so ranges cover every key exactly once whatever the keys are.
 *
 * - The first cuts come from a Delimiter "/" listing of the top level: its
 *   common prefixes ("folders"), and those one level down while there are
 *   few (the ranges then hold one folder each).
 * - A range with many keys (a flat bucket: the Gemini archive keeps its
 *   files at the top) is cut again whenever workers would be idle: after a
 *   full page ending at key L, the rest of the range is cut at keys just
 *   above L's characters (L = N20010315…: N200104, …, N2002, …, N201, …,
 *   O, …, S, …). The characters only decide where cuts fall, never which
 *   keys are listed. A page yields at most as many cuts as there are idle
 *   workers, since an empty range still costs a request.
 * - Each range asks for the longest prefix its two ends share, so the page
 *   that finds a range's end reads little past it.
 *
 * Completeness rests only on the key order, not on how a store rolls up
 * common prefixes (s3rver, for one, leaves out folders holding only
 * folders, which the tests meet).
 *
 * ListObjectsV2 does not return user metadata, so listed entries have no
 * md5; `stat` (HeadObject) fills it from the object's metadata "md5".
 * Throttling (SlowDown, 503), 5xx and dropped connections are retried by the
 * SDK's standard strategy with `maxAttempts` (default 8) and exponential
 * backoff with jitter. The SDK loads slowly, so it is imported on first use.
 */
import { setMaxListeners } from "node:events";
import type { Readable } from "node:stream";

import type { S3Client } from "@aws-sdk/client-s3";

import {
  EXIT,
  ExternalServiceError,
  FitsfleetError,
  PreconditionError,
  UsageError,
} from "../errors.js";
import type {
  ListOptions,
  OpenStorageOptions,
  Storage,
  StorageEntry,
  WriteOptions,
} from "./index.js";
import { checkName, normaliseStoragePath } from "./paths.js";

const DEFAULT_CONCURRENCY = 16;
const DEFAULT_MAX_ATTEMPTS = 8;
/** Cut points made from one page at most; the rest is cut later if needed. */
const MAX_SPLIT_POINTS = 128;
/** A stream above this size is uploaded in parts of this size. */
const PART_SIZE = 8 * 1024 * 1024;

const importSdk = () => import("@aws-sdk/client-s3");
let sdk: ReturnType<typeof importSdk> | undefined;
function loadSdk(): ReturnType<typeof importSdk> {
  sdk ??= importSdk();
  return sdk;
}

// ---------------------------------------------------------------------------
// Key order and range splitting (pure; exported for tests)

function isSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdfff;
}

/**
 * Compares keys the way S3 orders them: by UTF-8 bytes, which is code point
 * order. It differs from JavaScript's `<` (UTF-16 units) only where a
 * character above U+FFFF meets one in U+E000–U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      const xs = isSurrogate(x);
      if (xs !== isSurrogate(y)) {
        return xs ? 1 : -1;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

const CHARACTER_RUNS = [
  "0123456789",
  "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
  "abcdefghijklmnopqrstuvwxyz",
];

function successors(character: string): string {
  for (const run of CHARACTER_RUNS) {
    const at = run.indexOf(character);
    if (at >= 0) {
      return run.slice(at + 1);
    }
  }
  return "";
}

/**
 * Where to cut the keys after `last` (the end of a page that began at
 * `first`) and up to `until` (exclusive here; undefined = no end): for each
 * position from `from` (the prefix length) to where `first` and `last`
 * first differ, `last`'s characters up to it followed by each later
 * character of the same run (digits, upper case, lower case). Sorted in key
 * order, all above `last` and below `until`.
 */
export function splitPoints(
  from: number,
  first: string,
  last: string,
  until: string | undefined,
): string[] {
  let differ = 0;
  while (
    differ < first.length &&
    differ < last.length &&
    first[differ] === last[differ]
  ) {
    differ++;
  }
  const points = new Set<string>();
  const deepest = Math.min(differ, last.length - 1);
  for (let i = from; i <= deepest && points.size < MAX_SPLIT_POINTS; i++) {
    const head = last.slice(0, i);
    for (const character of successors(last[i]!)) {
      const point = head + character;
      if (until === undefined || compareKeys(point, until) < 0) {
        points.add(point);
      }
    }
  }
  return [...points].sort(compareKeys);
}

/**
 * At most `limit` of the sorted `points`, evenly spaced, the first kept:
 * more ranges than workers only cost requests (an empty range still costs
 * one, and reads a page past its end), and a range that proves large is cut
 * again when a worker is idle.
 */
export function thin(points: readonly string[], limit: number): string[] {
  if (points.length <= limit) {
    return [...points];
  }
  const step = points.length / Math.max(1, limit);
  return Array.from(
    { length: Math.max(1, limit) },
    (_, i) => points[Math.floor(i * step)]!,
  );
}

// ---------------------------------------------------------------------------
// The concurrent lister, over any ListObjectsV2-like function

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ListPageRequest {
  prefix: string;
  delimiter: boolean;
  startAfter: string | undefined;
  continuationToken: string | undefined;
}

export interface ListPageResult {
  objects: ListedObject[];
  /** Common prefixes (each ending in "/"), when listed with a delimiter. */
  prefixes: string[];
  truncated: boolean;
  continuationToken: string | undefined;
}

export type ListPage = (
  request: ListPageRequest,
  signal: AbortSignal,
) => Promise<ListPageResult>;

export interface ListKeysOptions {
  /** "" or ending in "/". */
  prefix: string;
  recursive: boolean;
  concurrency: number;
  signal?: AbortSignal;
  /** Called once per request, for tests and benchmarks. */
  onRequest?: (request: ListPageRequest) => void;
}

/** The longest prefix every key in (after, until] has, at least `prefix`. */
export function rangePrefix(
  prefix: string,
  after: string | undefined,
  until: string | undefined,
): string {
  if (after === undefined || until === undefined) {
    return prefix;
  }
  let n = 0;
  while (n < after.length && n < until.length && after[n] === until[n]) {
    n++;
  }
  // Never end between the two halves of a surrogate pair.
  if (
    n > 0 &&
    isSurrogate(after.charCodeAt(n - 1)) &&
    after.charCodeAt(n - 1) < 0xdc00
  ) {
    n--;
  }
  return n > prefix.length ? after.slice(0, n) : prefix;
}

/** Keys under the listed prefix in (after, until]; undefined = unbounded. */
interface Task {
  after?: string;
  until?: string;
}

/**
 * Where to cut the listing before it starts: the common prefixes ("folders")
 * of the first page of a Delimiter "/" listing and, while they are few
 * (fewer than `concurrency`), of each of theirs; plus, when that page is
 * full of keys (a flat level), cut points after its last key. One request,
 * or up to `concurrency` more.
 */
async function discover(
  listPage: ListPage,
  prefix: string,
  concurrency: number,
  signal: AbortSignal,
  onRequest: ((request: ListPageRequest) => void) | undefined,
): Promise<string[]> {
  const delimited = (folder: string) => {
    const request: ListPageRequest = {
      prefix: folder,
      delimiter: true,
      startAfter: undefined,
      continuationToken: undefined,
    };
    onRequest?.(request);
    return listPage(request, signal);
  };
  const page = await delimited(prefix);
  const points = [...page.prefixes];
  if (page.truncated) {
    const keys = [
      page.objects[0]?.key,
      page.prefixes[0],
      page.objects.at(-1)?.key,
      page.prefixes.at(-1),
    ].filter((k): k is string => k !== undefined);
    if (keys.length > 0) {
      keys.sort(compareKeys);
      points.push(
        ...splitPoints(prefix.length, keys[0]!, keys.at(-1)!, undefined),
      );
    }
  } else if (page.prefixes.length > 0 && page.prefixes.length < concurrency) {
    const below = await Promise.all(page.prefixes.map((p) => delimited(p)));
    points.push(...below.flatMap((p) => p.prefixes));
  }
  return thin([...new Set(points)].sort(compareKeys), concurrency);
}

/**
 * Every object key under `options.prefix` (keys ending in "/", the folder
 * markers some tools create, left out), in pages as they arrive, with up to
 * `concurrency` requests in flight. Stops all requests when the consumer
 * stops early or one request fails for good.
 *
 * Each task lists one key range without a delimiter (with Delimiter "/" for
 * a one-level listing), so completeness rests only on S3's key order, not on
 * how a store rolls up common prefixes (s3rver, for one, leaves out folders
 * that hold only folders).
 */
export async function* listKeys(
  listPage: ListPage,
  options: ListKeysOptions,
): AsyncGenerator<ListedObject[]> {
  const concurrency = Math.max(1, options.concurrency);
  const maxReady = concurrency * 2;
  const controller = new AbortController();
  const signal =
    options.signal === undefined
      ? controller.signal
      : AbortSignal.any([options.signal, controller.signal]);
  // Every request in flight listens on it.
  setMaxListeners(0, signal);
  const delimiter = !options.recursive;
  const tasks: Task[] = [];
  const ready: ListedObject[][] = [];
  const spaceWaiters: (() => void)[] = [];
  let active = 0;
  let closed = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;

  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const releaseSpace = () => {
    for (const w of spaceWaiters.splice(0)) {
      w();
    }
  };
  const emit = async (objects: ListedObject[]) => {
    while (ready.length >= maxReady && !closed) {
      await new Promise<void>((resolve) => spaceWaiters.push(resolve));
    }
    if (!closed) {
      ready.push(objects);
      notify();
    }
  };
  /** Tasks for (after, p1], (p1, p2], …, (pn, until]. */
  const addRanges = (
    after: string | undefined,
    points: readonly string[],
    until: string | undefined,
  ) => {
    const bounds = [after, ...points, until];
    for (let i = 0; i + 1 < bounds.length; i++) {
      tasks.push({ after: bounds[i], until: bounds[i + 1] });
    }
  };

  const runTask = async (task: Task): Promise<void> => {
    let until = task.until;
    let token: string | undefined;
    // Every key in (after, until] starts with what the two have in common:
    // asking for that prefix spares reading past the range's end.
    const prefix = rangePrefix(options.prefix, task.after, task.until);
    for (;;) {
      const request: ListPageRequest = {
        prefix,
        delimiter,
        startAfter: token === undefined ? task.after : undefined,
        continuationToken: token,
      };
      options.onRequest?.(request);
      const page = await listPage(request, signal);
      if (closed) {
        return;
      }
      let beyond = false;
      const objects: ListedObject[] = [];
      for (const object of page.objects) {
        if (until !== undefined && compareKeys(object.key, until) > 0) {
          beyond = true;
        } else if (!object.key.endsWith("/")) {
          objects.push(object);
        }
      }
      if (
        until !== undefined &&
        page.prefixes.some((p) => compareKeys(p, until!) > 0)
      ) {
        beyond = true;
      }
      if (
        !beyond &&
        page.truncated &&
        page.continuationToken !== undefined &&
        active + tasks.length < concurrency
      ) {
        // Workers would be idle: hand them the rest of this range, cut up.
        const keys = [
          page.objects[0]?.key,
          page.prefixes[0],
          page.objects.at(-1)?.key,
          page.prefixes.at(-1),
        ].filter((k): k is string => k !== undefined);
        if (keys.length > 0) {
          keys.sort(compareKeys);
          const idle = concurrency - active - tasks.length;
          const points = thin(
            splitPoints(options.prefix.length, keys[0]!, keys.at(-1)!, until),
            idle,
          );
          if (points.length > 0) {
            addRanges(points[0], points.slice(1), until);
            until = points[0];
            pump();
          }
        }
      }
      if (objects.length > 0) {
        await emit(objects);
      }
      if (
        closed ||
        beyond ||
        !page.truncated ||
        page.continuationToken === undefined
      ) {
        return;
      }
      token = page.continuationToken;
    }
  };

  function pump(): void {
    while (
      !closed &&
      failure === undefined &&
      active < concurrency &&
      tasks.length > 0
    ) {
      const task = tasks.shift()!;
      active++;
      runTask(task).then(
        () => {
          active--;
          pump();
          notify();
        },
        (error: unknown) => {
          active--;
          if (!closed) {
            failure ??= { error };
            controller.abort();
          }
          notify();
        },
      );
    }
  }

  const onAbort = () => notify();
  options.signal?.addEventListener("abort", onAbort);
  try {
    const points =
      options.recursive && concurrency > 1
        ? await discover(
            listPage,
            options.prefix,
            concurrency,
            signal,
            options.onRequest,
          )
        : [];
    addRanges(undefined, points, undefined);
    pump();
    for (;;) {
      options.signal?.throwIfAborted();
      if (failure !== undefined) {
        throw failure.error;
      }
      const page = ready.shift();
      if (page !== undefined) {
        releaseSpace();
        yield page;
        continue;
      }
      if (active === 0 && tasks.length === 0) {
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    closed = true;
    controller.abort();
    releaseSpace();
    options.signal?.removeEventListener("abort", onAbort);
  }
}

// ---------------------------------------------------------------------------
// The storage

function parseLocation(location: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(location);
  if (match === null) {
    throw new UsageError(
      `invalid S3 location ${JSON.stringify(location)}: write s3://BUCKET or s3://BUCKET/PREFIX`,
    );
  }
  const prefix = (match[2] ?? "").replace(/^\/+|\/+$/g, "");
  return { bucket: match[1]!, prefix };
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  errors?: { code?: string; message?: string }[];
  $metadata?: { httpStatusCode?: number };
}

const DENIED = new Set([
  "AccessDenied",
  "AllAccessDisabled",
  "ExpiredToken",
  "InvalidAccessKeyId",
  "InvalidToken",
  "SignatureDoesNotMatch",
  "TokenRefreshRequired",
]);

function describeError(error: SdkError): string {
  const nested = error.errors?.find((e) => e.message || e.code);
  const message = error.message || nested?.message || nested?.code || "";
  const code = error.code ?? nested?.code;
  const label =
    code !== undefined && !message.includes(code)
      ? `${code}${message === "" ? "" : `: ${message}`}`
      : message;
  return label === "" ? (error.name ?? "unknown error") : label;
}

export interface S3StorageOptions extends OpenStorageOptions {
  /** Use this client instead of making one (tests); `close` destroys it. */
  client?: S3Client;
}

export class S3Storage implements Storage {
  readonly kind = "s3";
  readonly description: string;
  readonly bucket: string;
  /** The key prefix without a trailing "/", "" for the whole bucket. */
  readonly prefix: string;
  private readonly endpoint: string | undefined;
  private readonly maxAttempts: number;
  private readonly concurrency: number;
  private client: Promise<S3Client> | undefined;
  private bucketChecked: Promise<void> | undefined;

  constructor(location: string, options: S3StorageOptions = {}) {
    const { bucket, prefix } = parseLocation(location);
    this.bucket = bucket;
    this.prefix = prefix;
    this.description = `s3://${bucket}${prefix === "" ? "" : `/${prefix}`}`;
    this.endpoint = options.s3Endpoint;
    this.maxAttempts = Math.max(
      1,
      options.s3MaxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    );
    this.concurrency = Math.max(
      1,
      options.listConcurrency ?? DEFAULT_CONCURRENCY,
    );
    if (options.client !== undefined) {
      this.client = Promise.resolve(options.client);
    }
  }

  private getClient(): Promise<S3Client> {
    this.client ??= loadSdk().then(
      ({ S3Client }) =>
        new S3Client({
          region:
            process.env.AWS_REGION ??
            process.env.AWS_DEFAULT_REGION ??
            "us-east-1",
          maxAttempts: this.maxAttempts,
          retryMode: "standard",
          requestHandler: {
            // A black-holed endpoint fails (and is retried) instead of hanging.
            connectionTimeout: 10_000,
            httpAgent: { keepAlive: true, maxSockets: 64 },
            httpsAgent: { keepAlive: true, maxSockets: 64 },
          },
          ...(this.endpoint === undefined
            ? {}
            : {
                endpoint: this.endpoint,
                forcePathStyle: true,
                // Stores other than AWS often lack the newer checksum headers.
                requestChecksumCalculation: "WHEN_REQUIRED" as const,
                responseChecksumValidation: "WHEN_REQUIRED" as const,
              }),
        }),
    );
    return this.client;
  }

  /** The key prefix for a folder: "" or ending in "/". */
  private folderPrefix(path: string): string {
    return [this.prefix, normaliseStoragePath(path)]
      .filter((part) => part !== "")
      .map((part) => `${part}/`)
      .join("");
  }

  private key(path: string, name: string): string {
    return this.folderPrefix(path) + checkName(name);
  }

  private where(): string {
    return this.endpoint === undefined
      ? `AWS S3 (region ${process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1"})`
      : `the S3 endpoint ${this.endpoint}`;
  }

  /** The project's error for an SDK failure while doing `action`. */
  private mapError(error: unknown, action: string): Error {
    if (error instanceof FitsfleetError) {
      return error;
    }
    const e = (error ?? {}) as SdkError;
    const status = e.$metadata?.httpStatusCode;
    const context = {
      bucket: this.bucket,
      endpoint: this.endpoint,
      sdkError: e.name,
      status,
    };
    if (e.name === "NoSuchBucket") {
      return this.missingBucket(error);
    }
    if (e.name !== undefined && (DENIED.has(e.name) || status === 403)) {
      return new ExternalServiceError(
        "s3",
        `${this.where()} refused ${action} (${e.name}${status === undefined ? "" : `, HTTP ${status}`})`,
        {
          cause: error,
          context,
          suggestion:
            "check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role) and that they may read and write this bucket; for a non-AWS store, check --s3-endpoint",
        },
      );
    }
    if (e.name === "CredentialsProviderError") {
      return new ExternalServiceError(
        "s3",
        `no AWS credentials for ${action}: ${describeError(e)}`,
        {
          cause: error,
          context,
          suggestion:
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run where an instance role provides them",
        },
      );
    }
    if (status === undefined) {
      return new ExternalServiceError(
        "s3",
        `cannot reach ${this.where()} for ${action}: ${describeError(e)}`,
        {
          cause: error,
          context,
          suggestion:
            "check --s3-endpoint (FITSFLEET_S3_ENDPOINT; leave it unset for AWS itself), the network, and the AWS credentials",
        },
      );
    }
    return new ExternalServiceError(
      "s3",
      `${this.where()} failed ${action}: ${e.name ?? "error"} (HTTP ${status}) ${describeError(e)}`,
      {
        cause: error,
        context,
        suggestion:
          "retry later; if it persists, check the bucket, the credentials and --s3-endpoint",
      },
    );
  }

  private missingBucket(cause: unknown): PreconditionError {
    return new PreconditionError(
      `the S3 bucket ${JSON.stringify(this.bucket)} does not exist at ${this.where()}`,
      {
        cause,
        context: { bucket: this.bucket, endpoint: this.endpoint },
        suggestion:
          "check the bucket name in the storage location (s3://BUCKET/PREFIX), the region (AWS_REGION) and --s3-endpoint",
      },
    );
  }

  /** HEAD answers 404 for a missing key and a missing bucket alike: tell them apart once. */
  private checkBucket(): Promise<void> {
    this.bucketChecked ??= (async () => {
      const { HeadBucketCommand } = await loadSdk();
      const client = await this.getClient();
      try {
        await client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      } catch (error) {
        const e = error as SdkError;
        if (
          e.name === "NotFound" ||
          e.name === "NoSuchBucket" ||
          e.$metadata?.httpStatusCode === 404
        ) {
          throw this.missingBucket(error);
        }
        throw this.mapError(error, `checking the bucket ${this.bucket}`);
      }
    })();
    this.bucketChecked.catch(() => {
      this.bucketChecked = undefined;
    });
    return this.bucketChecked;
  }

  list(options: ListOptions = {}): AsyncIterable<StorageEntry[]> {
    return this.listEntries(
      this.folderPrefix(options.path ?? ""),
      options.recursive ?? true,
      options.signal,
    );
  }

  private async *listEntries(
    prefix: string,
    recursive: boolean,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<StorageEntry[]> {
    const action = `listing s3://${this.bucket}/${prefix}`;
    const root = this.prefix === "" ? "" : `${this.prefix}/`;
    try {
      const { ListObjectsV2Command } = await loadSdk();
      const client = await this.getClient();
      const listPage: ListPage = async (request, requestSignal) => {
        const output = await client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: request.prefix === "" ? undefined : request.prefix,
            Delimiter: request.delimiter ? "/" : undefined,
            StartAfter: request.startAfter,
            ContinuationToken: request.continuationToken,
            MaxKeys: 1000,
          }),
          { abortSignal: requestSignal },
        );
        return {
          objects: (output.Contents ?? []).flatMap((o) =>
            o.Key === undefined
              ? []
              : [
                  {
                    key: o.Key,
                    size: o.Size ?? 0,
                    lastModified: o.LastModified ?? new Date(0),
                  },
                ],
          ),
          prefixes: (output.CommonPrefixes ?? []).flatMap((p) =>
            p.Prefix === undefined ? [] : [p.Prefix],
          ),
          truncated: output.IsTruncated === true,
          continuationToken: output.NextContinuationToken,
        };
      };
      for await (const objects of listKeys(listPage, {
        prefix,
        recursive,
        concurrency: this.concurrency,
        signal,
      })) {
        yield objects.map((object) => {
          const rel = object.key.slice(root.length);
          const slash = rel.lastIndexOf("/");
          return {
            path: slash < 0 ? "" : rel.slice(0, slash),
            name: rel.slice(slash + 1),
            size: object.size,
            lastModified: object.lastModified,
          };
        });
      }
    } catch (error) {
      if (signal?.aborted) {
        throw signal.reason;
      }
      throw this.mapError(error, action);
    }
  }

  async stat(path: string, name: string): Promise<StorageEntry | undefined> {
    const key = this.key(path, name);
    const { HeadObjectCommand } = await loadSdk();
    const client = await this.getClient();
    try {
      const head = await client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      const md5 = head.Metadata?.md5;
      return {
        path: normaliseStoragePath(path),
        name,
        size: head.ContentLength ?? 0,
        lastModified: head.LastModified ?? new Date(0),
        ...(md5 === undefined ? {} : { md5 }),
      };
    } catch (error) {
      const e = error as SdkError;
      if (
        e.name === "NotFound" ||
        e.name === "NoSuchKey" ||
        e.$metadata?.httpStatusCode === 404
      ) {
        await this.checkBucket();
        return undefined;
      }
      throw this.mapError(error, `reading s3://${this.bucket}/${key}`);
    }
  }

  async read(path: string, name: string): Promise<Readable> {
    const key = this.key(path, name);
    const { GetObjectCommand } = await loadSdk();
    const client = await this.getClient();
    try {
      const object = await client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      return object.Body as Readable;
    } catch (error) {
      const e = error as SdkError;
      if (e.name === "NoSuchKey" || e.name === "NotFound") {
        throw new FitsfleetError(
          "storage-not-found",
          EXIT.failed,
          `no such object: s3://${this.bucket}/${key}`,
          { cause: error, context: { bucket: this.bucket, key } },
        );
      }
      throw this.mapError(error, `reading s3://${this.bucket}/${key}`);
    }
  }

  async write(
    path: string,
    name: string,
    body: Buffer | Readable,
    options: WriteOptions = {},
  ): Promise<void> {
    const key = this.key(path, name);
    const metadata =
      options.md5 === undefined ? undefined : { md5: options.md5 };
    const sdk = await loadSdk();
    const client = await this.getClient();
    const action = `writing s3://${this.bucket}/${key}`;
    if (Buffer.isBuffer(body)) {
      try {
        await client.send(
          new sdk.PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            Metadata: metadata,
          }),
        );
      } catch (error) {
        throw this.mapError(error, action);
      }
      return;
    }
    // A stream of unknown length: one PUT if it fits in a part, else a
    // multipart upload (parts of PART_SIZE, visible only once completed).
    const iterator = body[Symbol.asyncIterator]() as AsyncIterator<
      Buffer | string
    >;
    const nextPart = async (): Promise<Buffer | undefined> => {
      const chunks: Buffer[] = [];
      let size = 0;
      while (size < PART_SIZE) {
        let next: IteratorResult<Buffer | string>;
        try {
          next = await iterator.next();
        } catch (error) {
          throw new FitsfleetError(
            "storage",
            EXIT.failed,
            `cannot write s3://${this.bucket}/${key}: the data to write failed: ${(error as Error).message}`,
            { cause: error },
          );
        }
        if (next.done === true) {
          break;
        }
        const chunk =
          typeof next.value === "string" ? Buffer.from(next.value) : next.value;
        chunks.push(chunk);
        size += chunk.length;
      }
      return chunks.length === 0 ? undefined : Buffer.concat(chunks);
    };
    const first = (await nextPart()) ?? Buffer.alloc(0);
    if (first.length < PART_SIZE) {
      await this.write(path, name, first, options);
      return;
    }
    let uploadId: string | undefined;
    try {
      const created = await client.send(
        new sdk.CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          Metadata: metadata,
        }),
      );
      uploadId = created.UploadId;
      const parts: { ETag: string | undefined; PartNumber: number }[] = [];
      for (
        let part: Buffer | undefined = first;
        part !== undefined;
        part = await nextPart()
      ) {
        const partNumber = parts.length + 1;
        const uploaded = await client.send(
          new sdk.UploadPartCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: part,
            ContentLength: part.length,
          }),
        );
        parts.push({ ETag: uploaded.ETag, PartNumber: partNumber });
      }
      await client.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (error) {
      if (uploadId !== undefined) {
        await client
          .send(
            new sdk.AbortMultipartUploadCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
            }),
          )
          .catch(() => undefined);
      }
      throw this.mapError(error, action);
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      (await client).destroy();
    }
  }
}
