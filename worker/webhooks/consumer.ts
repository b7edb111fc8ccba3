/**
 * The queue consumer: one signed POST per app per batch, in Pusher's format
 * (`{"time_ms", "events"}`, `X-Pusher-Key`, `X-Pusher-Signature`). A 2xx answer
 * acknowledges the app's events; anything else (another status, a network error,
 * a timeout) retries them with exponential backoff until the queue's
 * `max_retries` (wrangler.toml) is spent, about five minutes, as Pusher retries.
 */
import { readConfig, type Env } from "../config.ts";
import { hmacHex } from "../crypto.ts";
import { createLogger } from "../log.ts";
import type { WebhookMessage } from "./events.ts";
import { webhookTarget, type WebhookTarget } from "./target.ts";

/** A receiver that has not answered by then counts as failed. */
const DELIVERY_TIMEOUT_MS = 10_000;
const MAX_RETRY_DELAY_SECONDS = 60;

/** 1, 2, 4 … 60 s after the first, second, third … failed attempt. */
const retryDelaySeconds = (attempts: number) => Math.min(2 ** (attempts - 1), MAX_RETRY_DELAY_SECONDS);

export async function deliverWebhooks(batch: MessageBatch<WebhookMessage>, env: Env): Promise<void> {
  const config = readConfig(env);
  const log = createLogger(config.devMode);
  const byApp = new Map<string, Message<WebhookMessage>[]>();
  for (const message of batch.messages) {
    const messages = byApp.get(message.body.appId);
    if (messages) messages.push(message);
    else byApp.set(message.body.appId, [message]);
  }
  await Promise.all(
    [...byApp].map(async ([appId, messages]) => {
      const target = webhookTarget(config, appId);
      if (!target) {
        // The app's webhooks were configured away after these were queued.
        log.warn("webhook_dropped", { appId, events: messages.length, reason: "no webhook URL or secret for this app" });
        for (const message of messages) message.ack();
        return;
      }
      const failure = await post(target, messages);
      if (failure === null) {
        log.debug("webhook_delivered", { appId, events: messages.length });
        for (const message of messages) message.ack();
        return;
      }
      for (const message of messages) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
      log.warn("webhook_failed", { appId, events: messages.length, attempts: Math.max(...messages.map((m) => m.attempts)), error: failure });
    }),
  );
}

/**
 * POSTs one webhook; null when the receiver answered 2xx, else what went wrong.
 * `time_ms` is when its first event happened (was queued), so a receiver can tell
 * a webhook delayed by retries, which is what Pusher's field is for.
 */
async function post(target: WebhookTarget, messages: Message<WebhookMessage>[]): Promise<string | null> {
  const timeMs = Math.min(...messages.map((m) => m.timestamp.getTime()));
  const body = JSON.stringify({ time_ms: timeMs, events: messages.map((m) => m.body.event) });
  try {
    const response = await fetch(target.url, {
      method: "POST",
      headers: {
        // Exactly this: Pusher's SDKs refuse webhooks whose content type is anything else.
        "content-type": "application/json",
        "x-pusher-key": target.key,
        "x-pusher-signature": await hmacHex(target.secret, body),
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.ok ? null : `HTTP ${response.status}`;
  } catch (error) {
    return String(error);
  }
}
