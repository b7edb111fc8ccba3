/**
 * `GET /stats`: totals over every configured app, as JSON for monitoring. With an
 * app key (`?auth_key=` or `Authorization: Bearer`) the answer adds that app's
 * numbers and busiest channels, and a browser (`Accept: text/html`) gets the live
 * dashboard instead. A wrong key is refused; STATS_REQUIRE_KEY=true refuses
 * callers without a key too. In Upstash mode the answer also carries the
 * subscriber's state (`upstash`), the way the bridge's `/health` does.
 */
import { Hono } from "hono";
import { channelKind, type ChannelKind } from "../channels/names.ts";
import { readConfig, type Env } from "../config.ts";
import type { AppSnapshot, NamedChannelEntry } from "../../durable-objects/app.ts";
import type { UpstashStatus } from "../../durable-objects/upstash-subscriber.ts";
import { statsPage } from "../stats/page.ts";
import { logApiCall } from "./api.ts";
import { appWithKey } from "./app-key.ts";

export const statsRoutes = new Hono<{ Bindings: Env }>();

/** Rows in the per-channel table: enough to see the hot spots, small enough to poll every few seconds. */
const BUSIEST_CHANNELS = 50;
/** How often the dashboard polls this endpoint. */
const DASHBOARD_POLL_MS = 3000;

export interface Counters {
  clients: number;
  channels: number;
  subscriptions: number;
  messages_received: number;
  messages_delivered: number;
}

export interface Stats extends Counters {
  uptime: number;
  /** Only for a caller with an app key: that app's share and its busiest channels. */
  app?: Counters & { id: string; uptime: number; busiest_channels: (NamedChannelEntry & { kind: ChannelKind })[] };
  /** Only in Upstash mode. */
  upstash?: UpstashStatus;
}

function counters(snapshots: AppSnapshot[]): Counters {
  const sum = (pick: (s: AppSnapshot) => number) => snapshots.reduce((total, s) => total + pick(s), 0);
  return {
    clients: sum((s) => s.connections),
    channels: sum((s) => s.channels),
    subscriptions: sum((s) => s.subscriptions),
    messages_received: sum((s) => s.received),
    messages_delivered: sum((s) => s.delivered),
  };
}

const uptimeSince = (startedAt: number) => (Date.now() - startedAt) / 1000;

statsRoutes.get("/stats", logApiCall, async (c) => {
  const config = readConfig(c.env);
  const keyed = await appWithKey(c.env, c.req.raw);
  // A wrong key is refused rather than quietly answered with the keyless totals.
  const keyGiven = c.req.query("auth_key") !== undefined || c.req.header("authorization") !== undefined;
  if (!keyed && (config.statsRequireKey || keyGiven)) return c.json({ error: "Unauthorized" }, 403);
  if (keyed && c.req.header("accept")?.includes("text/html")) {
    return c.html(statsPage(DASHBOARD_POLL_MS), 200, {
      "cache-control": "no-store",
      // The key is in the page's address: keep it out of Referer headers, and load nothing from elsewhere.
      "referrer-policy": "no-referrer",
      "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
    });
  }
  const appIds = [...new Set(config.clients.map((client) => client.appId))];
  const [snapshots, upstash] = await Promise.all([
    Promise.all(appIds.map((appId) => c.env.APP.getByName(appId).snapshot())),
    // Asking also (re)starts it, so a stopped subscriber never shows as one.
    config.upstash ? c.env.UPSTASH.getByName(config.upstash.appId).ensureRunning() : null,
  ]);
  const stats: Stats = {
    uptime: snapshots.length === 0 ? 0 : uptimeSince(Math.min(...snapshots.map((s) => s.startedAt))),
    ...counters(snapshots),
  };
  if (upstash) stats.upstash = upstash;
  if (keyed) {
    const snapshot = snapshots[appIds.indexOf(keyed.appId)]!;
    stats.app = {
      id: keyed.appId,
      uptime: uptimeSince(snapshot.startedAt),
      ...counters([snapshot]),
      busiest_channels: (await c.env.APP.getByName(keyed.appId).busiestChannels(BUSIEST_CHANNELS)).map((entry) => ({
        ...entry,
        kind: channelKind(entry.name),
      })),
    };
  }
  return c.json(stats);
});
