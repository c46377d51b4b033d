// The boot of a Debian cloud image, as little of it as the image tests
// need, for the base image of `ami bake` on the loopback AWS endpoint. The
// instance's folder (the working directory) is the machine's root.
//
// 1. systemd reads the enabled units (etc/systemd/system/
//    multi-user.target.wants/*.service) when it starts, before cloud-init
//    runs: a unit that the user-data enables starts at the next boot only.
// 2. cloud-init runs the user-data once, as a program, when it is a script
//    (`#!`); anything else (a fleet's JSON configuration) is not its
//    business. The script's FITSFLEET_ROOT is the instance's folder.
// 3. The collected units' ExecStart run. An absolute path that exists under
//    the root is taken from there (the bundle in /opt/fitsfleet); any other
//    is the host's (node). When one ends and the unit says
//    SuccessAction/FailureAction=poweroff, the machine powers off: this
//    process exits. With no unit, the machine idles until it is shut down.
// SIGTERM (the instance being stopped) goes to each unit's main process
// only, as KillMode=mixed sends it.
import { spawn } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
} from "node:fs";
import { join } from "node:path";

const root = process.cwd();
const wants = join(root, "etc/systemd/system/multi-user.target.wants");

function parseUnit(file) {
  const unit = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match !== null) {
      unit[match[1]] = match[2];
    }
  }
  return unit;
}

const units = existsSync(wants)
  ? readdirSync(wants)
      .filter((f) => f.endsWith(".service"))
      .sort()
      .map((f) => ({ name: f, ...parseUnit(join(wants, f)) }))
  : [];

const running = new Set();
let stopping = false;
process.on("SIGTERM", () => {
  stopping = true;
  if (running.size === 0) {
    process.exit(0);
  }
  for (const child of running) {
    child.kill("SIGTERM");
  }
});

function run(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "inherit", env });
    running.add(child);
    child.once("error", (error) => {
      running.delete(child);
      process.stdout.write(`init: cannot start ${command}: ${error.message}\n`);
      resolve(127);
    });
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
}

const userData = join(root, "user-data");
if (existsSync(userData) && readFileSync(userData, "utf8").startsWith("#!")) {
  const scripts = join(root, "var/lib/cloud/instance/scripts");
  mkdirSync(scripts, { recursive: true });
  const script = join(scripts, "part-001");
  copyFileSync(userData, script);
  chmodSync(script, 0o700);
  const code = await run(script, [], { ...process.env, FITSFLEET_ROOT: root });
  // cloud-init logs a failed script and the boot goes on.
  process.stdout.write(`cloud-init: user-data script exited ${code}\n`);
}

if (units.length === 0) {
  // The machine idles until it is shut down.
  setInterval(() => undefined, 1 << 30);
} else {
  await Promise.all(
    units.map(async (unit) => {
      const [command, ...args] = (unit.ExecStart ?? "")
        .split(/\s+/)
        .filter((w) => w !== "")
        .map((w) =>
          w.startsWith("/") && existsSync(join(root, w)) ? join(root, w) : w,
        );
      if (command === undefined || stopping) {
        return;
      }
      process.stdout.write(`systemd: starting ${unit.name}\n`);
      const code = await run(command, args, process.env);
      process.stdout.write(`systemd: ${unit.name} exited ${code}\n`);
      const action = code === 0 ? unit.SuccessAction : unit.FailureAction;
      if (action === "poweroff" || stopping) {
        process.exit(0);
      }
    }),
  );
  if (!stopping) {
    setInterval(() => undefined, 1 << 30);
  }
}
