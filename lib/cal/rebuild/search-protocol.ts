/**
 * What a `rebuild calcache` search thread and its parent say to each other
 * (search.ts, search-thread.ts, and `searchAll` in index.ts).
 */
import type { FrameEvaluation } from "../evaluate.js";

export interface SearchThreadData {
  databaseUrl: string;
  batches: number[][];
  /** The base query's FROM of an instrument → its candidate table. */
  candidates: [string, string][];
}

/**
 * What a thread says while a batch's statements run (`frames`: the part of
 * the batch done, by its searches), after each batch, at the end, or when
 * it fails.
 */
export type SearchThreadMessage =
  | { kind: "searching"; frames: number }
  | {
      kind: "batch";
      frames: number;
      outcomes: Record<FrameEvaluation["outcome"], number>;
      failures: { headerId: number; reason: string }[];
      searches: number;
      statements: number;
      shapeKeys: string[];
    }
  | { kind: "done" }
  | { kind: "failed"; error: ThreadErrorData };

/** What the parent tells a thread. */
export type SearchThreadCommand =
  { kind: "candidates-ready" } | { kind: "stop" };

/** An error as it crosses to the parent (a pg error keeps its code). */
export interface ThreadErrorData {
  message: string;
  code?: string;
  detail?: string;
  hint?: string;
}

export function errorData(error: unknown): ThreadErrorData {
  if (!(error instanceof Error)) {
    return { message: String(error) };
  }
  const { code, detail, hint } = error as Error & Partial<ThreadErrorData>;
  return {
    message: error.message,
    ...(code === undefined ? {} : { code }),
    ...(detail === undefined ? {} : { detail }),
    ...(hint === undefined ? {} : { hint }),
  };
}
