import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { loadConfig } from "../../lib/config.js";
import { ConfigError, EXIT } from "../../lib/errors.js";

const file = (content: object | string) => () =>
  typeof content === "string" ? content : JSON.stringify(content);

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(
      error instanceof ConfigError,
      `expected a ConfigError, got ${String(error)}`,
    );
    return error;
  }
  assert.fail("expected loadConfig to throw");
}

describe("loadConfig", () => {
  it("takes flag over environment over file over default, and records the source", () => {
    const config = loadConfig({
      flags: { config: "c.json", databaseUrl: "postgres://flag@h/db" },
      env: {
        DATABASE_URL: "postgres://env@h/db",
        REDIS_URL: "redis://env:6379",
      },
      readFile: file({
        databaseUrl: "postgres://file@h/db",
        redisUrl: "redis://file:6379",
        logLevel: "warn",
      }),
    });
    assert.equal(config.databaseUrl, "postgres://flag@h/db");
    assert.equal(config.redisUrl, "redis://env:6379");
    assert.equal(config.logLevel, "warn");
    assert.equal(config.logFormat, "text");
    assert.deepEqual(
      {
        db: config.sources.databaseUrl,
        redis: config.sources.redisUrl,
        level: config.sources.logLevel,
        format: config.sources.logFormat,
      },
      { db: "flag", redis: "env", level: "file", format: "default" },
    );
  });

  it("prefers FITSFLEET_DATABASE_URL over DATABASE_URL and ignores empty variables", () => {
    const config = loadConfig({
      env: {
        FITSFLEET_DATABASE_URL: "postgres://a@h/x",
        DATABASE_URL: "postgres://b@h/y",
        FITSFLEET_REDIS_URL: "",
        REDIS_URL: "redis://r:1",
      },
    });
    assert.equal(config.databaseUrl, "postgres://a@h/x");
    assert.equal(config.redisUrl, "redis://r:1");
  });

  it("reads the config file named by FITSFLEET_CONFIG", () => {
    const config = loadConfig({
      env: { FITSFLEET_CONFIG: "/etc/ff.json" },
      readFile: file({ logFormat: "json" }),
    });
    assert.equal(config.logFormat, "json");
    assert.equal(config.configFile, "/etc/ff.json");
  });

  it("reports every problem at once, naming where each bad value came from", () => {
    const error = configError(() =>
      loadConfig({
        flags: { config: "c.json", logLevel: "loud" },
        env: {
          REDIS_URL: "http://nope",
          FITSFLEET_DATABSE_URL: "postgres://x@h/db",
        },
        readFile: file({
          databaseUrl: "mysql://u:hunter22@h/db",
          stackdir: "/x",
        }),
      }),
    );
    assert.equal(error.exitCode, EXIT.usage);
    const text = error.problems.join("\n");
    assert.equal(error.problems.length, 5, text);
    assert.match(
      text,
      /FITSFLEET_DATABSE_URL: unknown environment variable \(did you mean FITSFLEET_DATABASE_URL\?\)/,
    );
    assert.match(text, /unknown key "stackdir" \(did you mean "stackDir"\?\)/);
    assert.match(text, /logLevel \(from --log-level\)/);
    assert.match(text, /redisUrl \(from REDIS_URL\): must be a redis:\/\//);
    assert.match(
      text,
      /databaseUrl \(from c\.json key "databaseUrl"\): must be a postgres:\/\//,
    );
    assert.doesNotMatch(
      error.message,
      /hunter22/,
      "a password in a rejected URL must not be echoed",
    );
  });

  it("explains an unreadable or malformed config file", () => {
    const missing = configError(() =>
      loadConfig({
        flags: { config: "/nope.json" },
        env: {},
        readFile: () => {
          throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
        },
      }),
    );
    assert.match(missing.message, /config file \/nope\.json: file not found/);
    assert.match(
      configError(() =>
        loadConfig({
          flags: { config: "b.json" },
          env: {},
          readFile: file("{oops"),
        }),
      ).message,
      /b\.json: not valid JSON/,
    );
    assert.match(
      configError(() =>
        loadConfig({
          flags: { config: "a.json" },
          env: {},
          readFile: file("[1]"),
        }),
      ).message,
      /must hold a JSON object/,
    );
  });

  it("has sensible defaults with nothing set", () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.logLevel, "info");
    assert.match(config.stackDir, /fitsfleet-stack$/);
  });
});
