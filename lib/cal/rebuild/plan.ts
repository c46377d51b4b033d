/**
 * The rebuild's frame planner: what `planFrame` and `compileSearchParts`
 * give for a frame, as shape members, with a memo that makes most frames
 * cost a few map lookups.
 *
 * Why the memo is exact. A frame's plan is a function of what its
 * instrument's rules read of it (the rules see the frame only through
 * `Frame`'s methods, which record every descriptor, tag, year, time and id
 * they return), of the instrument table and the frame's `engineering`, and
 * of the frame's ut_datetime and its seconds, which the compiled searches
 * bind as values at known places (`frameTime`, `frameSecs`). The first
 * frame planned records what the rules read, in order; the next frame with
 * the same value for the first of those inputs reads the same second input
 * next, and so on, so the memo is a tree: each branch names the input the
 * rules read at that point, each edge is one value of it, each leaf the
 * compiled searches with the frame's time left as slots. A frame walks the
 * tree comparing its own values; where its path ends it reuses the leaf,
 * with its id and time put in; where an edge is missing it is planned fresh
 * and its path added. Rules that read the time (GMOS's nod-and-shuffle
 * rule asks whether the year is before 2020) get that as an input like any
 * other.
 */
import {
  type Frame,
  type Input,
  type InputKey,
  parseInput,
} from "../core/frame.js";
import { parseTypes, type PyTags, ReferenceRaised } from "../core/python.js";
import { type CompiledSearchParts, compileSearchParts } from "../core/query.js";
import {
  contextOf,
  type FrameEvaluation,
  type FrameHeaderRow,
  frameOf,
  type FramePlan,
  framePrelude,
  planWithFrame,
} from "../evaluate.js";
import type { CalType, InstrumentRules } from "../rules/common.js";
import { type ShapeGroups, type ShapeSpec, shapeSpec } from "./shapes.js";

/** A frame's outcome, as the evaluator would report it. */
export interface PlannedOutcome {
  outcome: FrameEvaluation["outcome"];
  reason?: string;
}

/** One compiled search of a leaf: the frame's time still to be put in. */
interface Template {
  spec: ShapeSpec;
  caltype: CalType;
  part: number;
  weaveLimit: number | null;
  values: CompiledSearchParts["values"];
  frameTime: number[];
  frameSecs: number[];
  frameDescriptors: { index: number; name: string }[];
}

interface Leaf {
  kind: "leaf";
  result: PlannedOutcome;
  searches: Template[];
}

interface Branch {
  kind: "branch";
  /** The input the rules read here (a descriptor name, `#TAG`, `@ut`, …). */
  input: Input;
  next: Map<InputKey, Node>;
}

type Node = Leaf | Branch;

const ASSOCIATED: PlannedOutcome = { outcome: "associated" };

/** Above this many nodes the memo starts again (bounded memory, still exact). */
const MAX_NODES = 250_000;
const MAX_TYPES = 20_000;

export class FramePlanner {
  private readonly roots = new Map<InputKey, Node>();
  private readonly specs = new Map<string, ShapeSpec>();
  private readonly types = new Map<string | null, PyTags | ReferenceRaised>();
  private nodes = 0;
  /** Frames planned fresh, and frames that reused a plan. */
  misses = 0;
  hits = 0;

  constructor(private readonly memo = true) {}

  /** Branches and leaves in the memo now. */
  get size(): number {
    return this.nodes;
  }

  /** The same as `parseTypes`, once per distinct text. */
  private readonly parse = (text: string | null): PyTags => {
    let parsed = this.types.get(text);
    if (parsed === undefined) {
      try {
        parsed = parseTypes(text);
      } catch (error) {
        if (!(error instanceof ReferenceRaised)) {
          throw error;
        }
        parsed = error;
      }
      if (this.types.size >= MAX_TYPES) {
        this.types.clear();
      }
      this.types.set(text, parsed);
    }
    if (parsed instanceof ReferenceRaised) {
      throw parsed;
    }
    return parsed;
  };

  /**
   * Plans one frame, adding its searches to `groups` in the order the
   * evaluator runs them, and returns its outcome.
   */
  plan(
    header: FrameHeaderRow,
    instrumentRow: (table: string) => Record<string, unknown> | undefined,
    groups: ShapeGroups,
  ): PlannedOutcome {
    const prelude = framePrelude(header, this.parse);
    if (prelude.kind === "evaluated") {
      const { outcome, reason } = prelude.evaluation;
      return { outcome, reason };
    }
    const { rules, types } = prelude;
    const frame = frameOf(rules, header, types, instrumentRow(rules.table));
    if (!this.memo) {
      const leaf = this.leafOf(
        planWithFrame(rules, frame, contextOf(rules, header, frame), header.id),
      );
      return this.emit(leaf, header.id, frame, groups);
    }
    const root = `${rules.table}\u0000${String(header.engineering)}`;
    let node = this.roots.get(root);
    while (node !== undefined && node.kind === "branch") {
      node = node.next.get(frame.input(node.input));
    }
    if (node === undefined) {
      node = this.learn(rules, header, frame, root);
      this.misses += 1;
    } else {
      this.hits += 1;
    }
    return this.emit(node, header.id, frame, groups);
  }

  /** Plans a frame fresh, recording its inputs, and adds its path. */
  private learn(
    rules: InstrumentRules,
    header: FrameHeaderRow,
    frame: Frame,
    root: string,
  ): Leaf {
    const context = contextOf(rules, header, frame);
    frame.record();
    let plan: FramePlan;
    let reads: [string, InputKey][];
    try {
      plan = planWithFrame(rules, frame, context, header.id);
    } finally {
      reads = [...frame.stopRecording()];
    }
    // Compiled outside the recording: compiling reads only the context.
    const leaf = this.leafOf(plan);
    if (this.nodes + reads.length + 1 > MAX_NODES) {
      this.roots.clear();
      this.nodes = 0;
    }
    // The recorded path agrees with the tree as far as the tree goes: the
    // same values read so far lead the rules to the same next read.
    let at: Map<InputKey, Node> = this.roots;
    let edge: InputKey = root;
    let i = 0;
    for (;;) {
      const node = at.get(edge);
      if (node === undefined) {
        break;
      }
      const read = reads[i];
      if (
        node.kind === "leaf" ||
        read === undefined ||
        node.input.key !== read[0]
      ) {
        throw new Error(
          `calcache planner: frame ${header.id} read ${read?.[0] ?? "nothing more"} where an earlier frame with the same inputs read ${node.kind === "leaf" ? "nothing more" : node.input.key}; a rule reads something the frame does not record`,
        );
      }
      at = node.next;
      edge = read[1];
      i += 1;
    }
    let tail: Node = leaf;
    for (let j = reads.length - 1; j >= i; j--) {
      const [input, value] = reads[j]!;
      tail = {
        kind: "branch",
        input: parseInput(input),
        next: new Map([[value, tail]]),
      };
    }
    at.set(edge, tail);
    this.nodes += reads.length - i + 1;
    return leaf;
  }

  /** A plan as a leaf: its outcome and its searches compiled, time as slots. */
  private leafOf(plan: FramePlan): Leaf {
    if (plan.kind === "evaluated") {
      const { outcome, reason } = plan.evaluation;
      return { kind: "leaf", result: { outcome, reason }, searches: [] };
    }
    const searches: Template[] = [];
    const add = (
      caltype: CalType,
      part: number,
      weaveLimit: number | null,
      compiled: CompiledSearchParts,
    ) => {
      searches.push({
        spec: this.intern(compiled),
        caltype,
        part,
        weaveLimit,
        values: compiled.values,
        frameTime: compiled.frameTime,
        frameSecs: compiled.frameSecs,
        frameDescriptors: compiled.frameDescriptors,
      });
    };
    for (const { caltype, lookup } of plan.steps) {
      if (lookup.kind === "search") {
        add(caltype, 0, null, compileSearchParts(lookup.search, plan.context));
      } else if (lookup.kind === "interleave") {
        lookup.parts.forEach((search, part) =>
          add(
            caltype,
            part,
            lookup.limit,
            compileSearchParts(search, plan.context),
          ),
        );
      }
    }
    const result =
      plan.failure === undefined
        ? ASSOCIATED
        : { outcome: "failed" as const, reason: plan.failure.reason };
    return { kind: "leaf", result, searches };
  }

  private intern(parts: CompiledSearchParts): ShapeSpec {
    const spec = shapeSpec(parts);
    const known = this.specs.get(spec.key);
    if (known !== undefined) {
      return known;
    }
    this.specs.set(spec.key, spec);
    return spec;
  }

  private emit(
    leaf: Leaf,
    obsHid: number,
    frame: Frame,
    groups: ShapeGroups,
  ): PlannedOutcome {
    for (const t of leaf.searches) {
      const values = t.values.slice();
      for (const i of t.frameTime) {
        values[i] = frame.utDatetime.iso;
      }
      for (const i of t.frameSecs) {
        values[i] = frame.utDatetimeSecs;
      }
      for (const { index, name } of t.frameDescriptors) {
        // A string by the recorded kind: textValue let only strings through.
        values[index] = frame.peek(name) as string;
      }
      groups.add(t.spec, {
        obsHid,
        caltype: t.caltype,
        part: t.part,
        weaveLimit: t.weaveLimit,
        values,
      });
    }
    return leaf.result;
  }
}
