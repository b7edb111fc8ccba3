/**
 * The bodies of `POST /apps/:appId/events` and `/batch_events`, as Pusher and
 * laravel-echo-server define them, turned into publish messages:
 *
 * - event: `{name, data, channel | channels (at most 100), socket_id?}`
 * - batch: `{batch: [event, …]}`, at most 10 events
 *
 * `data` given as a string (Pusher always sends one) reaches clients parsed when it
 * is JSON, as laravel-echo-server does; any other string stays a string. Pusher's
 * limit on `data` (10 KB by default) answers 413.
 */
import { invalidMessage, type PublishMessage } from "./message.ts";

export const MAX_CHANNELS_PER_EVENT = 100;
export const MAX_EVENTS_PER_BATCH = 10;
/** Room for one event's envelope around its data: up to 100 channel names of 200 characters, the name, the socket id. */
const EVENT_ENVELOPE_BYTES = 24 * 1024;

/**
 * The largest body worth reading: a full batch of events whose data is at the limit,
 * with room for JSON escaping to double it (quotes and backslashes inside a data string).
 */
export function eventsBodyLimit(maxDataBytes: number): number {
  return MAX_EVENTS_PER_BATCH * (2 * maxDataBytes + EVENT_ENVELOPE_BYTES);
}

export type EventsRequest = { ok: true; messages: PublishMessage[] } | { ok: false; status: 400 | 413; error: string };

/** laravel-echo-server's answer to an event without the essentials. */
const INCOMPLETE: EventsRequest = { ok: false, status: 400, error: "Event must include channel, event name and data" };
const encoder = new TextEncoder();

function dataBytes(data: unknown): number {
  return encoder.encode(typeof data === "string" ? data : JSON.stringify(data)).byteLength;
}

function parsedData(data: unknown): unknown {
  if (typeof data !== "string") return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

export function readEvent(body: unknown, maxDataBytes: number): EventsRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return INCOMPLETE;
  const { channel, channels, name, data, socket_id } = body as Record<string, unknown>;
  const targets = channels !== undefined ? channels : channel !== undefined ? [channel] : [];
  if (!Array.isArray(targets) || targets.length === 0 || name === undefined || data === undefined) return INCOMPLETE;
  if (targets.length > MAX_CHANNELS_PER_EVENT) {
    return { ok: false, status: 400, error: `Too many channels: an event goes to at most ${MAX_CHANNELS_PER_EVENT}` };
  }
  const size = dataBytes(data);
  if (size > maxDataBytes) {
    return { ok: false, status: 413, error: `Event data too large: ${size} bytes, at most ${maxDataBytes}` };
  }
  const payload = { event: name, data: parsedData(data), socket: typeof socket_id === "string" ? socket_id : null };
  const messages = targets.map((target) => ({ channel: target, ...payload }));
  for (const message of messages) {
    const problem = invalidMessage(message);
    if (problem !== null) return { ok: false, status: 400, error: `Invalid event: ${problem}` };
  }
  return { ok: true, messages: messages as PublishMessage[] };
}

export function readBatch(body: unknown, maxDataBytes: number): EventsRequest {
  const batch = (body as { batch?: unknown } | null)?.batch;
  if (!Array.isArray(batch)) return { ok: false, status: 400, error: 'Body must be {"batch": [events]}' };
  if (batch.length > MAX_EVENTS_PER_BATCH) {
    return { ok: false, status: 400, error: `Too many events: a batch holds at most ${MAX_EVENTS_PER_BATCH}` };
  }
  const messages: PublishMessage[] = [];
  for (const [i, item] of batch.entries()) {
    const event = readEvent(item, maxDataBytes);
    if (!event.ok) return { ...event, error: `batch[${i}]: ${event.error}` };
    messages.push(...event.messages);
  }
  return { ok: true, messages };
}
