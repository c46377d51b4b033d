/**
 * `upgrade plan` shows, for every sequence, the value migrate-tables will
 * really give it (the larger of the source's position and max(id)), how the
 * source sequence stood (a sequence not yet called is shown as such, not as
 * a value it never handed out), and type changes between the versions; a
 * value the target's type cannot hold is a problem. Checked against what
 * migrate-tables then does.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  createPreviousVersionDatabase,
  dumpDatabase,
} from "../../fixtures/previous-version.js";
import { withClient } from "../../lib/db/connect.js";
import { packageRoot } from "../../lib/paths.js";
import type { UpgradePlanReport } from "../../lib/upgrade/steps.js";
import { runCli } from "../helpers/cli.js";
import { testDatabase } from "../helpers/db.js";
import { tempDir } from "../helpers/tmp.js";

const MAPPING = join(packageRoot(), "mappings", "fitsstorage-v2-to-v3.json");

const upgrade = (command: string, target: string, from: string, json = false) =>
  runCli([
    "--database-url",
    target,
    ...(json ? ["--json"] : []),
    "upgrade",
    command,
    "--from",
    from,
    "--mapping",
    MAPPING,
    "--preset",
    "archive,summit",
  ]);

async function one(url: string, sql: string): Promise<Record<string, string>> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<Record<string, string>>(sql);
    return rows[0]!;
  });
}

describe("upgrade plan: sequences", () => {
  it("shows the value each sequence will be set to, a sequence not yet called as such, and type changes; migrate-tables does exactly that", async (t) => {
    const source = await testDatabase(t, { empty: true });
    await withClient(source.url, async (c) => {
      await createPreviousVersionDatabase(c, { usagelogRows: 3000, seed: 5 });
      // A table that never had a row, its sequence never called.
      await c.query("TRUNCATE qametricpe");
      await c.query("ALTER SEQUENCE qametricpe_id_seq RESTART WITH 1");
      // bigint in the source, integer in the target: the change back.
      await c.query("ALTER SEQUENCE archiveuser_id_seq AS bigint");
    });
    const notification = await one(
      source.url,
      "SELECT last_value::text AS last, is_called::text AS called, (SELECT max(id) FROM notification)::text AS max FROM notification_id_seq",
    );
    // The fixture leaves it as "next value = max + 1", not called.
    assert.equal(notification.called, "false");
    const max = BigInt(notification.max!);
    assert.equal(BigInt(notification.last!), max + 1n);

    const dump = join(tempDir(t), "v2.dump");
    await dumpDatabase(source.url, dump, "custom");
    for (const from of [source.url, dump]) {
      const target = await testDatabase(t);
      const cli = await upgrade("plan", target.url, from);
      assert.equal(cli.code, 0, cli.stderr);
      assert.ok(
        cli.stdout.includes(
          `  sequence public.notification_id_seq (id, integer): set to ${max}, next id ${max + 1n} (source public.notification_id_seq not called (is_called false), its next value ${max + 1n}; max(id) ${max})`,
        ),
        cli.stdout,
      );
      assert.ok(
        cli.stdout.includes(
          "  sequence public.qametricpe_id_seq (id, integer): set to 1, not called, next id 1 (source public.qametricpe_id_seq not called (is_called false), its next value 1; max(id) none)",
        ),
        cli.stdout,
      );
      assert.match(
        cli.stdout,
        /^ {2}sequence public\.usagelog_id_seq \(id, integer -> bigint\): set to \d+, next id \d+ \(source public\.usagelog_id_seq at \d+; max\(id\) \d+\)$/m,
      );
      assert.match(
        cli.stdout,
        /^ {2}sequence public\.users_id_seq \(id, bigint -> integer\): set to \d+, next id \d+ /m,
      );

      // What the plan says is what migrate-tables does, for every sequence.
      const json = await upgrade("plan", target.url, from, true);
      assert.equal(json.code, 0, json.stderr);
      const report = JSON.parse(json.stdout) as UpgradePlanReport;
      const migrated = await upgrade("migrate-tables", target.url, from);
      assert.equal(migrated.code, 0, migrated.stderr);
      let checked = 0;
      for (const table of report.tables) {
        for (const s of table.sequences) {
          const after = await one(
            target.url,
            `SELECT last_value::text AS last, is_called::text AS called FROM ${s.sequence}`,
          );
          assert.deepEqual(
            [after.last, after.called === "true"],
            [s.setTo, s.isCalled],
            `${s.sequence} after migrate-tables`,
          );
          const next = await one(
            target.url,
            `SELECT nextval('${s.sequence}')::text AS next`,
          );
          assert.equal(next.next, s.nextId, s.sequence);
          checked++;
        }
      }
      assert.equal(checked, 14);
    }
  });

  it("a sequence value the target's type cannot hold is a problem, in the plan and before migrate-tables writes anything (exit 3)", async (t) => {
    const source = await testDatabase(t, { empty: true });
    await withClient(source.url, async (c) => {
      await createPreviousVersionDatabase(c, { usagelogRows: 300, seed: 5 });
      await c.query("ALTER SEQUENCE archiveuser_id_seq AS bigint");
      await c.query("SELECT setval('archiveuser_id_seq', 3000000000)");
    });
    const target = await testDatabase(t);
    const problem =
      "users.id: the target's sequence public.users_id_seq is integer (at most 2147483647), but its next value must be 3000000001 (the source's public.archiveuser_id_seq is bigint); make the target column and its sequence bigint before migrating";
    const plan = await upgrade("plan", target.url, source.url);
    assert.equal(plan.code, 3, plan.stderr);
    assert.ok(plan.stdout.includes(`  - ${problem}`), plan.stdout);
    assert.match(
      plan.stdout,
      /^ {2}sequence public\.users_id_seq \(id, bigint -> integer\): set to 3000000000, next id 3000000001 \(source public\.archiveuser_id_seq at 3000000000; /m,
    );
    const migrate = await upgrade("migrate-tables", target.url, source.url);
    assert.equal(migrate.code, 3, migrate.stderr);
    assert.ok(migrate.stderr.includes(`  - ${problem}`), migrate.stderr);
    const users = await one(
      target.url,
      "SELECT count(*)::text AS n FROM users",
    );
    assert.equal(users.n, "0");
  });
});
