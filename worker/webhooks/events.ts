/**
 * Webhook events in Pusher's format (PROTOCOL.md section 9), so a Laravel app's
 * existing Pusher webhook handler works unchanged. User ids are strings, as Pusher
 * sends them; a whisper's data is the JSON text of what the client sent.
 */

export const WEBHOOK_EVENT_NAMES = ["channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event"] as const;

export type WebhookEventName = (typeof WEBHOOK_EVENT_NAMES)[number];

export type WebhookEvent =
  | { name: "channel_occupied" | "channel_vacated"; channel: string }
  | { name: "member_added" | "member_removed"; channel: string; user_id: string }
  | { name: "client_event"; channel: string; event: string; data: string; socket_id: string; user_id?: string };

/** One queue message: an event and the app it belongs to. Key, secret and URL are read at delivery, never queued. */
export interface WebhookMessage {
  appId: string;
  event: WebhookEvent;
}
