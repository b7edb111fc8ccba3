/**
 * How a channel reaches its subscribers. Client sockets live in connection hosts
 * (hibernating Durable Objects holding many client WebSockets) and, for clients
 * that only poll, in their polling session object. A channel object records each
 * subscription with the address it is served from, and per published batch calls
 * `deliver` once per address, not once per socket: the address fans the frames out
 * to its local sockets (DESIGN invariant 2: O(hosts) requests per publish).
 *
 * Contract between ChannelObject (durable-objects/channel.ts) and the objects that
 * hold client sockets (durable-objects/connection-host.ts, polling-session.ts).
 */
import type { PresenceMember } from "./auth.ts";

/**
 * Where a socket's subscriptions are served from. `incarnation` is a random id the
 * host picks when it starts with no sockets (first start, or a restart after a
 * deploy dropped them all) and keeps while it has any, across hibernation and
 * eviction; a channel drops subscriptions it recorded under another incarnation of
 * the same address (their sockets are gone).
 */
export interface SubscriberAddress {
  kind: "host" | "polling";
  /** The Durable Object name in the HOST or POLLING namespace. */
  name: string;
  incarnation: string;
}

/** One channel's batch: ready-made Engine.IO message frames, and per frame the socket toOthers excludes (or null). */
export interface ChannelDelivery {
  channel: string;
  frames: string[];
  excluded: (string | null)[];
}

export interface DeliveryReceipt {
  incarnation: string;
  /** This address's sockets still subscribed to the channel; 0 lets the channel forget the address. */
  subscribers: number;
  /** Frames sent to sockets. */
  delivered: number;
}

/** Implemented by ConnectionHostObject and PollingSessionObject, called by ChannelObject. */
export interface DeliveryTarget {
  deliver(delivery: ChannelDelivery): Promise<DeliveryReceipt>;
}

export interface JoinRequest {
  appId: string;
  channel: string;
  socketId: string;
  /** Laravel's presence answer; null on public and private channels. */
  member: PresenceMember | null;
  at: SubscriberAddress;
  /**
   * The socket moves here from another address (a polling session upgraded to a
   * host's WebSocket): no presence change, no second `presence:subscribed`, and
   * every delivery already on its way to the old address has finished before join
   * returns, so the new owner can collect those frames from the old one first.
   */
  resumed?: boolean;
}

export interface JoinResult {
  /** Frames for this socket alone, to send once join returns (`presence:subscribed` on presence channels). */
  frames: string[];
}

export interface Whisper {
  event: string;
  data: unknown;
}

/**
 * The channel object's RPC surface for subscribers (ChannelObject implements it):
 *  - join(request): records the subscription (presence `joining` to the others on a user's first socket).
 *  - leave(at, socketId, leaveNow): an unsubscribe (leaveNow: presence `leaving` at once) or a
 *    disconnect (leaving after PRESENCE_LEAVE_GRACE unless the user is back).
 *  - whisper(at, socketId, whisper): relayed to every other subscriber if the rules hold
 *    (the socket is subscribed from `at`, private or presence channel, `client-*` event, size).
 * publish(appId, channel, messages, batch?) keeps its signature and delivers per address.
 */
export interface ChannelSubscriptions {
  join(request: JoinRequest): Promise<JoinResult>;
  leave(at: SubscriberAddress, socketId: string, leaveNow: boolean): Promise<void>;
  whisper(at: SubscriberAddress, socketId: string, whisper: Whisper): Promise<void>;
}

/** Frames of one delivery that are not excluded for `socketId` (toOthers). */
export function framesFor(delivery: ChannelDelivery, socketId: string): string[] {
  if (!delivery.excluded.includes(socketId)) return delivery.frames;
  return delivery.frames.filter((_, i) => delivery.excluded[i] !== socketId);
}
