/**
 * Worker configuration: wrangler vars and secrets (locally: the environment of
 * `npm start`, or `--var` under wrangler dev),
 * parsed once per env object. Names follow laravel-echo-server where one exists.
 */
import type { AppObject } from "../durable-objects/app.ts";
import type { ChannelObject } from "../durable-objects/channel.ts";
import type { ConnectionHostObject } from "../durable-objects/connection-host.ts";
import type { PollingSessionObject } from "../durable-objects/polling-session.ts";
import type { UpstashSubscriberObject } from "../durable-objects/upstash-subscriber.ts";
import type { WebhookEventName, WebhookMessage } from "./webhooks/events.ts";
import { parseClients, type AppClient } from "./clients.ts";
import { parseWebhookEvents, parseWebhookUrl } from "./webhooks/target.ts";

/** Every variable the worker reads (wrangler vars and secrets); `npm start` passes these on from its environment. */
export const WORKER_VARIABLES = [
  "AUTH_HOST",
  "AUTH_ENDPOINT",
  "AUTH_TIMEOUT",
  "CLIENTS",
  "BRIDGE_SECRET",
  "ALLOW_ORIGIN",
  "ALLOW_METHODS",
  "ALLOW_HEADERS",
  "DEV_MODE",
  "MAX_CLIENTS",
  "HOST_CAPACITY",
  "PING_INTERVAL",
  "PING_TIMEOUT",
  "MAX_PAYLOAD",
  "MAX_CHANNELS",
  "SUBSCRIBE_RATE",
  "SUBSCRIBE_BURST",
  "MAX_PENDING_AUTH",
  "WHISPER_RATE",
  "WHISPER_BYTES",
  "UPGRADE_GRACE",
  "UPGRADE_TIMEOUT",
  "POLLING_OUTBOX_LIMIT",
  "PRESENCE_LEAVE_GRACE",
  "RECOVERY_WINDOW",
  "RECOVERY_HISTORY_BATCHES",
  "RECOVERY_HISTORY_BYTES",
  "STATS_REQUIRE_KEY",
  "MAX_EVENT_DATA_BYTES",
  "WEBHOOK_URL",
  "WEBHOOK_EVENTS",
  "UPSTASH_REDIS_REST_URL",
  "UPSTASH_REDIS_REST_TOKEN",
  "REDIS_PREFIX",
  "UPSTASH_APP_ID",
  "METER_REQUESTS",
] as const;

type WorkerVariables = { [name in (typeof WORKER_VARIABLES)[number]]?: string };

export interface Env extends WorkerVariables {
  CHANNEL: DurableObjectNamespace<ChannelObject>;
  POLLING: DurableObjectNamespace<PollingSessionObject>;
  /** Connection hosts: client WebSockets, named by (app, Engine.IO version, colo, shard). */
  HOST: DurableObjectNamespace<ConnectionHostObject>;
  APP: DurableObjectNamespace<AppObject>;
  UPSTASH: DurableObjectNamespace<UpstashSubscriberObject>;
  /** Webhooks to Laravel go through this queue (wrangler.toml). */
  WEBHOOKS?: Queue<WebhookMessage>;
}

export interface Config {
  authHost: string | null;
  authEndpoint: string;
  /** Milliseconds before a call to Laravel's auth endpoint counts as failed (status 0). */
  authTimeout: number;
  clients: AppClient[];
  bridgeSecret: string | null;
  cors: { allowOrigin: string[]; allowMethods: string[]; allowHeaders: string[] };
  devMode: boolean;
  /** Per app, across the edge; 0 means unlimited. */
  maxClients: number;
  /** WebSockets one connection host holds; a full host sends new ones to the next shard. */
  hostCapacity: number;
  pingInterval: number;
  pingTimeout: number;
  /** Largest Engine.IO packet or polling body accepted from a client, in bytes. */
  maxPayload: number;
  maxChannelsPerConnection: number;
  /** Subscribes a connection may make per second once it has used a burst of `subscribeBurst`; beyond: subscription_error 429. */
  subscribeRate: number;
  subscribeBurst: number;
  /** Auth calls to Laravel one connection may have in flight; further subscribes wait their turn. */
  maxPendingAuth: number;
  /** Whispers a connection may send per second (burst of the same size). */
  whisperRate: number;
  /** Whisper bytes a connection may send per second (burst of the same size, so also the largest whisper). */
  whisperBytes: number;
  /** How long a polling handshake waits for the WebSocket upgrade before serving the session over polling. */
  upgradeGrace: number;
  /** How long a WebSocket may take from opening with a polling sid to completing the upgrade (`5`) before it is closed. */
  upgradeTimeout: number;
  /** Bytes of messages a polling client may leave unfetched; beyond that it is disconnected. */
  pollingOutboxLimit: number;
  /** A presence member who drops and comes back within this window causes no leaving/joining. */
  presenceLeaveGrace: number;
  /**
   * Connection state recovery (Socket.IO v4 clients): how long a lost connection's
   * session (socket id, channels, presence) is kept for the client to take up again,
   * with every event it missed; 0 disables it.
   */
  recoveryWindow: number;
  /** Per channel, the history recovery replays from holds this many publishes (batches, one row each) and at most these bytes. */
  recoveryHistoryBatches: number;
  recoveryHistoryBytes: number;
  statsRequireKey: boolean;
  /** Largest `data` of one event published through `POST /apps/:appId/events` or `batch_events` (Pusher's 10 KB). */
  maxEventDataBytes: number;
  /** Default webhook URL and events for apps whose CLIENTS entry names none. */
  webhookUrl: string | null;
  webhookEvents: ReadonlySet<WebhookEventName>;
  /** Upstash mode (no bridge): the subscriber object reads this Redis over REST; null when not configured. */
  upstash: UpstashConfig | null;
}

export interface UpstashConfig {
  /** REST URL, no trailing slash. */
  url: string;
  token: string;
  /** Laravel's Redis prefix, stripped from channel names (as the bridge's REDIS_PREFIX). */
  prefix: string;
  /** The app its publishes belong to. */
  appId: string;
}

function int(value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`expected a non-negative number, got ${JSON.stringify(value)}`);
  return Math.floor(n);
}

/** laravel-echo-server's comma-separated lists (`allowOrigin`, `allowMethods`, `allowHeaders`). */
const commaList = (value: string) =>
  value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);

const bool = (value: string | undefined) => /^(1|true|yes|on)$/i.test(value?.trim() ?? "");

function parseUpstash(env: Env, clients: AppClient[]): UpstashConfig | null {
  const url = env.UPSTASH_REDIS_REST_URL?.trim().replace(/\/+$/, "");
  if (!url) return null;
  if (!/^https?:\/\/[^/]/.test(url)) throw new Error(`UPSTASH_REDIS_REST_URL must be an http(s) URL, got ${JSON.stringify(url)}`);
  const token = env.UPSTASH_REDIS_REST_TOKEN?.trim();
  if (!token) throw new Error("UPSTASH_REDIS_REST_URL is set but UPSTASH_REDIS_REST_TOKEN is not");
  const appId = env.UPSTASH_APP_ID?.trim() || clients[0]?.appId;
  if (!appId || !clients.some((client) => client.appId === appId)) {
    throw new Error(`Upstash publishes need an app in CLIENTS${appId ? ` with appId ${JSON.stringify(appId)} (UPSTASH_APP_ID)` : ""}`);
  }
  // Not trimmed or defaulted when empty: an empty REDIS_PREFIX is a real prefix (Laravel publishes unprefixed).
  return { url, token, prefix: env.REDIS_PREFIX ?? "laravel_database_", appId };
}

const cache = new WeakMap<object, Config>();

export function readConfig(env: Env): Config {
  let config = cache.get(env);
  if (config) return config;
  const clients = parseClients(env.CLIENTS);
  config = {
    authHost: env.AUTH_HOST?.trim().replace(/\/+$/, "") || null,
    authEndpoint: env.AUTH_ENDPOINT?.trim() || "/broadcasting/auth",
    authTimeout: int(env.AUTH_TIMEOUT, 10_000),
    clients,
    bridgeSecret: env.BRIDGE_SECRET?.trim() || null,
    cors: {
      allowOrigin: commaList(env.ALLOW_ORIGIN ?? ""),
      allowMethods: commaList(env.ALLOW_METHODS?.trim() || "GET, POST"),
      allowHeaders: commaList(
        env.ALLOW_HEADERS?.trim() ||
          "Origin, Content-Type, X-Auth-Token, X-Requested-With, Accept, Authorization, X-CSRF-TOKEN, X-Socket-Id",
      ),
    },
    devMode: bool(env.DEV_MODE),
    maxClients: int(env.MAX_CLIENTS, 0),
    // Cloudflare holds at most 32,768 hibernatable WebSockets per object.
    hostCapacity: Math.min(32_768, Math.max(1, int(env.HOST_CAPACITY, 10_000))),
    pingInterval: int(env.PING_INTERVAL, 25_000),
    pingTimeout: int(env.PING_TIMEOUT, 20_000),
    maxPayload: int(env.MAX_PAYLOAD, 1_000_000),
    maxChannelsPerConnection: int(env.MAX_CHANNELS, 100),
    subscribeRate: int(env.SUBSCRIBE_RATE, 10),
    subscribeBurst: int(env.SUBSCRIBE_BURST, 40),
    maxPendingAuth: int(env.MAX_PENDING_AUTH, 6),
    whisperRate: int(env.WHISPER_RATE, 20),
    whisperBytes: int(env.WHISPER_BYTES, 65_536),
    upgradeGrace: int(env.UPGRADE_GRACE, 1_500),
    upgradeTimeout: int(env.UPGRADE_TIMEOUT, 10_000),
    pollingOutboxLimit: int(env.POLLING_OUTBOX_LIMIT, 1_000_000),
    presenceLeaveGrace: int(env.PRESENCE_LEAVE_GRACE, 3_000),
    // socket.io's maxDisconnectionDuration default.
    recoveryWindow: int(env.RECOVERY_WINDOW, 120_000),
    recoveryHistoryBatches: int(env.RECOVERY_HISTORY_BATCHES, 1_000),
    recoveryHistoryBytes: int(env.RECOVERY_HISTORY_BYTES, 1_048_576),
    statsRequireKey: bool(env.STATS_REQUIRE_KEY),
    maxEventDataBytes: int(env.MAX_EVENT_DATA_BYTES, 10_240),
    webhookUrl: env.WEBHOOK_URL?.trim() ? parseWebhookUrl(env.WEBHOOK_URL.trim(), "WEBHOOK_URL") : null,
    webhookEvents: parseWebhookEvents(commaList(env.WEBHOOK_EVENTS ?? ""), "WEBHOOK_EVENTS"),
    upstash: parseUpstash(env, clients),
  };
  cache.set(env, config);
  return config;
}

export function isConfiguredApp(config: Config, appId: string): boolean {
  return config.clients.some((client) => client.appId === appId);
}

/** The app a Socket.IO connection belongs to: `?appId=` when given, else the first configured app. */
export function defaultAppId(config: Config): string {
  return config.clients[0]?.appId ?? "default";
}
