/**
 * Fans a batch of publishes out to channels: one Durable Object call per distinct
 * channel, each carrying that channel's messages in their original order.
 */
import type { Env } from "../config.ts";
import { channelObjectName, isValidChannelName } from "../channels/names.ts";
import type { ChannelMessage } from "../../durable-objects/channel.ts";

export interface PublishMessage extends ChannelMessage {
  channel: string;
}

/** Checks one message as the bridge or the events API sends it; returns why it is unusable, or null. */
export function invalidMessage(message: unknown): string | null {
  if (!message || typeof message !== "object") return "not an object";
  const { channel, event, socket } = message as Record<string, unknown>;
  if (!isValidChannelName(channel)) return "invalid channel name";
  if (typeof event !== "string" || event === "") return "event must be a non-empty string";
  if (!("data" in message)) return "data is missing";
  if (socket !== undefined && socket !== null && typeof socket !== "string") return "socket must be a string or null";
  return null;
}

export async function fanOut(env: Env, appId: string, messages: PublishMessage[], batchId?: string): Promise<{ delivered: number }> {
  const byChannel = new Map<string, ChannelMessage[]>();
  for (const { channel, event, data, socket } of messages) {
    let list = byChannel.get(channel);
    if (!list) byChannel.set(channel, (list = []));
    list.push({ event, data, socket: socket ?? null });
  }
  const results = await Promise.all(
    [...byChannel].map(([channel, list]) =>
      env.CHANNEL.getByName(channelObjectName(appId, channel)).publish(appId, channel, list, batchId),
    ),
  );
  return { delivered: results.reduce((sum, r) => sum + r.delivered, 0) };
}
