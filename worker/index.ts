/**
 * Worker entry: the Hono router, the webhook queue consumer, the cron trigger that
 * keeps the Upstash subscriber running, and the Durable Object classes wrangler binds.
 */
import { app } from "./app.ts";
import type { Env } from "./config.ts";
import type { WebhookMessage } from "./webhooks/events.ts";
import { deliverWebhooks } from "./webhooks/consumer.ts";
import { startUpstashSubscriber, startUpstashSubscriberOnce } from "./upstash/start.ts";
import { metered } from "./metering.ts";
import { AppObject as App } from "../durable-objects/app.ts";
import { ChannelObject as Channel } from "../durable-objects/channel.ts";
import { ConnectionHostObject as ConnectionHost } from "../durable-objects/connection-host.ts";
import { PollingSessionObject as PollingSession } from "../durable-objects/polling-session.ts";
import { UpstashSubscriberObject as UpstashSubscriber } from "../durable-objects/upstash-subscriber.ts";

export default {
  fetch(request, env, ctx) {
    startUpstashSubscriberOnce(env, ctx);
    return app.fetch(request, env, ctx);
  },
  queue: deliverWebhooks,
  scheduled: (_controller, env, ctx) => ctx.waitUntil(startUpstashSubscriber(env)),
} satisfies ExportedHandler<Env, WebhookMessage>;

// Each class's entry points: what Cloudflare bills as Durable Object requests (worker/metering.ts).
export const AppObject = metered("AppObject", App, ["admit", "hasRoom", "renew", "renewAll", "release", "reportChannel", "snapshot", "channels", "busiestChannels"]);
export const ChannelObject = metered("ChannelObject", Channel, ["join", "recover", "leave", "whisper", "publish", "info", "users", "alarm"]);
export const ConnectionHostObject = metered("ConnectionHostObject", ConnectionHost, ["fetch", "deliver", "webSocketMessage", "webSocketClose", "webSocketError", "alarm"]);
export const PollingSessionObject = metered("PollingSessionObject", PollingSession, ["fetch", "deliver", "beginUpgrade", "probe", "completeUpgrade", "finishHandover"]);
export const UpstashSubscriberObject = metered("UpstashSubscriberObject", UpstashSubscriber, ["ensureRunning", "alarm"]);
