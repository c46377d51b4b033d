import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { it } from "node:test";

import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

it("stack up / status / demo / down work as the README says, with redacted URLs", async (t) => {
  const env = {
    FITSFLEET_STACK_DIR: tempDir(t, "ff-stackcli-"),
  };
  try {
    const up = await runCli(["--json", "stack", "up"], env);
    assert.equal(up.code, 0, up.stderr);
    const report = JSON.parse(up.stdout) as {
      running: boolean;
      created: boolean;
      postgres: { url: string; port: number };
    };
    assert.equal(report.running, true);
    assert.equal(report.created, true);
    assert.match(
      report.postgres.url,
      /^postgres:\/\/fitsfleet:\*\*\*@127\.0\.0\.1:\d+\/fitsfleet$/,
    );

    // Other commands find the running stack without any URL.
    const demo = await runCli(["demo", "--files", "80"], env);
    assert.equal(demo.code, 0, demo.stderr);
    assert.match(
      demo.stdout,
      /== db init[\s\S]*schema is now at version \d+[\s\S]*== db status[\s\S]*0 pending/,
    );
    // The upgrade stage: a generated v2 dump (verified by its manifest) carried into the fresh schema.
    assert.match(
      demo.stdout,
      /== upgrade migrate-tables[\s\S]*verified against .*previous-version\.dump\.manifest\.json[\s\S]*users +archiveuser +\d[\d,]* +match[\s\S]*14 table\(s\), [\d,]+ rows in [\d.]+ s; committed/,
    );
    // The rebuild stage: a synthetic archive through two local worker processes, broken files reported.
    assert.match(
      demo.stdout,
      /== rebuild[\s\S]*synthetic archive .*: 80 files \(\d+ \.bz2, (\d+) deliberately broken\)[\s\S]*2 local worker processes[\s\S]*ingested (\d+), failed (\d+)[\s\S]*rows: file \d+, diskfile \d+, header \d+, gmos \d+, niri \d+, f2 \d+, gnirs \d+[\s\S]*failures/,
    );
    const counts =
      /(\d+) deliberately broken[\s\S]*ingested (\d+), failed (\d+)/.exec(
        demo.stdout,
      )!;
    assert.equal(
      Number(counts[3]),
      Number(counts[1]),
      "exactly the broken files fail",
    );
    assert.equal(Number(counts[2]) + Number(counts[3]), 80);
    // Every ingested file got its preview while it was ingested, on disk beside the archive.
    const previews =
      /previews: (\d+) JPEGs in (\S+), rendered while ingesting/.exec(
        demo.stdout,
      );
    assert.ok(previews !== null, demo.stdout);
    assert.equal(Number(previews[1]), Number(counts[2]));
    const jpegs = readdirSync(previews[2]!, { recursive: true }).filter((f) =>
      String(f).endsWith(".jpg"),
    );
    assert.equal(jpegs.length, Number(counts[2]));
    // The README's main command can run again on the same stack.
    const again = await runCli(["demo", "--files", "80"], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      /14 table\(s\), [\d,]+ rows in [\d.]+ s; committed/,
    );
    const status = await runCli(["db", "status", "--check"], env);
    assert.equal(status.code, 0, status.stderr);

    const stackStatus = await runCli(["stack", "status"], env);
    assert.equal(stackStatus.code, 0);
    assert.match(
      stackStatus.stdout,
      /PGPASSFILE=.*psql -h 127\.0\.0\.1 -p \d+ -U fitsfleet fitsfleet/,
    );
    assert.doesNotMatch(
      stackStatus.stdout + up.stdout + demo.stdout + demo.stderr,
      /fitsfleet:(?!\*\*\*)[^@\s]+@/,
    );

    const down = await runCli(["stack", "down"], env);
    assert.equal(down.code, 0);
    assert.match(down.stdout, /stopped redis, postgres; data kept/);
    const stopped = await runCli(["stack", "status"], env);
    assert.equal(stopped.code, 3);
  } finally {
    const purge = await runCli(["stack", "down", "--purge"], env);
    assert.equal(purge.code, 0);
  }
});
