/**
 * The apps a deployment serves, from the CLIENTS variable (a JSON array, a secret).
 * The worker and the bridge read the same variable, so they read it here, the same way.
 */
import type { WebhookEventName } from "./webhooks/events.ts";
import { clientWebhookOptions } from "./webhooks/target.ts";

export interface AppClient {
  appId: string;
  key: string;
  /** The app secret: verifies Pusher-signed publishes and signs webhooks, as Pusher's does. */
  secret?: string;
  /** This app's own WEBHOOK_URL / WEBHOOK_EVENTS. */
  webhookUrl?: string;
  webhookEvents?: ReadonlySet<WebhookEventName>;
}

/** Throws an Error naming the entry and field at fault. */
export function parseClients(raw: string | undefined): AppClient[] {
  if (!raw || raw.trim() === "") return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('CLIENTS is not JSON (expected [{"appId":…,"key":…}])');
  }
  if (!Array.isArray(parsed)) throw new Error("CLIENTS must be a JSON array of {appId, key}");
  return parsed.map((c, i) => {
    if (typeof c?.appId !== "string" || typeof c?.key !== "string" || !c.appId || !c.key) {
      throw new Error(`CLIENTS[${i}] needs string appId and key`);
    }
    if (c.secret !== undefined && (typeof c.secret !== "string" || !c.secret)) throw new Error(`CLIENTS[${i}].secret must be a non-empty string`);
    return { appId: c.appId, key: c.key, ...(c.secret && { secret: c.secret }), ...clientWebhookOptions(c, `CLIENTS[${i}]`) };
  });
}
