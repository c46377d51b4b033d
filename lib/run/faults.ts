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
