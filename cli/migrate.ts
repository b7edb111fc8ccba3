/**
 * `echo-edge migrate`: turns a laravel-echo-server.json (and its environment
 * overrides) into wrangler vars, worker secrets and the bridge's environment, and
 * explains every option that no longer applies instead of dropping it silently.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type LegacyConfig, LegacyConfigError, legacyEnvironment, readLegacyConfig } from "./legacy-config.ts";

export interface MigrationNote {
  /** The option (or topic) the note is about, e.g. "port" or "authHost". */
  key: string;
  level: "warning" | "info";
  message: string;
}

export interface Migration {
  source: string;
  /** Environment variables that overrode the file, in the order applied. */
  envOverrides: string[];
  /** Non-secret worker configuration, for wrangler.toml's [vars]. */
  vars: Record<string, string>;
  /** Worker secrets, for `wrangler secret put`. */
  secrets: { CLIENTS: string; BRIDGE_SECRET: string };
  /** The bridge's environment. */
  bridgeEnv: Record<string, string>;
  /** Warnings first. */
  notes: MigrationNote[];
}

export interface MigrateOptions {
  /** The worker's public URL; a placeholder is used without it. */
  echoUrl?: string;
  /** The .env file the overrides were read from, if any. */
  dotEnvFile?: string | null;
}

const ECHO_URL_PLACEHOLDER = "https://<your-worker-domain>";
const DEFAULT_SOCKET_IO_PATH = "/socket.io";

export function migrateLegacyConfig(config: LegacyConfig, options: MigrateOptions = {}): Migration {
  const notes: MigrationNote[] = [];
  const note = (level: MigrationNote["level"], key: string, message: string) => notes.push({ key, level, message });
  /** One note covering those of `keys` the file sets, if any. */
  const noteSet = (level: MigrationNote["level"], keys: string[], message: string) => {
    const set = keys.filter((key) => key in config.obsolete);
    if (set.length > 0) note(level, set.join(", "), message);
  };

  const vars: Record<string, string> = {
    AUTH_HOST: config.authHost,
    AUTH_ENDPOINT: config.authEndpoint,
    DEV_MODE: String(config.devMode),
  };
  if (config.cors) {
    const { allowOrigin, allowMethods, allowHeaders } = config.cors;
    if (allowOrigin) vars.ALLOW_ORIGIN = allowOrigin;
    if (allowMethods) vars.ALLOW_METHODS = allowMethods;
    if (allowHeaders) vars.ALLOW_HEADERS = allowHeaders;
  }
  if (config.socketio.pingInterval !== undefined) vars.PING_INTERVAL = String(config.socketio.pingInterval);
  if (config.socketio.pingTimeout !== undefined) vars.PING_TIMEOUT = String(config.socketio.pingTimeout);
  if (config.maxClients !== undefined) vars.MAX_CLIENTS = String(config.maxClients);

  let clients = config.clients;
  if (clients.length === 0) {
    // laravel-echo-server needs clients only for its HTTP API; echo-edge needs an app for
    // the bridge to publish to. Same id and key sizes as `laravel-echo-server client:add`.
    clients = [{ appId: randomHex(8), key: randomHex(16) }];
    note("info", "clients", `The file has no clients, so app "${clients[0]!.appId}" was generated (see CLIENTS). Its key is only needed for the HTTP API.`);
  } else if (clients.length > 1) {
    note("warning", "clients", `laravel-echo-server shared one set of channels among all clients; echo-edge keeps each app's channels apart. Browsers join the first app, "${clients[0]!.appId}", unless they connect with ?appId=, and the bridge publishes there (APP_ID). Make HTTP API calls with that appId to reach the same browsers.`);
  }
  const bridgeSecret = randomHex(32);

  const bridgeEnv: Record<string, string> = {
    ECHO_URL: options.echoUrl ? workerUrl(options.echoUrl) : ECHO_URL_PLACEHOLDER,
    APP_ID: clients[0]!.appId,
    BRIDGE_SECRET: bridgeSecret,
    REDIS_HOST: config.redis.host,
    REDIS_PORT: String(config.redis.port),
    ...(config.redis.username === undefined ? {} : { REDIS_USERNAME: config.redis.username }),
    ...(config.redis.password === undefined ? {} : { REDIS_PASSWORD: config.redis.password }),
    REDIS_DB: String(config.redis.db),
    REDIS_PREFIX: config.redis.keyPrefix,
  };

  if (config.authHosts.length > 1) {
    note("warning", "authHost", `Lists ${config.authHosts.length} hosts, which laravel-echo-server chose between per request by the browser's Referer (multi-tenant). echo-edge sends every auth request to the first one only, ${config.authHost}; private and presence channels of the other tenants fail auth unless that host serves them too.`);
  }
  note(...authHostCheck(config.authHost));
  if (!options.echoUrl) {
    note("warning", "ECHO_URL", `A placeholder: replace ${ECHO_URL_PLACEHOLDER} with the worker's URL once deployed, or run migrate again with --echo-url.`);
  }
  note(...keyPrefixExplanation(config.redis.keyPrefix));
  if (config.socketio.path !== undefined && config.socketio.path.replace(/\/+$/, "") !== DEFAULT_SOCKET_IO_PATH) {
    note("warning", "socketio.path", `Unsupported: echo-edge serves Socket.IO at ${DEFAULT_SOCKET_IO_PATH} only, not at "${config.socketio.path}". Remove the custom path from your Echo client options.`);
  }
  noteSet("warning", ["databaseConfig.publishPresence"], "Unsupported: echo-edge does not publish presence changes to Redis.");
  noteSet(
    "warning",
    keysUnder(config.obsolete, "databaseConfig.redis."),
    "Not carried over: the bridge env covers host, port, username, password, db and prefix only. For TLS, give the bridge REDIS_URL=rediss://host:port/db instead of REDIS_HOST and REDIS_PORT; the bridge does not support Sentinel or Cluster.",
  );

  if (options.dotEnvFile) note("info", ".env", `Environment overrides were also read from ${options.dotEnvFile} (variables set in the shell win).`);
  noteSet("info", ["host", "port"], "Not used: Cloudflare routes requests by domain. Point Echo's `host` at the worker's domain, without a port.");
  noteSet(
    "info",
    ["protocol", "sslCertPath", "sslKeyPath", "sslCertChainPath", "sslPassphrase", "secureOptions"],
    "Not used: TLS is automatic on Cloudflare; https:// and wss:// work with its certificate.",
  );
  note("info", "sticky sessions", "Not needed: any request may reach any Cloudflare location; sessions and channels live in Durable Objects addressed by name. Drop ip_hash/sticky settings from your proxy or load balancer.");
  noteSet("info", ["database", "databaseConfig.sqlite"], "Not used: presence members are kept in Durable Objects; nothing to set up.");
  note("info", "CLIENTS secret", pusherPublishingHowTo(clients[0]!, options.echoUrl));
  if (!config.subscribers.http) {
    note("info", "subscribers.http", "Was false, but echo-edge's HTTP publish API (POST /apps/:appId/events) is always on; it only accepts requests carrying a client key or signed with the app secret.");
  }
  if (!config.subscribers.redis) {
    note("info", "subscribers.redis", "Was false: you publish through the HTTP API only, so you can skip running the bridge.");
  }
  noteSet(
    "info",
    keysUnder(config.obsolete, "socketio."),
    "Ignored: socket.io server options other than pingInterval and pingTimeout have no echo-edge counterpart.",
  );
  for (const [key, value] of Object.entries(config.unknown)) {
    note("info", key, `Ignored: not a laravel-echo-server option (value ${JSON.stringify(value)}).`);
  }

  return {
    source: config.file,
    envOverrides: config.envOverrides,
    vars,
    secrets: { CLIENTS: JSON.stringify(clients), BRIDGE_SECRET: bridgeSecret },
    bridgeEnv,
    notes: [...notes.filter((n) => n.level === "warning"), ...notes.filter((n) => n.level === "info")],
  };
}

/** laravel-echo-server apps have no secret; one is needed only to publish with Laravel's pusher broadcaster. */
function pusherPublishingHowTo(app: { appId: string; key: string }, echoUrl: string | undefined): string {
  const host = echoUrl ? new URL(echoUrl).hostname : "<your worker's domain>";
  const withSecret = JSON.stringify([{ ...app, secret: "<a new random secret, e.g. openssl rand -hex 32>" }]);
  return (
    "Optional: Laravel can also publish straight to echo-edge with its pusher broadcaster, with no Redis and no bridge. " +
    `For that, give the app a secret in CLIENTS (${withSecret}) and set in Laravel's .env: ` +
    `BROADCAST_CONNECTION=pusher, PUSHER_APP_ID=${app.appId}, PUSHER_APP_KEY=${app.key}, PUSHER_APP_SECRET=<the same secret>, ` +
    `PUSHER_HOST=${host}, PUSHER_PORT=443, PUSHER_SCHEME=https. Apps without a secret refuse Pusher-signed requests; the Redis broadcaster and the bridge need none.`
  );
}

function authHostCheck(authHost: string): [MigrationNote["level"], string, string] {
  let url: URL;
  try {
    url = new URL(authHost);
  } catch {
    url = new URL("invalid:");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return ["warning", "authHost", `"${authHost}" is not an http(s) URL. Set AUTH_HOST to your Laravel app's URL, e.g. https://app.example.com.`];
  }
  if (isPrivateHost(url.hostname)) {
    return ["warning", "authHost", `${authHost} is a local or private address: fine for wrangler dev, but the deployed worker calls Laravel from Cloudflare. Set AUTH_HOST to your Laravel app's public URL before deploying.`];
  }
  return ["info", "authHost", `The worker calls ${authHost} from Cloudflare, so it must be reachable from the internet.`];
}

/** Hosts a deployed worker cannot reach: single-label names (localhost, Docker services, IPv6 literals), private ranges, dev TLDs. */
function isPrivateHost(host: string): boolean {
  return (
    !host.includes(".") ||
    /^(127|10)\./.test(host) ||
    /^192\.168\./.test(host) ||
    /^172\.(1[6-9]|2\d|3[01])\./.test(host) ||
    host === "0.0.0.0" ||
    /\.(localhost|local|test|internal)$/.test(host)
  );
}

function keyPrefixExplanation(keyPrefix: string): [MigrationNote["level"], string, string] {
  if (keyPrefix) {
    return ["info", "REDIS_PREFIX", `laravel-echo-server subscribed to "${keyPrefix}*" and cut "${keyPrefix}" off each channel name before broadcasting; the bridge does exactly the same with REDIS_PREFIX=${keyPrefix}, so clients keep the channel names they use today.`];
  }
  return ["warning", "REDIS_PREFIX", "Empty, because keyPrefix is: laravel-echo-server subscribed to every Redis channel and broadcast each name unchanged, Laravel's Redis prefix included (e.g. laravel_database_orders). The bridge does the same, so nothing changes for your clients. If Laravel publishes with a prefix (REDIS_PREFIX in Laravel's .env, by default derived from APP_NAME, e.g. laravel_database_) and your clients subscribe to unprefixed names, set REDIS_PREFIX to that prefix."];
}

function keysUnder(options: Record<string, unknown>, prefix: string): string[] {
  return Object.keys(options).filter((key) => key.startsWith(prefix));
}

function workerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--echo-url must be a URL such as https://echo.example.com, got "${value}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--echo-url must be an http(s) URL, got "${value}"`);
  }
  return value.replace(/\/+$/, "");
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

// Renderings of the three outputs: printed as sections, or written as files with --out.

export function varsToml(migration: Migration): string {
  const lines = Object.entries(migration.vars).map(([name, value]) => `${name} = ${JSON.stringify(value)}`);
  return `# Merge into wrangler.toml: these replace the same keys in its [vars] table.\n[vars]\n${lines.join("\n")}\n`;
}

export function secretsScript(migration: Migration): string {
  const commands = Object.entries(migration.secrets).map(
    ([name, value]) => `printf '%s' ${shellQuote(value)} | npx wrangler secret put ${name}`,
  );
  return `#!/bin/sh\n# Run once from the echo-edge directory. BRIDGE_SECRET is new: the bridge env holds the same value.\nset -e\n${commands.join("\n")}\n`;
}

export function bridgeEnvFile(migration: Migration): string {
  const lines = Object.entries(migration.bridgeEnv).map(([name, value]) => `${name}=${envFileValue(name, value)}`);
  return `# The bridge's environment: run it where it reaches Redis, with\n#   node --env-file=bridge.env bridge/main.ts\n# It holds BRIDGE_SECRET and the Redis password: keep it private.\n${lines.join("\n")}\n`;
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** A value as Node's --env-file reads it back unchanged: bare when safe, else in a quote it does not contain. */
function envFileValue(name: string, value: string): string {
  if (/^[^\s#'"`]*$/.test(value)) return value;
  // Double quotes come last because Node expands \n inside them.
  const quote = ["'", "`", '"'].find((q) => !value.includes(q));
  if (!quote || (quote === '"' && value.includes("\\n"))) {
    throw new LegacyConfigError(`${name} cannot be written to an env file unchanged; set it by hand`);
  }
  return `${quote}${value}${quote}`;
}

const OUTPUTS = [
  {
    file: "wrangler.vars.toml",
    title: "wrangler.toml",
    render: varsToml,
    mode: 0o644,
    use: () => "merge into wrangler.toml's [vars]",
  },
  {
    file: "secrets.sh",
    title: "Worker secrets (shown once)",
    render: secretsScript,
    mode: 0o700,
    use: (path: string) => `run once: sh ${path}`,
  },
  {
    file: "bridge.env",
    title: "Bridge env (bridge.env)",
    render: bridgeEnvFile,
    mode: 0o600,
    use: (path: string) => `run the bridge with node --env-file=${path} bridge/main.ts`,
  },
];

function formatNotes(migration: Migration): string {
  return migration.notes.map((n) => `[${n.level}] ${n.key}: ${n.message}`).join("\n");
}

function header(migration: Migration): string {
  const overrides = migration.envOverrides.length > 0 ? `\nEnvironment overrides applied: ${migration.envOverrides.join(", ")}` : "";
  return `echo-edge migrate: ${migration.source}${overrides}\n`;
}

export const MIGRATE_USAGE = `Usage: echo-edge migrate [file] [options]

Turns a laravel-echo-server.json (default: ./laravel-echo-server.json) into echo-edge
configuration: wrangler [vars], worker secrets and the bridge's environment. Like
laravel-echo-server, it applies LARAVEL_ECHO_SERVER_* overrides from the environment
and from a .env file beside the config; REDIS_PASSWORD fills in a missing Redis password.

Options:
  --out <dir>        write wrangler.vars.toml, secrets.sh and bridge.env into <dir>
                     instead of printing them
  --echo-url <url>   the worker's public URL, used for the bridge's ECHO_URL
  --json             print the whole result as JSON
  -h, --help         show this help
`;

class UsageError extends Error {
  override name = "UsageError";
}

/** Runs the command; returns the process exit code. */
export function runMigrate(args: string[]): number {
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: "string" },
        "echo-url": { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    if (values.help) {
      process.stdout.write(MIGRATE_USAGE);
      return 0;
    }
    if (positionals.length > 1) throw new UsageError(`expected one config file, got ${positionals.length}`);
    const file = positionals[0] ?? "laravel-echo-server.json";
    const { env, dotEnvFile } = legacyEnvironment(file);
    const migration = migrateLegacyConfig(readLegacyConfig(file, env), { echoUrl: values["echo-url"], dotEnvFile });
    const outDir = values.out;
    const rendered = OUTPUTS.map((output) => ({
      ...output,
      text: output.render(migration),
      path: join(outDir ?? "", output.file),
    }));

    if (outDir) {
      mkdirSync(outDir, { recursive: true });
      for (const output of rendered) {
        writeFileSync(output.path, output.text);
        chmodSync(output.path, output.mode);
      }
    }
    if (values.json) {
      process.stdout.write(`${JSON.stringify(migration, null, 2)}\n`);
    } else if (outDir) {
      const written = rendered.map((output) => `  ${output.path}: ${output.use(output.path)}`).join("\n");
      process.stdout.write(`${header(migration)}\nWrote:\n${written}\n\nNotes:\n${formatNotes(migration)}\n`);
    } else {
      const sections = rendered.map((output) => `== ${output.title} ==\n${output.text}`).join("\n");
      process.stdout.write(`${header(migration)}\n${sections}\n== Notes ==\n${formatNotes(migration)}\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof LegacyConfigError) {
      process.stderr.write(`echo-edge migrate: ${error.message}\n`);
      return 1;
    }
    if (error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`echo-edge migrate: ${(error as Error).message}\n\n${MIGRATE_USAGE}`);
      return 1;
    }
    throw error;
  }
}
