/**
 * Worker entry: the Hono router, the webhook queue consumer, the cron trigger that
 * keeps the Upstash subscriber running, and the Durable Object classes wrangler binds.
 */
import { app } from "./app.ts";
import type { Env } from "./config.ts";
import type { WebhookMessage } from "./webhooks/events.ts";
import { deliverWebhooks } from "./webhooks/consumer.ts";
import { startUpstashSubscriber, startUpstashSubscriberOnce } from "./upstash/start.ts";

export default {
  fetch(request, env, ctx) {
    startUpstashSubscriberOnce(env, ctx);
    return app.fetch(request, env, ctx);
  },
  queue: deliverWebhooks,
  scheduled: (_controller, env, ctx) => ctx.waitUntil(startUpstashSubscriber(env)),
} satisfies ExportedHandler<Env, WebhookMessage>;
export { AppObject } from "../durable-objects/app.ts";
export { ChannelObject } from "../durable-objects/channel.ts";
export { ConnectionHostObject } from "../durable-objects/connection-host.ts";
export { PollingSessionObject } from "../durable-objects/polling-session.ts";
export { UpstashSubscriberObject } from "../durable-objects/upstash-subscriber.ts";
