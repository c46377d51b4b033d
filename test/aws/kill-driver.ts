/**
 * Run as its own process by instances.test.ts: starts an endpoint, launches
 * one instance whose boot command starts a grandchild, prints their pids as
 * one JSON line, and waits to be killed. It never closes the endpoint: the
 * point is that the instance's watchdog ends it all when this process dies.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { RunInstancesCommand } from "@aws-sdk/client-ec2";

import { startAwsEndpoint } from "./endpoint.js";

const root = process.argv[2] ?? "";
const aws = await startAwsEndpoint({ root });
const ami = aws.registerImage({
  name: "orphan",
  argv: ["sh", "-c", "sleep 600 & echo $! > grandchild.pid; wait"],
});
const run = await aws.ec2Client().send(
  new RunInstancesCommand({
    ImageId: ami,
    MinCount: 1,
    MaxCount: 1,
    MetadataOptions: { HttpTokens: "required" },
  }),
);
const id = run.Instances?.[0]?.InstanceId ?? "";
const [instance] = await aws.waitFor(
  (all) =>
    all[0]?.state === "running" &&
    existsSync(join(all[0].dir, "grandchild.pid")) &&
    readFileSync(join(all[0].dir, "grandchild.pid"), "utf8").trim() !== "",
);
const grandchild = Number(
  readFileSync(join(instance?.dir ?? "", "grandchild.pid"), "utf8"),
);
process.stdout.write(
  `${JSON.stringify({ id, pid: instance?.pid, grandchild })}\n`,
);
setInterval(() => undefined, 60_000);
