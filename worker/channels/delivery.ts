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
  /**
   * The channel's number for the first frame (the others follow on) while it keeps a
   * recovery history, which it does while any subscriber can recover; null otherwise.
   */
  firstSeq: number | null;
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
  /** The session's private id when it can recover (Socket.IO v4 with RECOVERY_WINDOW): the channel keeps it for the window once the connection is lost. */
  pid?: string;
}

export interface JoinResult {
  /** Frames for this socket alone, to send once join returns (`presence:subscribed` on presence channels). */
  frames: string[];
  /** With a pid: the channel's last frame number when the subscription was recorded. */
  position?: number;
}

/** A reconnecting client taking up its subscription: `position` is the last frame number its offset names for this channel. */
export interface RecoverRequest {
  appId: string;
  channel: string;
  socketId: string;
  pid: string;
  position: number;
  at: SubscriberAddress;
}

export interface RecoverResult {
  member: PresenceMember | null;
  /** Every frame after `position` not excluded for the socket, with their numbers, oldest first. */
  frames: string[];
  seqs: number[];
  /** The channel's last frame number now: deliveries from here on carry higher ones. */
  position: number;
}

/**
 * Why a subscription ends: an unsubscribe (presence leaves at once), a disconnect
 * (leaves after PRESENCE_LEAVE_GRACE unless back by then), or a lost connection the
 * client may recover (the subscription is kept for RECOVERY_WINDOW when it has a pid).
 */
export type LeaveReason = "unsubscribe" | "disconnect" | "lost";

export interface Whisper {
  event: string;
  data: unknown;
}

/**
 * The channel object's RPC surface for subscribers (ChannelObject implements it):
 *  - join(request): records the subscription (presence `joining` to the others on a user's first socket).
 *  - recover(request): moves a kept subscription to the reconnected socket's address and
 *    returns what it missed; null when there is nothing to take up.
 *  - leave(at, socketId, reason): see LeaveReason.
 *  - whisper(at, socketId, whisper): relayed to every other subscriber if the rules hold
 *    (the socket is subscribed from `at`, private or presence channel, `client-*` event, size).
 * publish(appId, channel, messages, batch?) keeps its signature and delivers per address.
 */
export interface ChannelSubscriptions {
  join(request: JoinRequest): Promise<JoinResult>;
  recover(request: RecoverRequest): Promise<RecoverResult | null>;
  leave(at: SubscriberAddress, socketId: string, reason: LeaveReason): Promise<void>;
  whisper(at: SubscriberAddress, socketId: string, whisper: Whisper): Promise<void>;
}

/** The frames of a delivery for one socket, with their numbers when the channel numbers them. */
export interface NumberedFrames {
  frames: string[];
  seqs: number[] | null;
}

/** Numbers of every frame of a delivery, or null. */
export function seqsOf(delivery: ChannelDelivery): number[] | null {
  const { firstSeq, frames } = delivery;
  return firstSeq === null ? null : frames.map((_, i) => firstSeq + i);
}

/** Frames of one delivery that are not excluded for `socketId` (toOthers); `all` is seqsOf(delivery), computed once per delivery. */
export function framesFor(delivery: ChannelDelivery, socketId: string, all: number[] | null): NumberedFrames {
  if (!delivery.excluded.includes(socketId)) return { frames: delivery.frames, seqs: all };
  const kept = (_: unknown, i: number) => delivery.excluded[i] !== socketId;
  return { frames: delivery.frames.filter(kept), seqs: all && all.filter(kept) };
}
