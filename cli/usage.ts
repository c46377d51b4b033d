/**
 * The README's "Commands" section, rendered from the real command tree so the
 * documentation cannot drift from the CLI (test/cli/readme.test.ts checks it).
 */
import type { Command } from "commander";

import { buildProgram } from "./program.js";

export const USAGE_BEGIN = "<!-- CLI_USAGE_BEGIN -->";
export const USAGE_END = "<!-- CLI_USAGE_END -->";

function walk(
  command: Command,
  prefix: string[],
): { path: string; help: string }[] {
  command.configureHelp({ ...command.configureHelp(), helpWidth: 100 });
  const path = [...prefix, command.name()];
  const own = {
    path: path.join(" "),
    help: command.helpInformation().trimEnd(),
  };
  return [
    own,
    ...command.commands
      .filter((c) => c.name() !== "help")
      .flatMap((c) => walk(c, path)),
  ];
}

export async function renderUsage(): Promise<string> {
  const sections = walk(await buildProgram(), []).map(
    ({ path, help }) => `### \`${path}\`\n\n\`\`\`text\n${help}\n\`\`\``,
  );
  return [USAGE_BEGIN, "", ...sections.flatMap((s) => [s, ""]), USAGE_END].join(
    "\n",
  );
}

/** Replaces the marked block in `readme` with the current usage. */
export async function withUsage(readme: string): Promise<string> {
  const start = readme.indexOf(USAGE_BEGIN);
  const end = readme.indexOf(USAGE_END);
  if (start < 0 || end < start) {
    throw new Error(
      `README.md lacks the ${USAGE_BEGIN} … ${USAGE_END} markers`,
    );
  }
  return (
    readme.slice(0, start) +
    (await renderUsage()) +
    readme.slice(end + USAGE_END.length)
  );
}
