/**
 * The one publish message every way in speaks, `{channel, event, data, socket}`, and
 * its validation, shared by the worker and the Node bridge (so nothing here may need
 * workerd). `socket` is the toOthers exclusion: the publisher's socket id, or null.
 */
import { isValidChannelName } from "../channels/names.ts";
import { utf8Length } from "../session/limits.ts";
import type { ChannelMessage } from "../../durable-objects/channel.ts";

export interface PublishMessage extends ChannelMessage {
  channel: string;
}

/**
 * Whether a published payload takes more than `maxBytes` in UTF-8. A UTF-16 code unit
 * is at most 3 UTF-8 bytes, so only long payloads are measured.
 */
export function isLargerThan(payload: string, maxBytes: number): boolean {
  return payload.length > maxBytes || (payload.length * 3 > maxBytes && utf8Length(payload) > maxBytes);
}

/**
 * Checks a payload as Laravel publishes it (`{event, data, socket}`, the channel
 * given apart); returns why it is unusable, or null.
 */
export function payloadProblem(payload: unknown): string | null {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return "not an object";
  const { event, socket } = payload as Record<string, unknown>;
  if (typeof event !== "string" || event === "") return "event must be a non-empty string";
  if (socket !== undefined && socket !== null && typeof socket !== "string") return "socket must be a string or null";
  return null;
}

/** Checks one whole message as the bridge or the events API hands it over; returns why it is unusable, or null. */
export function invalidMessage(message: unknown): string | null {
  const problem = payloadProblem(message);
  if (problem !== null) return problem;
  if (!isValidChannelName((message as { channel?: unknown }).channel)) return "invalid channel name";
  if (!("data" in (message as object))) return "data is missing";
  return null;
}
