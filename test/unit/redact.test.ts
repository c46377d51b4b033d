import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { captureLogger, createLogger } from "../../lib/logger.js";
import { redactText, redactUrl, registerSecret } from "../../lib/redact.js";

describe("redaction", () => {
  it("masks URL passwords and keeps the rest readable", () => {
    assert.equal(
      redactUrl("postgres://archive:s3cr%40t@db.example:5432/fits"),
      "postgres://archive:***@db.example:5432/fits",
    );
    assert.equal(
      redactUrl("redis://:pw123456@127.0.0.1:6379"),
      "redis://:***@127.0.0.1:6379",
    );
    assert.equal(
      redactUrl("postgres://h/db?password=abc&sslmode=verify-full"),
      "postgres://h/db?password=***&sslmode=verify-full",
    );
    assert.equal(redactUrl("postgres://nouser@h/db"), "postgres://nouser@h/db");
  });

  it("masks credentials inside free text and key=value settings", () => {
    const text = redactText(
      "failed: postgres://u:topsecret@h/db and password=hunter2 requirepass 'x y'",
    );
    assert.doesNotMatch(text, /topsecret|hunter2/);
    assert.match(text, /postgres:\/\/u:\*\*\*@h\/db/);
  });

  it("masks registered secrets anywhere, plain or URL-encoded", () => {
    registerSecret("Zq9/x+generated-secret");
    const text = redactText(
      `a Zq9/x+generated-secret b ${encodeURIComponent("Zq9/x+generated-secret")} c`,
    );
    assert.equal(text, "a *** b *** c");
  });

  it("keeps secrets out of text and JSON log lines", () => {
    const text = captureLogger();
    text.info("connecting", { url: "postgres://u:pa55word@h/db" });
    assert.equal(text.lines.length, 1);
    assert.doesNotMatch(text.lines[0] ?? "", /pa55word/);
    const lines: string[] = [];
    createLogger({ format: "json", write: (l) => lines.push(l) }).warn("x", {
      nested: { url: "redis://:pa55word@h:1" },
    });
    const record = JSON.parse(lines[0] ?? "{}") as {
      level: string;
      nested: { url: string };
    };
    assert.equal(record.level, "warn");
    assert.equal(record.nested.url, "redis://:***@h:1");
  });

  it("drops lines below the configured level", () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "warn", write: (l) => lines.push(l) });
    logger.info("quiet");
    logger.debug("quieter");
    logger.child({ label: "db", run: 7 }).error("loud");
    assert.deepEqual(lines, ["ERROR [db] loud run=7"]);
  });
});
