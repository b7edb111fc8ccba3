/**
 * Fans a batch of publishes out to channels: one Durable Object call per distinct
 * channel, each carrying that channel's messages in their original order.
 */
import type { Env } from "../config.ts";
import { channelObjectName } from "../channels/names.ts";
import type { BatchStamp, ChannelMessage } from "../../durable-objects/channel.ts";
import type { PublishMessage } from "./message.ts";

export async function fanOut(env: Env, appId: string, messages: PublishMessage[], batch?: BatchStamp): Promise<{ delivered: number }> {
  const byChannel = new Map<string, ChannelMessage[]>();
  for (const { channel, event, data, socket } of messages) {
    let list = byChannel.get(channel);
    if (!list) byChannel.set(channel, (list = []));
    list.push({ event, data, socket: socket ?? null });
  }
  const results = await Promise.all(
    [...byChannel].map(([channel, list]) =>
      env.CHANNEL.getByName(channelObjectName(appId, channel)).publish(appId, channel, list, batch),
    ),
  );
  return { delivered: results.reduce((sum, r) => sum + r.delivered, 0) };
}
