// Preloaded with `node --import` by test/cli/startup.test.ts: appends the URL of
// every module the process loads to the file named by FF_IMPORT_LOG, ES modules
// through a loader hook (its own thread) and CommonJS ones from the require
// cache at exit, so a heavy package reached either way is seen.
import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";

const log = process.env.FF_IMPORT_LOG;
if (log !== undefined) {
  register(
    "data:text/javascript," +
      encodeURIComponent(`
        import { appendFileSync } from "node:fs";
        export async function load(url, context, next) {
          appendFileSync(${JSON.stringify(log)}, url + "\\n");
          return next(url, context);
        }`),
  );
  const cache = createRequire(import.meta.url).cache;
  process.on("exit", () => {
    const urls = Object.keys(cache).map((f) => pathToFileURL(f).href);
    appendFileSync(log, urls.map((u) => `${u}\n`).join(""));
  });
}
