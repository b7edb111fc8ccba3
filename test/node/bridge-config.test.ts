/**
 * The bridge's configuration (env, laravel-echo-server.json) and the message
 * shape it forwards; pure functions, no Redis needed.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, configFromEnv, describeConfig } from "../../bridge/config.ts";
import { toWireMessage } from "../../bridge/message.ts";

const SECRET = { BRIDGE_SECRET: "s3cr3t-value" };

function legacyFile(contents: object): string {
  const path = join(mkdtempSync(join(tmpdir(), "bridge-config-")), "laravel-echo-server.json");
  writeFileSync(path, JSON.stringify(contents));
  return path;
}

describe("configuration from the environment", () => {
  it("defaults to a local Redis, Laravel's prefix and the local worker", () => {
    expect(configFromEnv(SECRET)).toMatchObject({
      redis: { host: "127.0.0.1", port: 6379, db: 0, tls: false, password: undefined },
      prefix: "laravel_database_",
      echoUrl: "http://127.0.0.1:6001",
      appId: "app",
      healthPort: 6002,
      maxMessageBytes: 1024 * 1024,
    });
  });

  it("follows the worker's PORT and takes the first app of its CLIENTS unless APP_ID says otherwise", () => {
    const env = { ...SECRET, PORT: "7000", CLIENTS: '[{"appId":"shop","key":"k"},{"appId":"blog","key":"k2"}]' };
    expect(configFromEnv(env)).toMatchObject({ echoUrl: "http://127.0.0.1:7000", appId: "shop" });
    expect(configFromEnv({ ...env, APP_ID: "blog" }).appId).toBe("blog");
    // Read as the worker reads it (worker/clients.ts): what the worker would refuse, the bridge refuses too.
    expect(() => configFromEnv({ ...SECRET, CLIENTS: '[{"appId":"shop"}]' })).toThrow(/CLIENTS\[0\] needs string appId and key/);
    expect(() => configFromEnv({ ...SECRET, CLIENTS: "{nope" })).toThrow(/CLIENTS is not JSON/);
  });

  it("reads REDIS_URL, with TLS for rediss:// and REDIS_PASSWORD when the URL has none", () => {
    expect(configFromEnv({ ...SECRET, REDIS_URL: "rediss://user:p%40ss@cache.example.com:6380/3" }).redis).toEqual({
      host: "cache.example.com",
      port: 6380,
      db: 3,
      username: "user",
      password: "p@ss",
      tls: true,
    });
    expect(configFromEnv({ ...SECRET, REDIS_URL: "redis://cache:6379", REDIS_PASSWORD: "from-env" }).redis.password).toBe(
      "from-env",
    );
  });

  it("reads REDIS_HOST/PORT/PASSWORD/DB, and takes Laravel's null as unset", () => {
    const env = { ...SECRET, REDIS_HOST: "redis", REDIS_PORT: "6390", REDIS_DB: "1", REDIS_PASSWORD: "null" };
    expect(configFromEnv(env).redis).toMatchObject({ host: "redis", port: 6390, db: 1, password: undefined });
  });

  it("keeps an empty REDIS_PREFIX: Laravel then publishes channel names unprefixed", () => {
    expect(configFromEnv({ ...SECRET, REDIS_PREFIX: "" }).prefix).toBe("");
  });

  it("refuses what cannot work, naming the variable", () => {
    expect(() => configFromEnv({})).toThrow(/BRIDGE_SECRET is required/);
    expect(() => configFromEnv({ ...SECRET, BRIDGE_CONCURRENCY: "0" })).toThrow(/BRIDGE_CONCURRENCY must be an integer >= 1/);
    expect(() => configFromEnv({ ...SECRET, REDIS_URL: "http://cache" })).toThrow(/REDIS_URL must start with redis:/);
    expect(() => configFromEnv({ ...SECRET, ECHO_URL: "ws://x" })).toThrow(/ECHO_URL must be http/);
    expect(() => configFromEnv(SECRET, ["--port", "1"])).toThrow(ConfigError);
  });

  it("prints the effective settings without secrets", () => {
    const config = configFromEnv({
      ...SECRET,
      REDIS_URL: "redis://:redis-pass@cache:6379",
      ECHO_URL: "https://user:url-pass@echo.example.com/",
    });
    const text = describeConfig(config).join("\n");
    expect(text).toContain("redis://cache:6379/0");
    expect(text).toContain("https://***@echo.example.com/apps/app/publish");
    for (const secret of ["s3cr3t-value", "redis-pass", "url-pass"]) expect(text).not.toContain(secret);
  });
});

describe("configuration from laravel-echo-server.json (--config)", () => {
  const file = {
    clients: [{ appId: "5f0d3a1c", key: "k" }],
    databaseConfig: { redis: { host: "redis.internal", port: "6380", password: "pw", db: 2, keyPrefix: "laravel_database_" } },
  };

  it("takes Redis, prefix and app from the file", () => {
    expect(configFromEnv(SECRET, ["--config", legacyFile(file)])).toMatchObject({
      redis: { host: "redis.internal", port: 6380, password: "pw", db: 2 },
      prefix: "laravel_database_",
      appId: "5f0d3a1c",
    });
  });

  it("applies laravel-echo-server's env overrides, and REDIS_PREFIX over keyPrefix", () => {
    const env = {
      ...SECRET,
      LARAVEL_ECHO_SERVER_REDIS_HOST: "other",
      LARAVEL_ECHO_SERVER_REDIS_PORT: "6399",
      LARAVEL_ECHO_SERVER_REDIS_PASSWORD: "pw2",
      REDIS_PREFIX: "shop_database_",
    };
    expect(configFromEnv(env, [`--config=${legacyFile(file)}`])).toMatchObject({
      redis: { host: "other", port: 6399, password: "pw2" },
      prefix: "shop_database_",
    });
  });

  it("subscribes to everything, as laravel-echo-server did, when the file has no keyPrefix", () => {
    const path = legacyFile({ databaseConfig: { redis: { host: "redis" } } });
    expect(configFromEnv(SECRET, ["--config", path])).toMatchObject({ prefix: "", appId: "app" });
  });

  it("says which file is wrong", () => {
    expect(() => configFromEnv(SECRET, ["--config", "/nonexistent/laravel-echo-server.json"])).toThrow(
      /Cannot read \/nonexistent\/laravel-echo-server.json/,
    );
  });
});

describe("the message forwarded for a publish", () => {
  const forward = (payload: string, channel = "orders") => {
    const text = toWireMessage(channel, payload, 1000);
    return typeof text === "string" ? JSON.parse(text) : text;
  };

  it("is Laravel's payload with the channel, data and socket always present", () => {
    expect(forward('{"event":"E","data":{"a":1},"socket":"1.2"}')).toEqual({ channel: "orders", event: "E", data: { a: 1 }, socket: "1.2" });
    expect(forward(' {"event":"E"}\n')).toEqual({ channel: "orders", event: "E", data: null, socket: null });
  });

  it("carries the stripped channel name even when the payload has a channel of its own", () => {
    expect(forward('{"event":"E","data":1,"channel":"forged"}', 'a "quoted" \\ name').channel).toBe('a "quoted" \\ name');
  });

  it("is refused for what laravel-echo-server could not broadcast", () => {
    expect(forward("")).toEqual({ reason: "notJson" });
    expect(forward("null")).toEqual({ reason: "shapeless" });
    expect(forward('"E"')).toEqual({ reason: "shapeless" });
    expect(forward('{"event":null}')).toEqual({ reason: "shapeless" });
    expect(forward('{"event":"E","socket":{}}')).toEqual({ reason: "shapeless" });
    expect(forward(`{"event":"E","data":"${"x".repeat(1000)}"}`)).toEqual({ reason: "tooLarge" });
  });
});
