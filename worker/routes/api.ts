/**
 * laravel-echo-server's HTTP API (`GET /apps/:appId/...`), same paths, key and
 * answers. App-wide numbers come from the App object's directory, which each
 * channel tells about every subscribe and leave as it happens; a single channel is
 * asked directly, and answers only once the directory has its latest count.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppClient } from "../clients.ts";
import { readConfig, type Env } from "../config.ts";
import { channelKind, channelObjectName, isValidChannelName } from "../channels/names.ts";
import { createLogger } from "../log.ts";
import { requireAppKey } from "./app-key.ts";

export const apiRoutes = new Hono<{ Bindings: Env; Variables: { app: AppClient } }>();

/** One debug line per API call, refused ones included. */
export const logApiCall = createMiddleware<{ Bindings: Env }>(async (c, next) => {
  await next();
  createLogger(readConfig(c.env).devMode).debug("api_call", { method: c.req.method, path: c.req.path, status: c.res.status });
});

/**
 * A Worker has no process whose memory it could report (Cloudflare caps each
 * isolate at 128 MB). The keys of Node's `process.memoryUsage()` stay, so clients
 * reading them keep working, with null rather than invented numbers.
 */
const MEMORY_USAGE = { rss: null, heapTotal: null, heapUsed: null, external: null, arrayBuffers: null };

const INVALID_CHANNEL = { error: "Invalid channel name" };

apiRoutes.on("GET", "/apps/:appId/*", logApiCall);

apiRoutes.get("/apps/:appId/status", requireAppKey, async (c) => {
  const snapshot = await c.env.APP.getByName(c.get("app").appId).snapshot();
  return c.json({
    // laravel-echo-server reports its Engine.IO client count under this name.
    subscription_count: snapshot.connections,
    uptime: (Date.now() - snapshot.startedAt) / 1000,
    memory_usage: MEMORY_USAGE,
  });
});

apiRoutes.get("/apps/:appId/channels", requireAppKey, async (c) => {
  const entries = await c.env.APP.getByName(c.get("app").appId).channels(c.req.query("filter_by_prefix") ?? "");
  const channels: Record<string, { subscription_count: number; occupied: true }> = {};
  for (const [name, entry] of Object.entries(entries)) {
    channels[name] = { subscription_count: entry.subscription_count, occupied: true };
  }
  return c.json({ channels });
});

apiRoutes.get("/apps/:appId/channels/:channel", requireAppKey, async (c) => {
  const channel = c.req.param("channel");
  if (!isValidChannelName(channel)) return c.json(INVALID_CHANNEL, 400);
  const info = await c.env.CHANNEL.getByName(channelObjectName(c.get("app").appId, channel)).info();
  const result: { subscription_count: number; occupied: boolean; user_count?: number } = {
    subscription_count: info.subscription_count,
    occupied: info.occupied,
  };
  // A presence channel nobody ever joined still has a user count: zero.
  if (channelKind(channel) === "presence") result.user_count = info.user_count ?? 0;
  return c.json(result);
});

apiRoutes.get("/apps/:appId/channels/:channel/users", requireAppKey, async (c) => {
  const channel = c.req.param("channel");
  if (!isValidChannelName(channel)) return c.json(INVALID_CHANNEL, 400);
  if (channelKind(channel) !== "presence") return c.json({ error: "User list is only possible for Presence Channels" }, 400);
  const users = await c.env.CHANNEL.getByName(channelObjectName(c.get("app").appId, channel)).users();
  return c.json({ users });
});
