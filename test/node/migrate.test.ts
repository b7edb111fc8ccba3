/**
 * `echo-edge migrate`: laravel-echo-server.json fixtures in, wrangler vars, worker
 * secrets, bridge env and notes out, through the real command and the functions
 * behind it.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseEnv } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { readLegacyConfig } from "../../cli/legacy-config.ts";
import { type Migration, migrateLegacyConfig } from "../../cli/migrate.ts";

const root = resolve(import.meta.dirname, "../..");
const fixture = (name: string) => join(root, "test/fixtures", name);
const REALISTIC = fixture("laravel-echo-server.json");
const MULTI_TENANT = fixture("laravel-echo-server.multi-tenant.json");
const MALFORMED = fixture("laravel-echo-server.malformed.json");

const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "echo-edge-migrate-"));
  tempDirs.push(dir);
  return dir;
}

/** The caller's environment without anything the command reads, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("LARAVEL_ECHO_SERVER_") && name !== "REDIS_PASSWORD"),
  );
  return { ...env, ...extra };
}

function runCli(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [join(root, "bin/echo-edge.js"), "migrate", ...args], {
    env: cleanEnv(env),
    encoding: "utf8",
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function migrateJson(args: string[], env: Record<string, string> = {}): Migration {
  const { status, stdout, stderr } = runCli([...args, "--json"], env);
  expect(stderr).toBe("");
  expect(status).toBe(0);
  return JSON.parse(stdout) as Migration;
}

const noteKeys = (migration: Migration) => migration.notes.flatMap((note) => note.key.split(", "));
/** The note about `key`; notes about several options name them all, comma-separated. */
const noteAbout = (migration: Migration, key: string) => migration.notes.find((note) => note.key.split(", ").includes(key));

describe("a laravel-echo-server.json as `laravel-echo-server init` writes it", () => {
  it("becomes exact wrangler vars, secrets and bridge env", () => {
    const migration = migrateJson([REALISTIC]);

    expect(migration.vars).toEqual({
      AUTH_HOST: "https://app.example.com",
      AUTH_ENDPOINT: "/broadcasting/auth",
      DEV_MODE: "true",
      ALLOW_ORIGIN: "https://app.example.com",
      ALLOW_METHODS: "GET, POST",
      ALLOW_HEADERS:
        "Origin, Content-Type, X-Auth-Token, X-Requested-With, Accept, Authorization, X-CSRF-TOKEN, X-Socket-Id",
    });
    expect(migration.secrets.CLIENTS).toBe('[{"appId":"5f0d3a1c9b2e4d7a","key":"3c9e1f0a7b2d4e6f8a1c3e5f7b9d0a2c"}]');
    expect(migration.secrets.BRIDGE_SECRET).toMatch(/^[0-9a-f]{64}$/);
    expect(migration.bridgeEnv).toEqual({
      ECHO_URL: "https://<your-worker-domain>",
      APP_ID: "5f0d3a1c9b2e4d7a",
      BRIDGE_SECRET: migration.secrets.BRIDGE_SECRET,
      REDIS_HOST: "redis.internal",
      REDIS_PORT: "6380",
      REDIS_PASSWORD: "pa ss#word",
      REDIS_DB: "2",
      REDIS_PREFIX: "laravel_database_",
    });
    expect(migration.envOverrides).toEqual([]);
  });

  it("generates a new bridge secret on every run", () => {
    expect(migrateJson([REALISTIC]).secrets.BRIDGE_SECRET).not.toBe(migrateJson([REALISTIC]).secrets.BRIDGE_SECRET);
  });

  it("explains what no longer applies: port, TLS, sticky sessions, the presence database", () => {
    const migration = migrateJson([REALISTIC]);

    expect(noteAbout(migration, "port")?.message).toMatch(/Cloudflare routes requests by domain/);
    for (const key of ["protocol", "sslCertPath", "sslKeyPath", "secureOptions"]) {
      expect(noteAbout(migration, key)?.message).toMatch(/TLS is automatic on Cloudflare/);
    }
    expect(noteAbout(migration, "sticky sessions")?.message).toMatch(/Not needed/);
    expect(noteAbout(migration, "databaseConfig.sqlite")?.message).toMatch(/Durable Objects/);
    // Options init writes empty are not worth a note.
    for (const key of ["host", "sslCertChainPath", "sslPassphrase"]) expect(noteKeys(migration)).not.toContain(key);
  });

  it("says which prefix the bridge strips and why", () => {
    const note = noteAbout(migrateJson([REALISTIC]), "REDIS_PREFIX");
    expect(note?.level).toBe("info");
    expect(note?.message).toContain('subscribed to "laravel_database_*" and cut "laravel_database_" off each channel name');
  });

  it("explains how to give the app a secret for Laravel's pusher broadcaster, which the file cannot have", () => {
    const migration = migrateJson([REALISTIC, "--echo-url", "https://echo.example.com"]);
    expect(JSON.parse(migration.secrets.CLIENTS)[0]).not.toHaveProperty("secret");
    const note = noteAbout(migration, "CLIENTS secret");
    expect(note?.level).toBe("info");
    expect(note?.message).toContain(
      '[{"appId":"5f0d3a1c9b2e4d7a","key":"3c9e1f0a7b2d4e6f8a1c3e5f7b9d0a2c","secret":"<a new random secret, e.g. openssl rand -hex 32>"}]',
    );
    expect(note?.message).toContain(
      "BROADCAST_CONNECTION=pusher, PUSHER_APP_ID=5f0d3a1c9b2e4d7a, PUSHER_APP_KEY=3c9e1f0a7b2d4e6f8a1c3e5f7b9d0a2c, " +
        "PUSHER_APP_SECRET=<the same secret>, PUSHER_HOST=echo.example.com, PUSHER_PORT=443, PUSHER_SCHEME=https",
    );
  });

  it("takes the worker URL from --echo-url", () => {
    const migration = migrateJson([REALISTIC, "--echo-url", "https://echo.example.com/"]);
    expect(migration.bridgeEnv.ECHO_URL).toBe("https://echo.example.com");
    expect(noteKeys(migration)).not.toContain("ECHO_URL");

    const rejected = runCli([REALISTIC, "--echo-url", "echo.example.com"]);
    expect(rejected.status).toBe(1);
    expect(rejected.stderr).toContain('--echo-url must be a URL such as https://echo.example.com, got "echo.example.com"');
  });
});

describe("environment overrides", () => {
  it("win over the file, as they did for laravel-echo-server", () => {
    const migration = migrateJson([REALISTIC], {
      LARAVEL_ECHO_SERVER_AUTH_HOST: "https://override.example.com",
      LARAVEL_ECHO_SERVER_DEBUG: "false",
      LARAVEL_ECHO_SERVER_REDIS_HOST: "redis.override",
      LARAVEL_ECHO_SERVER_REDIS_PORT: "7000",
      LARAVEL_ECHO_SERVER_REDIS_PASSWORD: "from-env",
    });

    expect(migration.vars).toMatchObject({ AUTH_HOST: "https://override.example.com", DEV_MODE: "false" });
    expect(migration.bridgeEnv).toMatchObject({ REDIS_HOST: "redis.override", REDIS_PORT: "7000", REDIS_PASSWORD: "from-env" });
    expect(migration.envOverrides).toEqual([
      "LARAVEL_ECHO_SERVER_AUTH_HOST",
      "LARAVEL_ECHO_SERVER_DEBUG",
      "LARAVEL_ECHO_SERVER_REDIS_HOST",
      "LARAVEL_ECHO_SERVER_REDIS_PORT",
      "LARAVEL_ECHO_SERVER_REDIS_PASSWORD",
    ]);
  });

  it("follow a ${VAR} reference to another variable", () => {
    const config = readLegacyConfig(REALISTIC, {
      LARAVEL_ECHO_SERVER_REDIS_PASSWORD: "${DOCKER_REDIS_SECRET}",
      DOCKER_REDIS_SECRET: "indirect",
    });
    expect(config.redis.password).toBe("indirect");
  });

  it("take the Redis password from REDIS_PASSWORD when the file has none, as Docker deployments do", () => {
    expect(readLegacyConfig(MULTI_TENANT, { REDIS_PASSWORD: "docker-secret" }).redis.password).toBe("docker-secret");
    // Laravel's .env.example spells "no password" as null.
    expect(readLegacyConfig(MULTI_TENANT, { REDIS_PASSWORD: "null" }).redis.password).toBeUndefined();
    expect(readLegacyConfig(REALISTIC, { REDIS_PASSWORD: "docker-secret" }).redis.password).toBe("pa ss#word");
  });

  it("are also read from a .env beside the config, below the real environment", () => {
    const dir = tempDir();
    copyFileSync(REALISTIC, join(dir, "laravel-echo-server.json"));
    writeFileSync(
      join(dir, ".env"),
      "APP_NAME=Laravel\nLARAVEL_ECHO_SERVER_AUTH_HOST=https://dotenv.example.com\nLARAVEL_ECHO_SERVER_REDIS_HOST=redis.dotenv\n",
    );

    const migration = migrateJson([join(dir, "laravel-echo-server.json")], { LARAVEL_ECHO_SERVER_REDIS_HOST: "redis.shell" });

    expect(migration.vars.AUTH_HOST).toBe("https://dotenv.example.com");
    expect(migration.bridgeEnv.REDIS_HOST).toBe("redis.shell");
    expect(noteAbout(migration, ".env")?.message).toContain(join(dir, ".env"));
  });
});

describe("options echo-edge does not carry over", () => {
  const migration = migrateLegacyConfig(readLegacyConfig(MULTI_TENANT, {}));

  it("warns that only the first of several auth hosts is used", () => {
    expect(migration.vars.AUTH_HOST).toBe("https://one.example.com");
    const warning = migration.notes.find((note) => note.key === "authHost" && note.level === "warning");
    expect(warning?.message).toContain("sends every auth request to the first one only, https://one.example.com");
  });

  it("rejects a custom socket.io path as unsupported but keeps the heartbeat timings", () => {
    expect(noteAbout(migration, "socketio.path")).toMatchObject({ level: "warning" });
    expect(noteAbout(migration, "socketio.path")?.message).toMatch(/^Unsupported/);
    expect(migration.vars).toMatchObject({ PING_INTERVAL: "10000", PING_TIMEOUT: "8000", MAX_CLIENTS: "5000" });
    expect(noteAbout(migration, "socketio.transports")?.message).toMatch(/^Ignored/);
  });

  it("generates an app for the bridge when the file has no clients", () => {
    const [client] = JSON.parse(migration.secrets.CLIENTS) as { appId: string; key: string }[];
    expect(client?.appId).toMatch(/^[0-9a-f]{16}$/);
    expect(client?.key).toMatch(/^[0-9a-f]{32}$/);
    expect(migration.bridgeEnv.APP_ID).toBe(client?.appId);
  });

  it("explains the empty prefix: channel names reach clients with Laravel's prefix, as before", () => {
    expect(migration.bridgeEnv.REDIS_PREFIX).toBe("");
    expect(noteAbout(migration, "REDIS_PREFIX")).toMatchObject({ level: "warning" });
    expect(noteAbout(migration, "REDIS_PREFIX")?.message).toContain("Laravel's Redis prefix included");
  });

  it("notes every leftover instead of dropping it silently", () => {
    expect(noteAbout(migration, "subscribers.http")?.message).toMatch(/always on/);
    expect(noteAbout(migration, "database")?.message).toMatch(/Durable Objects/);
    expect(noteAbout(migration, "databaseConfig.publishPresence")?.message).toMatch(/^Unsupported/);
    expect(noteAbout(migration, "databaseConfig.redis.sentinels")?.level).toBe("warning");
    expect(noteAbout(migration, "verbose")?.message).toMatch(/^Ignored/);
  });

  it("warns that several clients no longer share one set of channels", () => {
    const dir = tempDir();
    const file = join(dir, "laravel-echo-server.json");
    writeFileSync(file, JSON.stringify({ clients: [{ appId: "first", key: "k1" }, { appId: "second", key: "k2" }] }));
    const twoClients = migrateLegacyConfig(readLegacyConfig(file, {}));
    expect(twoClients.secrets.CLIENTS).toBe('[{"appId":"first","key":"k1"},{"appId":"second","key":"k2"}]');
    expect(twoClients.bridgeEnv.APP_ID).toBe("first");
    expect(noteAbout(twoClients, "clients")).toMatchObject({ level: "warning" });
    expect(noteAbout(twoClients, "clients")?.message).toContain('Browsers join the first app, "first"');
  });

  it("warns when the auth host is only reachable locally", () => {
    const local = migrateLegacyConfig(readLegacyConfig(REALISTIC, { LARAVEL_ECHO_SERVER_AUTH_HOST: "http://nginx" }));
    expect(noteAbout(local, "authHost")).toMatchObject({ level: "warning" });
    expect(noteAbout(local, "authHost")?.message).toMatch(/local or private address/);
  });
});

describe("bad input", () => {
  it("rejects malformed JSON with the file and the position of the error", () => {
    const { status, stdout, stderr } = runCli([MALFORMED, "--json"]);
    expect(status).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toContain(`${MALFORMED} is not valid JSON`);
    expect(stderr).toContain("line 5 column 1");
  });

  it("rejects a missing file clearly", () => {
    const missing = join(root, "test/fixtures/no-such-laravel-echo-server.json");
    const { status, stderr } = runCli([missing]);
    expect(status).toBe(1);
    expect(stderr).toContain(`Cannot read ${missing}: no such file`);
  });

  it("names the option that has the wrong type", () => {
    const dir = tempDir();
    const file = join(dir, "laravel-echo-server.json");
    writeFileSync(file, JSON.stringify({ databaseConfig: { redis: { port: "redis" } } }));
    const { status, stderr } = runCli([file]);
    expect(status).toBe(1);
    expect(stderr).toContain(`${file}: databaseConfig.redis.port must be a whole number, got "redis"`);
  });
});

describe("output", () => {
  it("prints the [vars] block, the secret commands and the bridge env", () => {
    const { status, stdout } = runCli([REALISTIC]);
    expect(status).toBe(0);
    expect(stdout).toContain('[vars]\nAUTH_HOST = "https://app.example.com"\n');
    expect(stdout).toMatch(/printf '%s' '\[\{"appId":"5f0d3a1c9b2e4d7a",.*\}\]' \| npx wrangler secret put CLIENTS/);
    expect(stdout).toMatch(/^BRIDGE_SECRET=[0-9a-f]{64}$/m);
    expect(stdout).toContain("REDIS_PREFIX=laravel_database_\n");
    expect(stdout).toContain("[info] sticky sessions: Not needed");
  });

  it("--out writes files that deliver the same values to wrangler and to the bridge", () => {
    const dir = tempDir();
    const out = join(dir, "echo-edge");
    const migration = migrateJson([REALISTIC, "--out", out]);

    const vars = readFileSync(join(out, "wrangler.vars.toml"), "utf8");
    expect(vars).toContain('\n[vars]\nAUTH_HOST = "https://app.example.com"\nAUTH_ENDPOINT = "/broadcasting/auth"\n');

    // Node's --env-file reads the password with its space and # intact.
    expect(parseEnv(readFileSync(join(out, "bridge.env"), "utf8"))).toEqual(migration.bridgeEnv);
    expect(statSync(join(out, "bridge.env")).mode & 0o777).toBe(0o600);

    // Run secrets.sh against a stand-in npx that records what wrangler would receive.
    const fakeBin = join(dir, "bin");
    const received = join(dir, "received");
    mkdirSync(fakeBin);
    writeFileSync(join(fakeBin, "npx"), `#!/bin/sh\nprintf '%s <- ' "$*" >> '${received}'\ncat >> '${received}'\necho >> '${received}'\n`, {
      mode: 0o755,
    });
    const run = spawnSync("sh", [join(out, "secrets.sh")], { env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` } });
    expect(run.status).toBe(0);
    expect(readFileSync(received, "utf8")).toBe(
      `wrangler secret put CLIENTS <- ${migration.secrets.CLIENTS}\n` +
        `wrangler secret put BRIDGE_SECRET <- ${migration.secrets.BRIDGE_SECRET}\n`,
    );
  });
});
