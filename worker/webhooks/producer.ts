/**
 * The producer side of webhooks. The channel object calls one method per hook
 * point; each returns at once for an app without a webhook target, and otherwise
 * hands the event to the queue without waiting: a failed send is a log line, never
 * a failed subscribe, whisper or publish.
 */
import type { PresenceMember } from "../channels/auth.ts";
import { readConfig, type Env } from "../config.ts";
import { createLogger } from "../log.ts";
import type { WebhookEvent, WebhookEventName } from "./events.ts";
import { webhookTarget } from "./target.ts";

/** Storage key of the occupancy last announced, so occupied and vacated alternate across hibernation and eviction. */
const ANNOUNCED_OCCUPANCY_KEY = "webhook:occupied";

function enqueueWebhook(env: Env, appId: string, event: WebhookEvent): void {
  env.WEBHOOKS?.send({ appId, event }).catch((error: unknown) =>
    createLogger(readConfig(env).devMode).warn("webhook_enqueue_failed", { appId, webhook: event.name, channel: event.channel, error: String(error) }),
  );
}

/** The webhooks of one channel object. */
export class ChannelWebhooks {
  private readonly env: Env;
  /** The channel object's storage, where the announced occupancy lives. */
  private readonly storage: SyncKvStorage;

  constructor(env: Env, storage: SyncKvStorage) {
    this.env = env;
    this.storage = storage;
  }

  /**
   * channel_occupied / channel_vacated when the channel's occupancy differs from the
   * one last announced. Members inside their leave grace count as occupying, so a
   * reconnecting tab announces nothing.
   */
  occupancy(appId: string, channel: string, isOccupied: () => boolean): void {
    const events = this.eventsOf(appId);
    if (!events?.has("channel_occupied") && !events?.has("channel_vacated")) return;
    const occupied = isOccupied();
    if (occupied === (this.storage.get<boolean>(ANNOUNCED_OCCUPANCY_KEY) ?? false)) return;
    this.storage.put(ANNOUNCED_OCCUPANCY_KEY, occupied);
    const name = occupied ? "channel_occupied" : "channel_vacated";
    if (events.has(name)) enqueueWebhook(this.env, appId, { name, channel });
  }

  /** Called where the others see `presence:joining`: a user's first socket, not a return inside the grace. */
  memberAdded(appId: string, channel: string, member: PresenceMember): void {
    this.member("member_added", appId, channel, member);
  }

  /** Called where the others see `presence:leaving`: an unsubscribe, or the end of the grace. */
  memberRemoved(appId: string, channel: string, member: PresenceMember): void {
    this.member("member_removed", appId, channel, member);
  }

  /** A relayed whisper; `data` goes out as JSON text, as Pusher sends client events. */
  clientEvent(sender: { appId: string; channel: string; socketId: string; member: PresenceMember | null }, event: string, data: unknown): void {
    if (!this.eventsOf(sender.appId)?.has("client_event")) return;
    const webhook: WebhookEvent = { name: "client_event", channel: sender.channel, event, data: JSON.stringify(data ?? null), socket_id: sender.socketId };
    if (sender.member) webhook.user_id = String(sender.member.user_id);
    enqueueWebhook(this.env, sender.appId, webhook);
  }

  private member(name: "member_added" | "member_removed", appId: string, channel: string, member: PresenceMember): void {
    if (this.eventsOf(appId)?.has(name)) enqueueWebhook(this.env, appId, { name, channel, user_id: String(member.user_id) });
  }

  private eventsOf(appId: string): ReadonlySet<WebhookEventName> | undefined {
    return this.env.WEBHOOKS && webhookTarget(readConfig(this.env), appId)?.events;
  }
}
