/**
 * Kill points for the tests of `rebuild run --resume`: with
 * FFTEST_RUN_KILL_AT=POINT in its environment, the process SIGKILLs
 * itself when it reaches POINT (`before:STEP`, `after:STEP`, or a step's
 * own point inside it, such as `enqueue:ledger-written`), so a test can
 * stop a real run exactly there. Unset, it does nothing.
 */
export const KILL_AT_VARIABLE = "FFTEST_RUN_KILL_AT";

export function killPoint(point: string): void {
  if (process.env[KILL_AT_VARIABLE] === point) {
    process.kill(process.pid, "SIGKILL");
  }
}

/**
 * With FFTEST_RUN_HOLD_AT=POINT (a `before:STEP` point), the process stops
 * there and waits, its timers (the lease renewal) still running, until a
 * test kills it, or until `signal` aborts (the coordinator lost its lease):
 * so that a standby is surely waiting when it dies.
 */
export const HOLD_AT_VARIABLE = "FFTEST_RUN_HOLD_AT";

export async function holdPoint(
  point: string,
  signal?: AbortSignal,
): Promise<void> {
  if (process.env[HOLD_AT_VARIABLE] === point) {
    process.stderr.write(`holding at ${point}\n`);
    await new Promise<void>((resolve) => {
      const keepAlive = setInterval(() => undefined, 60_000);
      signal?.addEventListener("abort", () => {
        clearInterval(keepAlive);
        resolve();
      });
    });
  }
}
