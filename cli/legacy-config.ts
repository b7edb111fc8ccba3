/**
 * Reads a laravel-echo-server.json the way laravel-echo-server 1.6 does (defaults,
 * `LARAVEL_ECHO_SERVER_*` overrides, `${VAR}` indirection in them) and normalizes
 * it into what echo-edge needs. Options echo-edge has no use for are returned as
 * found rather than dropped, so callers can tell the user about them.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseEnv } from "node:util";

export type Env = Readonly<Record<string, string | undefined>>;

export interface LegacyClient {
  appId: string;
  key: string;
}

export interface LegacyRedis {
  host: string;
  port: number;
  /** Redis 6 ACL user. */
  username?: string;
  password?: string;
  db: number;
  /** Prefix laravel-echo-server pattern-subscribed with and cut from channel names ("" = none). */
  keyPrefix: string;
}

export interface LegacyCors {
  allowOrigin: string;
  allowMethods: string;
  allowHeaders: string;
}

export interface LegacyConfig {
  /** Absolute path of the file read. */
  file: string;
  /** The host auth requests go to: the first of `authHosts`. */
  authHost: string;
  /** Every configured auth host; laravel-echo-server picked one per request by Referer. */
  authHosts: string[];
  authEndpoint: string;
  clients: LegacyClient[];
  redis: LegacyRedis;
  devMode: boolean;
  /** Null unless `apiOriginAllow.allowCors` is true. */
  cors: LegacyCors | null;
  socketio: { pingInterval?: number; pingTimeout?: number; path?: string };
  /** Not a laravel-echo-server option, but honoured when a config carries one. */
  maxClients?: number;
  subscribers: { http: boolean; redis: boolean };
  /** Environment variables that changed a value, in the order applied. */
  envOverrides: string[];
  /** laravel-echo-server options echo-edge does not use, by dotted key, with their values. */
  obsolete: Record<string, unknown>;
  /** Keys laravel-echo-server itself does not know, by dotted key, with their values. */
  unknown: Record<string, unknown>;
}

export class LegacyConfigError extends Error {
  override name = "LegacyConfigError";
}

/** laravel-echo-server's environment overrides and the option each one replaces. */
const ENV_OVERRIDES: Readonly<Record<string, string>> = {
  LARAVEL_ECHO_SERVER_AUTH_HOST: "authHost",
  LARAVEL_ECHO_SERVER_DEBUG: "devMode",
  LARAVEL_ECHO_SERVER_HOST: "host",
  LARAVEL_ECHO_SERVER_PORT: "port",
  LARAVEL_ECHO_SERVER_REDIS_HOST: "databaseConfig.redis.host",
  LARAVEL_ECHO_SERVER_REDIS_PORT: "databaseConfig.redis.port",
  LARAVEL_ECHO_SERVER_REDIS_PASSWORD: "databaseConfig.redis.password",
  LARAVEL_ECHO_SERVER_PROTO: "protocol",
  LARAVEL_ECHO_SERVER_SSL_CERT: "sslCertPath",
  LARAVEL_ECHO_SERVER_SSL_KEY: "sslKeyPath",
  LARAVEL_ECHO_SERVER_SSL_CHAIN: "sslCertChainPath",
  LARAVEL_ECHO_SERVER_SSL_PASS: "sslPassphrase",
};

/** Top-level options laravel-echo-server knows but echo-edge has no counterpart for. */
const OBSOLETE_OPTIONS = [
  "host",
  "port",
  "protocol",
  "sslCertPath",
  "sslKeyPath",
  "sslCertChainPath",
  "sslPassphrase",
  "secureOptions",
  "database",
];
const READ_OPTIONS = ["authHost", "authEndpoint", "clients", "devMode", "maxClients"];
const NESTED_OPTIONS = ["databaseConfig", "socketio", "subscribers", "apiOriginAllow"];

// ioredis's own defaults, which laravel-echo-server inherited.
const REDIS_DEFAULTS = { host: "localhost", port: 6379, db: 0 };

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The environment laravel-echo-server would have seen: `env`, plus a `.env` file
 * beside the config (variables already set win, as with dotenv).
 */
export function legacyEnvironment(configFile: string, env: Env = process.env): { env: Env; dotEnvFile: string | null } {
  const dotEnvFile = join(dirname(resolve(configFile)), ".env");
  if (!existsSync(dotEnvFile)) return { env, dotEnvFile: null };
  return { env: { ...parseEnv(readFileSync(dotEnvFile, "utf8")), ...env }, dotEnvFile };
}

/** Reads and normalizes a laravel-echo-server.json; throws LegacyConfigError with a message for the user. */
export function readLegacyConfig(path: string, env: Env = process.env): LegacyConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOENT"
        ? "no such file (pass the path to your laravel-echo-server.json)"
        : (error as Error).message;
    throw new LegacyConfigError(`Cannot read ${file}: ${reason}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (error) {
    throw new LegacyConfigError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(raw)) throw new LegacyConfigError(`${file} must contain a JSON object`);
  try {
    return normalizeLegacyConfig(file, raw, env);
  } catch (error) {
    if (error instanceof LegacyConfigError) throw new LegacyConfigError(`${file}: ${error.message}`);
    throw error;
  }
}

/** Normalizes an already parsed config object; `file` is only recorded. */
function normalizeLegacyConfig(file: string, raw: JsonObject, env: Env): LegacyConfig {
  const options = structuredClone(raw);
  const envOverrides = applyEnvOverrides(options, env);
  const obsolete: Record<string, unknown> = {};
  const unknown: Record<string, unknown> = {};

  for (const [key, value] of Object.entries(options)) {
    if (OBSOLETE_OPTIONS.includes(key)) keepIfSet(obsolete, key, value);
    else if (!READ_OPTIONS.includes(key) && !NESTED_OPTIONS.includes(key)) unknown[key] = value;
  }

  const databaseConfig = section(options, "databaseConfig");
  for (const [key, value] of Object.entries(databaseConfig)) {
    if (key === "sqlite" || key === "publishPresence") keepIfSet(obsolete, `databaseConfig.${key}`, value);
    else if (key !== "redis") unknown[`databaseConfig.${key}`] = value;
  }
  const redisOptions = section(databaseConfig, "redis", "databaseConfig.");
  const redis = readRedis(redisOptions, env, envOverrides);
  for (const [key, value] of Object.entries(redisOptions)) {
    if (!["host", "port", "username", "password", "db", "keyPrefix"].includes(key)) {
      obsolete[`databaseConfig.redis.${key}`] = value;
    }
  }

  const socketioOptions = section(options, "socketio");
  const socketio: LegacyConfig["socketio"] = {};
  for (const [key, value] of Object.entries(socketioOptions)) {
    if (key === "pingInterval" || key === "pingTimeout") socketio[key] = integer(value, `socketio.${key}`);
    else if (key === "path") socketio.path = text(value, "socketio.path");
    else obsolete[`socketio.${key}`] = value;
  }

  const subscriberOptions = section(options, "subscribers");
  reportUnknownKeys(subscriberOptions, "subscribers", ["http", "redis"], unknown);
  const cors = section(options, "apiOriginAllow");
  reportUnknownKeys(cors, "apiOriginAllow", ["allowCors", "allowOrigin", "allowMethods", "allowHeaders"], unknown);

  const authHosts = readAuthHosts(options.authHost);
  return {
    file,
    authHost: authHosts[0]!,
    authHosts,
    authEndpoint: options.authEndpoint == null ? "/broadcasting/auth" : text(options.authEndpoint, "authEndpoint"),
    clients: readClients(options.clients),
    redis,
    // laravel-echo-server compares the stringified value, so only true and "true" count.
    devMode: String(options.devMode ?? false) === "true",
    cors:
      String(cors.allowCors ?? false) === "true"
        ? {
            allowOrigin: text(cors.allowOrigin ?? "", "apiOriginAllow.allowOrigin"),
            allowMethods: text(cors.allowMethods ?? "", "apiOriginAllow.allowMethods"),
            allowHeaders: text(cors.allowHeaders ?? "", "apiOriginAllow.allowHeaders"),
          }
        : null,
    socketio,
    ...(options.maxClients == null ? {} : { maxClients: integer(options.maxClients, "maxClients") }),
    // A `subscribers` object replaces the default {http: true, redis: true} as a whole.
    subscribers:
      options.subscribers == null
        ? { http: true, redis: true }
        : { http: !!subscriberOptions.http, redis: !!subscriberOptions.redis },
    envOverrides,
    obsolete,
    unknown,
  };
}

/** Applies `LARAVEL_ECHO_SERVER_*` like laravel-echo-server: a value naming `${VAR}` takes VAR's value. */
function applyEnvOverrides(options: JsonObject, env: Env): string[] {
  const applied: string[] = [];
  for (const [name, path] of Object.entries(ENV_OVERRIDES)) {
    let value = env[name];
    if (!value) continue;
    const indirect = /\$\{(.*?)\}/.exec(value);
    if (indirect) value = env[indirect[1]!] ?? "";
    const keys = path.split(".");
    let target = options;
    for (const key of keys.slice(0, -1)) {
      if (!isObject(target[key])) target[key] = {};
      target = target[key] as JsonObject;
    }
    target[keys.at(-1)!] = value;
    applied.push(name);
  }
  return applied;
}

function readRedis(options: JsonObject, env: Env, envOverrides: string[]): LegacyRedis {
  const redis: LegacyRedis = {
    host: options.host == null ? REDIS_DEFAULTS.host : text(options.host, "databaseConfig.redis.host"),
    port: options.port == null ? REDIS_DEFAULTS.port : integer(options.port, "databaseConfig.redis.port"),
    db: options.db == null ? REDIS_DEFAULTS.db : integer(options.db, "databaseConfig.redis.db"),
    keyPrefix: options.keyPrefix == null ? "" : text(options.keyPrefix, "databaseConfig.redis.keyPrefix"),
  };
  if (options.username != null && options.username !== "") {
    redis.username = text(options.username, "databaseConfig.redis.username");
  }
  const password = options.password == null ? "" : text(options.password, "databaseConfig.redis.password");
  if (password) {
    redis.password = password;
  } else if (isLaravelValue(env.REDIS_PASSWORD)) {
    // Docker images of laravel-echo-server fill the password in from REDIS_PASSWORD, and
    // it is the password Laravel itself publishes with.
    redis.password = env.REDIS_PASSWORD;
    envOverrides.push("REDIS_PASSWORD");
  }
  return redis;
}

/** False for unset, empty, and what Laravel's env() reads as null or empty. */
function isLaravelValue(value: string | undefined): value is string {
  return !!value && !["null", "(null)", "empty", "(empty)"].includes(value.toLowerCase());
}

function readAuthHosts(value: unknown): string[] {
  const hosts = (Array.isArray(value) ? value : [value]).flatMap((host: unknown, index) =>
    host == null || host === "" ? [] : [text(host, Array.isArray(value) ? `authHost[${index}]` : "authHost")],
  );
  return hosts.length > 0 ? hosts : ["http://localhost"];
}

function readClients(value: unknown): LegacyClient[] {
  if (value == null) return [];
  if (!Array.isArray(value)) throw new LegacyConfigError("clients must be a list of {appId, key}");
  return value.map((client: unknown, index) => {
    if (!isObject(client)) throw new LegacyConfigError(`clients[${index}] must be an object with appId and key`);
    return { appId: text(client.appId, `clients[${index}].appId`), key: text(client.key, `clients[${index}].key`) };
  });
}

function section(options: JsonObject, key: string, parent = ""): JsonObject {
  const value = options[key];
  if (value == null) return {};
  if (!isObject(value)) throw new LegacyConfigError(`${parent}${key} must be an object`);
  return value;
}

function reportUnknownKeys(options: JsonObject, parent: string, known: string[], unknown: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(options)) if (!known.includes(key)) unknown[`${parent}.${key}`] = value;
}

/** Records an option unless it is empty or off (init writes every option, most of them empty). */
function keepIfSet(into: Record<string, unknown>, key: string, value: unknown): void {
  const empty = value == null || value === "" || value === false || (isObject(value) && Object.keys(value).length === 0);
  if (!empty) into[key] = value;
}

function text(value: unknown, key: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  throw new LegacyConfigError(`${key} must be a string, got ${JSON.stringify(value)}`);
}

function integer(value: unknown, key: string): number {
  const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof number === "number" && Number.isSafeInteger(number) && number >= 0) return number;
  throw new LegacyConfigError(`${key} must be a whole number, got ${JSON.stringify(value)}`);
}
