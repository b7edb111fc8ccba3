/**
 * Bridge configuration from the environment and, for migrations, from an existing
 * laravel-echo-server.json (`--config <file>`). See docs/bridge.md for every knob.
 */
import { parseArgs } from "node:util";
import { legacyEnvironment, LegacyConfigError, readLegacyConfig, type LegacyConfig } from "../cli/legacy-config.ts";
import { parseClients } from "../worker/clients.ts";

export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
}

export interface BridgeConfig {
  redis: RedisConnection;
  /** Stripped from Redis channel names; the bridge subscribes to `<prefix>*`. */
  prefix: string;
  /** Base URL of the worker; batches go to `${echoUrl}/apps/${appId}/publish`. */
  echoUrl: string;
  appId: string;
  secret: string;
  /** Health and metrics listener; port 0 picks a free one. */
  healthHost: string;
  healthPort: number;
  maxMessageBytes: number;
  batchMaxMessages: number;
  /** Batch and buffer sizes count characters of JSON text (bytes, for ASCII). */
  batchMaxBytes: number;
  batchWindowMs: number;
  /** Lanes: requests in flight at once; each channel always uses the same lane. */
  concurrency: number;
  bufferMaxMessages: number;
  bufferMaxBytes: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Retry period after 401/403/404, which only a configuration change can fix. */
  misconfiguredRetryMs: number;
  requestTimeoutMs: number;
  shutdownTimeoutMs: number;
  /** After this long without a matching message, look for a prefix mismatch (0: never). */
  prefixCheckMs: number;
}

export class ConfigError extends Error {}

export type Env = Record<string, string | undefined>;

const DEFAULT_PREFIX = "laravel_database_";

/** Reads a variable the way Laravel's env() does: empty, "null" and "(null)" mean unset. */
function read(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined || value === "" || value === "null" || value === "(null)") return undefined;
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

function redisFromUrl(raw: string, env: Env): RedisConnection {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`REDIS_URL is not a URL: "${raw}"`);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new ConfigError(`REDIS_URL must start with redis:// or rediss:// (TLS), got "${url.protocol}//"`);
  }
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  if (!Number.isSafeInteger(db) || db < 0) throw new ConfigError(`REDIS_URL names an invalid database: "${url.pathname}"`);
  return {
    host: url.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: url.port ? Number(url.port) : 6379,
    db,
    username: url.username ? decodeURIComponent(url.username) : read(env, "REDIS_USERNAME"),
    password: url.password ? decodeURIComponent(url.password) : read(env, "REDIS_PASSWORD"),
    tls: url.protocol === "rediss:",
  };
}

function redisFromParts(env: Env): RedisConnection {
  return {
    host: read(env, "REDIS_HOST") ?? "127.0.0.1",
    port: integer(env, "REDIS_PORT", 6379, 1),
    db: integer(env, "REDIS_DB", 0, 0),
    username: read(env, "REDIS_USERNAME"),
    password: read(env, "REDIS_PASSWORD"),
    tls: false,
  };
}

/** The Redis connection, prefix and first appId of a laravel-echo-server.json, as it would have seen them. */
function fromLegacyConfig(path: string, env: Env) {
  let legacy: LegacyConfig;
  try {
    legacy = readLegacyConfig(path, legacyEnvironment(path, env).env);
  } catch (error) {
    if (error instanceof LegacyConfigError) throw new ConfigError(error.message);
    throw error;
  }
  const { host, port, db, password, keyPrefix } = legacy.redis;
  return {
    redis: { host, port, db, password, username: read(env, "REDIS_USERNAME"), tls: false },
    // laravel-echo-server subscribes to `${keyPrefix}*` with an empty default, so a
    // working setup without keyPrefix means its clients use the prefixed names.
    keyPrefix,
    firstAppId: legacy.clients[0]?.appId,
  };
}

function configPathFromArgs(args: readonly string[]): string | undefined {
  try {
    return parseArgs({ args: [...args], options: { config: { type: "string" } } }).values.config;
  } catch (error) {
    throw new ConfigError(`${(error as Error).message} (the bridge takes only --config <laravel-echo-server.json>)`);
  }
}

/** The first appId of the worker's CLIENTS variable, when the bridge shares the worker's env (read as the worker reads it). */
function firstClientAppId(env: Env): string | undefined {
  try {
    return parseClients(read(env, "CLIENTS"))[0]?.appId;
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

export function configFromEnv(env: Env, args: readonly string[] = []): BridgeConfig {
  const configPath = configPathFromArgs(args);
  const legacy = configPath === undefined ? undefined : fromLegacyConfig(configPath, env);
  const redisUrl = read(env, "REDIS_URL");

  const secret = read(env, "BRIDGE_SECRET");
  if (secret === undefined) {
    throw new ConfigError("BRIDGE_SECRET is required: set it to the worker's BRIDGE_SECRET (wrangler secret put BRIDGE_SECRET)");
  }
  const echoUrl = read(env, "ECHO_URL") ?? `http://127.0.0.1:${read(env, "PORT") ?? "6001"}`;
  let parsedEchoUrl: URL;
  try {
    parsedEchoUrl = new URL(echoUrl);
  } catch {
    throw new ConfigError(`ECHO_URL is not a URL: "${echoUrl}"`);
  }
  if (parsedEchoUrl.protocol !== "http:" && parsedEchoUrl.protocol !== "https:") {
    throw new ConfigError(`ECHO_URL must be http:// or https://, got "${echoUrl}"`);
  }

  return {
    redis: redisUrl !== undefined ? redisFromUrl(redisUrl, env) : (legacy?.redis ?? redisFromParts(env)),
    // Not read(): an empty REDIS_PREFIX is a real prefix (Laravel publishes unprefixed).
    prefix: env.REDIS_PREFIX ?? legacy?.keyPrefix ?? DEFAULT_PREFIX,
    echoUrl: echoUrl.replace(/\/+$/, ""),
    appId: read(env, "APP_ID") ?? firstClientAppId(env) ?? legacy?.firstAppId ?? "app",
    secret,
    healthHost: read(env, "BRIDGE_HOST") ?? "127.0.0.1",
    healthPort: integer(env, "BRIDGE_PORT", 6002, 0),
    maxMessageBytes: integer(env, "MAX_MESSAGE_BYTES", 1024 * 1024, 1),
    batchMaxMessages: integer(env, "BRIDGE_BATCH_MAX_MESSAGES", 500, 1),
    batchMaxBytes: integer(env, "BRIDGE_BATCH_MAX_BYTES", 512 * 1024, 1),
    batchWindowMs: integer(env, "BRIDGE_BATCH_WINDOW_MS", 10, 0),
    concurrency: integer(env, "BRIDGE_CONCURRENCY", 4, 1),
    bufferMaxMessages: integer(env, "BRIDGE_BUFFER_MAX_MESSAGES", 100_000, 1),
    bufferMaxBytes: integer(env, "BRIDGE_BUFFER_MAX_BYTES", 64 * 1024 * 1024, 1),
    retryBaseMs: integer(env, "BRIDGE_RETRY_BASE_MS", 200, 1),
    retryMaxMs: integer(env, "BRIDGE_RETRY_MAX_MS", 10_000, 1),
    misconfiguredRetryMs: integer(env, "BRIDGE_MISCONFIGURED_RETRY_MS", 30_000, 1),
    requestTimeoutMs: integer(env, "BRIDGE_REQUEST_TIMEOUT_MS", 10_000, 1),
    shutdownTimeoutMs: integer(env, "BRIDGE_SHUTDOWN_TIMEOUT_MS", 10_000, 0),
    prefixCheckMs: integer(env, "BRIDGE_PREFIX_CHECK_SECONDS", 30, 0) * 1000,
  };
}

function maskUrlCredentials(raw: string): string {
  const url = new URL(raw);
  if (url.username || url.password) {
    url.username = "***";
    url.password = "";
  }
  return url.toString().replace(/\/+$/, "");
}

/** The effective configuration, one setting a line, secrets masked, for the startup log. */
export function describeConfig(config: BridgeConfig): string[] {
  const { redis } = config;
  return [
    `redis: ${redis.tls ? "rediss" : "redis"}://${redis.host}:${redis.port}/${redis.db}` +
      ` user=${redis.username ?? "(default)"} password=${redis.password ? "***" : "(none)"}`,
    `subscribe: PSUBSCRIBE ${JSON.stringify(config.prefix + "*")} (prefix ${JSON.stringify(config.prefix)} is stripped)`,
    `worker: POST ${maskUrlCredentials(config.echoUrl)}/apps/${config.appId}/publish, secret *** (${config.secret.length} chars)`,
    `batches: up to ${config.batchMaxMessages} messages / ${config.batchMaxBytes} bytes, ${config.batchWindowMs} ms window, ` +
      `${config.concurrency} concurrent`,
    `buffer: up to ${config.bufferMaxMessages} messages / ${config.bufferMaxBytes} bytes; messages over ${config.maxMessageBytes} bytes are refused`,
    `retries: ${config.retryBaseMs} ms doubling to ${config.retryMaxMs} ms; every ${config.misconfiguredRetryMs} ms while misconfigured`,
    `shutdown: flush within ${config.shutdownTimeoutMs} ms`,
  ];
}
