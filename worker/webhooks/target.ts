/**
 * Where an app's webhooks go: its CLIENTS entry's `webhookUrl` (else WEBHOOK_URL),
 * signed with its `secret` and sent for its `webhookEvents` (else WEBHOOK_EVENTS).
 * An app without a URL or a secret has no target, and every hook point returns at
 * this one lookup.
 */
import type { AppClient } from "../clients.ts";
import type { Config } from "../config.ts";
import { WEBHOOK_EVENT_NAMES, type WebhookEventName } from "./events.ts";

export interface WebhookTarget {
  url: string;
  key: string;
  secret: string;
  events: ReadonlySet<WebhookEventName>;
}

const targetsByConfig = new WeakMap<Config, Map<string, WebhookTarget>>();

export function webhookTarget(config: Config, appId: string): WebhookTarget | undefined {
  let targets = targetsByConfig.get(config);
  if (!targets) {
    targets = new Map();
    for (const client of config.clients) {
      const url = client.webhookUrl ?? config.webhookUrl;
      const events = client.webhookEvents ?? config.webhookEvents;
      if (url && client.secret && events.size > 0) targets.set(client.appId, { url, key: client.key, secret: client.secret, events });
    }
    targetsByConfig.set(config, targets);
  }
  return targets.get(appId);
}

/** WEBHOOK_EVENTS or a CLIENTS entry's `webhookEvents`: names Pusher sends; none given means all. */
export function parseWebhookEvents(names: readonly string[] | undefined, source: string): ReadonlySet<WebhookEventName> {
  if (!names || names.length === 0) return new Set(WEBHOOK_EVENT_NAMES);
  for (const name of names) {
    if (!(WEBHOOK_EVENT_NAMES as readonly string[]).includes(name)) {
      throw new Error(`${source}: unknown webhook event ${JSON.stringify(name)} (known: ${WEBHOOK_EVENT_NAMES.join(", ")})`);
    }
  }
  return new Set(names as WebhookEventName[]);
}

/** WEBHOOK_URL or a CLIENTS entry's `webhookUrl`: an absolute http(s) URL. */
export function parseWebhookUrl(value: string, source: string): string {
  const url = URL.parse(value);
  if (url?.protocol !== "https:" && url?.protocol !== "http:") throw new Error(`${source} must be an http(s) URL, got ${JSON.stringify(value)}`);
  return url.href;
}

/** A CLIENTS entry's own webhook settings (`webhookUrl`, `webhookEvents` as an array of names), checked. */
export function clientWebhookOptions(entry: { webhookUrl?: unknown; webhookEvents?: unknown }, source: string): Pick<AppClient, "webhookUrl" | "webhookEvents"> {
  const options: Pick<AppClient, "webhookUrl" | "webhookEvents"> = {};
  if (entry.webhookUrl !== undefined) options.webhookUrl = parseWebhookUrl(String(entry.webhookUrl), `${source}.webhookUrl`);
  if (entry.webhookEvents !== undefined) {
    if (!Array.isArray(entry.webhookEvents) || entry.webhookEvents.length === 0 || !entry.webhookEvents.every((n) => typeof n === "string")) {
      throw new Error(`${source}.webhookEvents must be a non-empty array of event names`);
    }
    options.webhookEvents = parseWebhookEvents(entry.webhookEvents, `${source}.webhookEvents`);
  }
  return options;
}
