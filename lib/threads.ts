/**
 * Worker threads that run one of this package's modules, from the compiled
 * `.js` or, in tests and under tsx, from the `.ts` source.
 */
import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * Starts a thread running the module `name` (without extension) in the
 * folder of `base` (the caller's `import.meta.url`). From source, a thread
 * does not inherit the parent's tsx loader on Node 20, so it registers tsx
 * itself before loading the `.ts` body.
 */
export function startModuleThread(
  base: string,
  name: string,
  options: WorkerOptions = {},
): Worker {
  const fromSource = base.endsWith(".ts");
  const url = new URL(`./${name}.${fromSource ? "ts" : "js"}`, base);
  if (!fromSource) {
    return new Worker(url, options);
  }
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
