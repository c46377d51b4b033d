/**
 * Fails when the sources' static imports form a cycle. In a cycle, which module
 * evaluates first depends on which one a program happens to import first, so a
 * top-level constant read across the cycle can be undefined in one entry point
 * and fine in another; and a cycle between folders means neither can be
 * understood, tested or moved without the other.
 *
 * Only static imports count: a dynamic `import()` runs after every module has
 * evaluated, which is how the CLI loads its commands lazily. Between modules,
 * only run-time imports count: type-only ones (`import type`, `export type`)
 * vanish from the compiled code. Between folders, both count.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";

import ts from "typescript";

import { packageRoot } from "../../lib/paths.js";

const ROOTS = ["lib", "worker", "infra", "cli"];

interface Edge {
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      return sourceFiles(path);
    }
    return name.endsWith(".ts") && !name.endsWith(".d.ts") ? [path] : [];
  });
}

/**
 * Every relative static import and re-export of one file. With
 * verbatimModuleSyntax, `import { type A } from "./a.js"` still loads `./a.js`
 * at run time, so only the `type` keyword on the whole statement makes an
 * edge type-only.
 */
function importsOf(file: string): Edge[] {
  const source = ts.createSourceFile(
    file,
    readFileSync(file, "utf8"),
    ts.ScriptTarget.Latest,
    false,
  );
  const edges: Edge[] = [];
  for (const statement of source.statements) {
    let specifier: ts.Expression | undefined;
    let typeOnly = false;
    if (ts.isImportDeclaration(statement)) {
      specifier = statement.moduleSpecifier;
      typeOnly = statement.importClause?.isTypeOnly ?? false;
    } else if (ts.isExportDeclaration(statement)) {
      specifier = statement.moduleSpecifier;
      typeOnly = statement.isTypeOnly;
    }
    if (
      specifier === undefined ||
      !ts.isStringLiteral(specifier) ||
      !specifier.text.startsWith(".")
    ) {
      continue;
    }
    const target = resolve(dirname(file), specifier.text).replace(
      /\.js$/,
      ".ts",
    );
    edges.push({ to: target, typeOnly });
  }
  return edges;
}

/** Each strongly connected component of more than one node, or a self-import. */
function cycles(graph: Map<string, string[]>): string[][] {
  // Tarjan's algorithm; the graph is a few hundred files, so recursion is fine.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) {
        found.push(component.sort());
      }
    }
  };
  for (const node of [...graph.keys()].sort()) {
    if (!index.has(node)) {
      visit(node);
    }
  }
  return found;
}

const root = packageRoot();
const files = ROOTS.flatMap((dir) => sourceFiles(join(root, dir)));
const edges = new Map(files.map((file) => [file, importsOf(file)]));

/**
 * Imports that tie two folders together, allowed until they are broken, each
 * with the reason. Keys are `from -> to`, relative to the package root.
 */
const ALLOWED_FOLDER_EDGES = new Map<string, string>([
  [
    "lib/errors.ts -> lib/db/errors.ts",
    "faultKind classifies by SQLSTATE; lib/db/errors.ts is a leaf table that " +
      "imports nothing, so this closes no loop between modules, only between " +
      "lib/errors.ts and the folder lib/db, whose modules all throw its errors. " +
      "Moving the table out of lib/db breaks it.",
  ],
]);

/**
 * What a folder-level cycle is counted between: a file's folder, except that
 * the files directly under a root (lib/errors.ts, cli/output.ts…) are each
 * their own unit, since they are separate modules, not one package.
 */
function unitOf(file: string): string {
  const path = relative(root, file);
  return path.split("/").length > 2 ? dirname(path) : path;
}

const relativeEdge = (from: string, to: string): string =>
  `${relative(root, from)} -> ${relative(root, to)}`;

function fileGraph(include: (edge: Edge) => boolean): Map<string, string[]> {
  return new Map(
    [...edges].map(([file, out]) => [
      file,
      out
        .filter((edge) => include(edge) && edges.has(edge.to))
        .map((e) => e.to),
    ]),
  );
}

/** The folder graph, and for each of its edges the file imports behind it. */
function folderGraph(include: (edge: Edge) => boolean): {
  graph: Map<string, string[]>;
  behind: Map<string, string[]>;
} {
  const graph = new Map<string, string[]>();
  const behind = new Map<string, string[]>();
  for (const [file, out] of fileGraph(include)) {
    const from = unitOf(file);
    const targets = graph.get(from) ?? [];
    graph.set(from, targets);
    for (const target of out) {
      const to = unitOf(target);
      if (to === from || ALLOWED_FOLDER_EDGES.has(relativeEdge(file, target))) {
        continue;
      }
      if (!targets.includes(to)) {
        targets.push(to);
      }
      const key = `${from} -> ${to}`;
      behind.set(key, [...(behind.get(key) ?? []), relativeEdge(file, target)]);
    }
  }
  return { graph, behind };
}

function describeFolderCycles(
  found: string[][],
  behind: Map<string, string[]>,
): string {
  return found
    .map((component) => {
      const imports = [...behind]
        .filter(([key]) => {
          const [from, to] = key.split(" -> ");
          return component.includes(from!) && component.includes(to!);
        })
        .flatMap(([, list]) => list);
      return `${component.join(" ↔ ")}, through:\n  ${imports.join("\n  ")}`;
    })
    .join("\n");
}

const describeFileCycles = (found: string[][]): string =>
  found
    .map((component) =>
      component.map((file) => relative(root, file)).join(" ↔ "),
    )
    .join("\n");

const runTime = (edge: Edge): boolean => !edge.typeOnly;

describe("import cycles", () => {
  it("finds the imports it checks", () => {
    // Guards against a parser change that would silently see no edges.
    assert.ok(files.length > 100);
    const lib = join(root, "lib", "db", "connect.ts");
    assert.ok((edges.get(lib) ?? []).length > 0);
  });

  it("has none between modules through run-time imports", () => {
    const found = cycles(fileGraph(runTime));
    assert.deepEqual(found, [], `import cycles:\n${describeFileCycles(found)}`);
  });

  it("has none between folders", () => {
    // Type-only imports count here: a folder that needs another's types to
    // compile cannot be moved or understood without it either. Inside one
    // folder they are harmless (an interface beside its implementations).
    for (const include of [runTime, () => true]) {
      const { graph, behind } = folderGraph(include);
      const found = cycles(graph);
      assert.deepEqual(
        found,
        [],
        `folder cycles:\n${describeFolderCycles(found, behind)}`,
      );
    }
  });

  it("allows only folder imports that still exist", () => {
    // An allowance outlives its reason silently unless this fails once the
    // import is gone.
    const present = new Set(
      [...edges].flatMap(([file, out]) =>
        out.map((edge) => relativeEdge(file, edge.to)),
      ),
    );
    for (const edge of ALLOWED_FOLDER_EDGES.keys()) {
      assert.ok(present.has(edge), `allowed import no longer exists: ${edge}`);
    }
  });
});
