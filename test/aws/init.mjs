// An instance's "init": the leader of the instance's process group. It runs
// the image's boot command, passes SIGTERM on to it (the instance is being
// shut down), exits with its status, and kills the whole group when its own
// stdin reaches EOF: that pipe's other end belongs to the endpoint, so EOF
// means the endpoint's process has died, even by SIGKILL, and no instance
// outlives it. Plain JavaScript, so it starts in a few milliseconds.
import { spawn } from "node:child_process";
import { constants } from "node:os";

const [command, ...args] = process.argv.slice(2);

function killGroup() {
  try {
    process.kill(-process.pid, "SIGKILL");
  } catch {
    process.exit(137);
  }
}
process.stdin.on("end", killGroup);
process.stdin.on("error", killGroup);
process.stdin.resume();

const child = spawn(command, args, { stdio: ["ignore", "inherit", "inherit"] });
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    child.kill(signal);
  });
}
child.on("error", (error) => {
  process.stderr.write(`init: cannot start ${command}: ${error.message}\n`);
  process.exit(127);
});
child.on("exit", (code, signal) => {
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
});
