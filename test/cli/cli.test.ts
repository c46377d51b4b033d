/**
 * The real CLI as a subprocess: help, version, usage errors, configuration
 * errors, and db init/status against real databases, with exit codes.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { buildProgram, everyCommand } from "../../cli/program.js";
import { withClient } from "../../lib/db/connect.js";
import { loadMigrations } from "../../lib/db/migrate.js";
import { packageRoot } from "../../lib/paths.js";
import { CLI, runCli } from "../helpers/cli.js";
import { testDatabase } from "../helpers/db.js";
import { REFERENCE_SCHEMA } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const noStackTrace = (text: string) =>
  assert.doesNotMatch(
    text,
    /\n\s+at .+:\d+:\d+/,
    `a stack trace leaked:\n${text}`,
  );

describe("fitsfleet CLI", () => {
  it("stops quietly when its reader goes away (| head)", async () => {
    const child = spawn(process.execPath, [CLI, "--help"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    // The reader is gone before the CLI writes a byte.
    child.stdout.destroy();
    const [code] = (await once(child, "close")) as [number | null];
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
  });

  it("--help lists every command group, the environment and the exit codes", async () => {
    const { code, stdout } = await runCli(["--help"]);
    assert.equal(code, 0);
    for (const group of ["demo", "db", "stack"]) {
      assert.match(
        stdout,
        new RegExp(`^  ${group}\\s+\\S`, "m"),
        `group ${group} missing`,
      );
    }
    for (const flag of [
      "--config",
      "--database-url",
      "--redis-url",
      "--json",
      "--log-level",
    ]) {
      assert.ok(stdout.includes(flag), `global flag ${flag} missing`);
    }
    assert.match(stdout, /Exit codes:/);
    assert.match(stdout, /DATABASE_URL/);
  });

  it("--version prints the package version", async () => {
    const { version } = JSON.parse(
      readFileSync(join(packageRoot(), "package.json"), "utf8"),
    ) as { version: string };
    const { code, stdout } = await runCli(["--version"]);
    assert.equal(code, 0);
    assert.equal(stdout.trim(), version);
  });

  it("a wrong flag exits 2 with one clear message and no stack trace", async () => {
    const { code, stdout, stderr } = await runCli(["db", "init", "--dry-rnu"]);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, /^error: unknown option '--dry-rnu'/);
    assert.match(stderr, /Did you mean --dry-run\?/);
    assert.match(stderr, /hint: run `fitsfleet db init --help`/);
    noStackTrace(stderr);
  });

  it("an unknown command or a missing subcommand exits 2", async () => {
    const unknown = await runCli(["db", "inti"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'inti'/);
    const bare = await runCli(["stack"]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /`fitsfleet stack` needs a subcommand/);
  });

  it("an unknown command is a usage error naming it, with --help as without", async () => {
    for (const [args, name, path] of [
      [["frobnicate", "--help"], "frobnicate", "fitsfleet"],
      [["frobnicate"], "frobnicate", "fitsfleet"],
      [["nosuch"], "nosuch", "fitsfleet"],
      [["help", "nosuch"], "nosuch", "fitsfleet"],
      [["db", "nosuch", "--help"], "nosuch", "fitsfleet db"],
    ] as const) {
      const { code, stdout, stderr } = await runCli(args);
      assert.equal(code, 2, args.join(" "));
      assert.equal(stdout, "", args.join(" "));
      assert.match(stderr, new RegExp(`^error: unknown command '${name}'\n`));
      assert.ok(
        stderr.includes(`hint: \`${path}\` has the commands `) &&
          stderr.includes(`run \`${path} --help\` for usage`),
        stderr,
      );
      noStackTrace(stderr);
    }
    const typo = await runCli(["rebuid", "status"]);
    assert.equal(typo.code, 2);
    assert.match(
      typo.stderr,
      /unknown command 'rebuid' \(did you mean 'rebuild'\?\)/,
    );
  });

  it("a subcommand's help lists the global options, --storage for rebuild enqueue", async () => {
    const { code, stdout } = await runCli(["rebuild", "enqueue", "--help"]);
    assert.equal(code, 0);
    const globals = stdout.slice(stdout.indexOf("Global Options:"));
    assert.ok(stdout.includes("Global Options:"), stdout);
    for (const flag of [
      "--storage <location>",
      "--database-url <url>",
      "--redis-url <url>",
      "--config <file>",
    ]) {
      assert.ok(globals.includes(flag), `${flag} missing:\n${stdout}`);
    }
    for (const command of everyCommand(await buildProgram())) {
      if (command.parent !== null) {
        assert.match(
          command.helpInformation(),
          /Global Options:\n(.|\n)*--storage/,
          command.name(),
        );
      }
    }
  });

  it("reports every configuration problem at once, exit 2", async (t) => {
    const dir = tempDir(t, "ff-conf-");
    const file = join(dir, "fitsfleet.json");
    writeFileSync(
      file,
      JSON.stringify({ databaseURL: "postgres://x@h/db", logLevel: "chatty" }),
    );
    const { code, stderr } = await runCli(["--config", file, "db", "status"], {
      FITSFLEET_REDIS: "x",
    });
    assert.equal(code, 2);
    assert.match(stderr, /invalid configuration \(3 problems\)/);
    assert.match(
      stderr,
      /unknown key "databaseURL" \(did you mean "databaseUrl"\?\)/,
    );
    assert.match(stderr, /logLevel \(from .*fitsfleet\.json key "logLevel"\)/);
    assert.match(stderr, /FITSFLEET_REDIS: unknown environment variable/);
    noStackTrace(stderr);
  });

  it("says how to get a database when none is configured and no stack runs", async () => {
    const { code, stderr } = await runCli(["db", "status"]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      /databaseUrl: required\. Pass --database-url, set FITSFLEET_DATABASE_URL or DATABASE_URL/,
    );
    assert.match(stderr, /fitsfleet stack up/);
  });

  it("an unreachable server exits 4 without revealing the password", async () => {
    const { code, stderr } = await runCli(["db", "init"], {
      DATABASE_URL: "postgres://archive:Tr0ub4dor@127.0.0.1:9/fits",
    });
    assert.equal(code, 4);
    assert.match(
      stderr,
      /cannot connect to PostgreSQL at postgres:\/\/archive:\*\*\*@127\.0\.0\.1:9\/fits: connection refused/,
    );
    assert.doesNotMatch(stderr, /Tr0ub4dor/);
    noStackTrace(stderr);
    const debug = await runCli(["--log-level", "debug", "db", "init"], {
      DATABASE_URL: "postgres://archive:Tr0ub4dor@127.0.0.1:9/fits",
    });
    assert.equal(debug.code, 4);
    assert.match(debug.stderr, /\n\s+at /, "--log-level debug shows the stack");
    assert.doesNotMatch(debug.stderr, /Tr0ub4dor/);
  });

  it("--json errors are one parseable object on stderr", async () => {
    const { code, stderr } = await runCli(["--json", "db", "status"], {
      DATABASE_URL: "postgres://a:b-secret@127.0.0.1:9/x",
    });
    assert.equal(code, 4);
    const parsed = JSON.parse(stderr) as {
      error: {
        code: string;
        exitCode: number;
        message: string;
        suggestion: string;
      };
    };
    assert.equal(parsed.error.code, "external");
    assert.equal(parsed.error.exitCode, 4);
    assert.doesNotMatch(stderr, /b-secret/);
  });

  it("db init creates the schema, db status shows it, and a second init is a no-op", async (t) => {
    const db = await testDatabase(t, { empty: true });
    const env = { DATABASE_URL: db.url };
    const pending = await runCli(["db", "status", "--check"], env);
    assert.equal(pending.code, 3, pending.stderr);
    assert.match(pending.stdout, /0001\s+archive_schema\s+pending/);

    const init = await runCli(["db", "init"], env);
    assert.equal(init.code, 0, init.stderr);
    assert.match(
      init.stdout,
      new RegExp(`applied ${loadMigrations().length} migration\\(s\\)`),
    );
    assert.doesNotMatch(
      init.stdout + init.stderr,
      new RegExp(new URL(db.url).password),
    );
    const tables = await withClient(db.url, (c) =>
      c.query(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
      ),
    );
    assert.equal(tables.rows[0].n, 61);

    const status = await runCli(["--json", "db", "status", "--check"], env);
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as {
      current: number;
      pending: number;
      database: string;
    };
    assert.equal(report.current, loadMigrations().length);
    assert.equal(report.pending, 0);
    assert.match(report.database, /:\*\*\*@/);

    const again = await runCli(["db", "init"], env);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /nothing to do/);
  });

  it("db diff compares with the reference DDL: exit 0 when equal, 1 with the differences", async (t) => {
    const reference = REFERENCE_SCHEMA;
    const db = await testDatabase(t);
    const env = { DATABASE_URL: db.url };
    const same = await runCli(
      [
        "db",
        "diff",
        "--reference",
        reference,
        "--preset",
        "ingest,archive,summit",
      ],
      env,
    );
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /\(28 tables\)\nno differences/);
    await withClient(db.url, (c) =>
      c.query("ALTER TABLE users ADD COLUMN nickname text"),
    );
    const changed = await runCli(
      ["db", "diff", "--reference", reference, "--tables", "users"],
      env,
    );
    assert.equal(changed.code, 1);
    assert.match(
      changed.stdout,
      /users\.nickname \(text\) is not in the reference/,
    );
    const badPreset = await runCli(
      ["db", "diff", "--reference", reference, "--preset", "everything"],
      env,
    );
    assert.equal(badPreset.code, 2);
    assert.match(
      badPreset.stderr,
      /--preset: unknown preset "everything"; choose from ingest, archive, summit/,
    );
  });

  it("refuses a database newer than the code with exit 5", async (t) => {
    const db = await testDatabase(t);
    await withClient(db.url, (c) =>
      c.query(
        "INSERT INTO fitsfleet.schema_migrations (version, name, sha256) VALUES (9999, 'from_the_future', 'x')",
      ),
    );
    const { code, stderr } = await runCli(["db", "init"], {
      DATABASE_URL: db.url,
    });
    assert.equal(code, 5);
    assert.match(
      stderr,
      /schema version 9999 but this fitsfleet only knows versions up to/,
    );
    noStackTrace(stderr);
  });

  it("a missing server program exits 6, names the package to install, and creates nothing", async (t) => {
    const dir = join(tempDir(t), "stack");
    const { code, stderr } = await runCli(["stack", "up"], {
      PATH: "/nonexistent",
      FITSFLEET_STACK_DIR: dir,
    });
    assert.equal(code, 6);
    assert.equal(existsSync(dir), false);
    assert.match(stderr, /required program not found: redis-server/);
    assert.match(stderr, /apt-get install redis-server/);
  });
  it("`infra iam-policy` prints both policies as JSON; without an S3 archive it is a usage error", async () => {
    const ok = await runCli([
      "--json",
      "--storage",
      "s3://gemini-archive/data",
      "infra",
      "iam-policy",
      "--worker-role",
      "fitsfleet-worker",
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const policies = JSON.parse(ok.stdout) as Record<
      string,
      { Version: string }
    >;
    assert.deepEqual(Object.keys(policies).sort(), ["operator", "worker"]);
    assert.equal(policies.worker!.Version, "2012-10-17");
    const bad = await runCli([
      "--storage",
      "/data/archive",
      "infra",
      "iam-policy",
      "--worker-role",
      "w",
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--storage \/data\/archive: an S3 location/);
  });
});
