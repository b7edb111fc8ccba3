/**
 * One Socket.IO client (namespace "/") over any Engine.IO transport: CONNECT per
 * protocol revision, then laravel-echo's events: subscribe, unsubscribe and
 * `client event` (whisper). It is handed Socket.IO packet texts and a way to send
 * packets back, so the same class runs in a Worker (WebSocket) and in a polling
 * session Durable Object.
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { AuthResult, PresenceMember } from "../channels/auth.ts";
import type { LeaveReason, Whisper } from "../channels/delivery.ts";
import { channelKind, isValidChannelName } from "../channels/names.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Slots, TokenBucket, utf8Length } from "./limits.ts";
import { decodeOffset, encodeOffset, newPid, socketIdOfPid } from "./recovery.ts";
import {
  SocketPacketType,
  decodeSocketPacket,
  messageFrame,
  withLastArgument,
  type SocketPacket,
  type SocketRevision,
} from "../protocol/socketio.ts";

/** How a session reaches channels: Laravel auth, and its subscriptions in channel objects. */
export interface ChannelGateway {
  /** Asks Laravel; `signal` aborts the call once the client no longer wants the channel. */
  authorize(channel: string, authHeaders: unknown, caller: { socketId: string; signal: AbortSignal }): Promise<AuthResult>;
  /**
   * Joins the channel; frames reach `handlers` from then on, the join's own frames first.
   * `resumed`: the socket's subscription moves here from its previous transport (see SessionHandover).
   * `pid`: the session can recover, so the channel keeps the subscription for a while once the connection is lost.
   */
  open(
    channel: string,
    socketId: string,
    member: PresenceMember | null,
    handlers: LinkHandlers,
    options?: { resumed?: boolean; pid?: string },
  ): Promise<ChannelLink>;
  /**
   * Takes up the subscription a lost connection of session `pid` left in the channel:
   * what the client missed after frame `position` reaches `handlers` first. Null when
   * the channel has nothing to take up (unknown, expired, or its history no longer
   * reaches back that far).
   */
  recover(
    channel: string,
    request: { socketId: string; pid: string; position: number },
    handlers: LinkHandlers,
  ): Promise<{ member: PresenceMember | null; link: ChannelLink } | null>;
  /**
   * A subscription the channel already holds, taken up again without any call (a
   * connection host rebuilding its sessions from socket attachments after hibernation).
   */
  attach(channel: string, socketId: string, handlers: LinkHandlers): ChannelLink;
}

export interface LinkHandlers {
  /** `seqs`: the channel's numbers of these frames, when it numbers them (see ChannelDelivery.firstSeq). */
  onFrames(frames: string[], seqs: number[] | null): void;
}

/** One subscription as the session holds it. */
export interface ChannelLink {
  /** The channel's last frame number when the subscription was recorded or taken up; null when unknown here. */
  readonly position: number | null;
  whisper(whisper: Whisper): void;
  /** See LeaveReason; moved: the subscription goes on from the socket's new transport, so nothing is left. */
  close(reason: LeaveReason | "moved"): void;
}

export interface SessionOptions {
  revision: SocketRevision;
  /** What `Echo.socketId()` returns: the engine sid on revision 4, a separate id on revision 5. */
  socketId: string;
  config: Config;
  gateway: ChannelGateway;
  log: Logger;
  /** Engine.IO message frames to the client, in order: the session's own packets and its channels' ready-made frames. */
  send(frames: string[]): void;
  /** Ends the client's Engine.IO connection. */
  close(reason: string): void;
  /** What state() returns has changed (a connection host keeps it in the socket's attachment). */
  onChange?(): void;
}

type Subscription = {
  link: ChannelLink | null;
  kind: ReturnType<typeof channelKind>;
  /** Laravel's answer (the presence member, null elsewhere); undefined while auth is pending. */
  member?: PresenceMember | null;
  /** The client's subscribe payload while auth is pending, so a handover can ask again. */
  request?: unknown;
  /** Cancels the auth call (or its wait for a slot) of a subscription dropped before Laravel answered. */
  auth?: AbortController;
  /** For a session that can recover: the last frame number of this channel the client has been sent (or nothing was, as of joining). */
  position?: number;
};

/**
 * A running session as plain data, to continue it on another transport (a polling
 * session upgrading to WebSocket): the new owner joins its channels with `resumed`:
 * each channel moves the socket's subscription to it and returns once its deliveries
 * to the old owner are done, so every frame reaches exactly one of them.
 */
export interface SessionHandover extends SessionState {
  /** Subscribe payloads (as JSON) still waiting for Laravel: the new owner sends them again. */
  pending: string[];
}

/** What a session needs to go on without asking anyone again: its socket id, whether it connected, its channels. */
export interface SessionState {
  socketId: string;
  connected: boolean;
  /** The private session id a recovering client presents; null when the session cannot recover. */
  pid: string | null;
  /** Channels joined, with the presence member Laravel's auth gave (so no second auth call) and the position recovery counts from. */
  channels: { channel: string; member: PresenceMember | null; position?: number }[];
}

/** A joined channel as a SessionState carries it to another transport or across hibernation. */
function carriedSubscription({ channel, member, position }: SessionState["channels"][number]): Subscription {
  return { link: null, kind: channelKind(channel), member, ...(position !== undefined && { position }) };
}

/** The client has frame `seq` of the subscription's channel (or, on joining, needs nothing up to it). */
function advance(subscription: Subscription, seq: number): void {
  subscription.position = Math.max(subscription.position ?? seq, seq);
}

/** Event name of errors we report to a client that laravel-echo does not otherwise see. */
const ERROR_EVENT = "echo-edge:error";

/** Connection losses a client may recover from, as socket.io counts them (not its own disconnect, nor a protocol error). */
const RECOVERABLE_REASONS = new Set(["transport close", "transport error", "ping timeout"]);

export class Session {
  /** Settled by the CONNECT: a recovered session takes its old socket id back. */
  socketId: string;
  private readonly options: SessionOptions;
  private connected = false;
  /** A revision 5 CONNECT is being answered (recovery asks the channels first). */
  private connecting = false;
  private pid: string | null = null;
  /** While a recovery is under way, frames wait here for the CONNECT reply to go first. */
  private held: (() => void)[] | null = null;
  private ended = false;
  /** The session continues elsewhere: frames still reaching it are forwarded until finishHandover(). */
  private handedOver = false;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly subscribeTokens: TokenBucket;
  /** Auth calls to Laravel in flight for this connection, at most MAX_PENDING_AUTH. */
  private readonly authSlots: Slots;
  private readonly whisperTokens: TokenBucket;
  private readonly whisperBytes: TokenBucket;
  /** Whispers are being dropped: one warning per stretch of drops, not one per whisper. */
  private droppingWhispers = false;

  constructor(options: SessionOptions) {
    this.options = options;
    this.socketId = options.socketId;
    const { config } = options;
    this.subscribeTokens = new TokenBucket(config.subscribeBurst, config.subscribeRate);
    this.authSlots = new Slots(config.maxPendingAuth);
    this.whisperTokens = new TokenBucket(config.whisperRate, config.whisperRate);
    this.whisperBytes = new TokenBucket(config.whisperBytes, config.whisperBytes);
  }

  /** Called once the Engine.IO connection is open. Revision 4 servers connect "/" unasked. */
  start(): void {
    if (this.options.revision === 4) this.connect(null);
  }

  /** One Socket.IO packet (the data of an Engine.IO message) from the client. */
  receive(text: string): void {
    if (this.ended) return;
    let packet;
    try {
      packet = decodeSocketPacket(text);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return this.violation(error.message);
    }
    if (packet.nsp !== "/") {
      // Echo only uses "/": refuse other namespaces the way socket.io does.
      const error = this.options.revision === 4 ? "Invalid namespace" : { message: "Invalid namespace" };
      return this.send({ type: SocketPacketType.CONNECT_ERROR, nsp: packet.nsp, data: error });
    }
    switch (packet.type) {
      case SocketPacketType.CONNECT:
        if (this.options.revision === 5 && !this.connected && !this.connecting) void this.connectOrRecover(packet.data);
        return;
      case SocketPacketType.DISCONNECT:
        return this.options.close("client namespace disconnect");
      case SocketPacketType.EVENT:
        if (!this.connected) return this.violation("event before connect");
        return this.onEvent(packet.data as unknown[], text);
      case SocketPacketType.ACK:
        return; // we never ask for acknowledgements
      default:
        return this.violation(`unexpected packet type ${packet.type}`);
    }
  }

  /** This client broke the protocol: log it and end only its connection. */
  private violation(detail: string): void {
    this.options.log.warn("protocol_error", { socketId: this.socketId, error: detail });
    this.options.close(`protocol error: ${detail}`);
  }

  /** Stops this session taking part (frames keep arriving until finishHandover()) and describes it for the new owner. */
  handOver(): SessionHandover {
    this.handedOver = true;
    const state: SessionHandover = { ...this.state(), pending: [] };
    for (const [channel, subscription] of this.subscriptions) {
      if (subscription.member !== undefined) continue;
      subscription.auth?.abort();
      state.pending.push(JSON.stringify(subscription.request));
      this.subscriptions.delete(channel);
    }
    return state;
  }

  /**
   * After handOver(), once the new owner's resumed joins returned: nothing more is
   * delivered here for the channels it rejoined; the others are left.
   */
  finishHandover(rejoined: string[]): void {
    for (const [channel, subscription] of this.subscriptions) {
      subscription.link?.close(rejoined.includes(channel) ? "moved" : "disconnect");
      subscription.link = null;
    }
  }

  /** Continues a session handed over by another transport: rejoins its channels without asking Laravel again; resolves with those rejoined. */
  async resume(state: SessionHandover): Promise<string[]> {
    this.connected = state.connected;
    this.pid = state.pid;
    const rejoined = await Promise.all(
      state.channels.map(async (carried) => {
        const subscription = carriedSubscription(carried);
        this.subscriptions.set(carried.channel, subscription);
        return (await this.join(carried.channel, subscription, true)) ? carried.channel : null;
      }),
    );
    for (const request of state.pending) void this.subscribe(JSON.parse(request));
    return rejoined.filter((channel) => channel !== null);
  }

  /** The joined channels as they stand (pending subscribes are not part of it). */
  state(): SessionState {
    const channels: SessionState["channels"] = [];
    for (const [channel, { link, member, position }] of this.subscriptions) {
      if (link && member !== undefined) channels.push({ channel, member, ...(position !== undefined && { position }) });
    }
    return { socketId: this.socketId, connected: this.connected, pid: this.pid, channels };
  }

  /** Takes up a state saved by state() in the same place (a host woken from hibernation): the channels still hold these subscriptions. */
  restore(state: SessionState): void {
    this.connected = state.connected;
    this.pid = state.pid;
    for (const carried of state.channels) {
      const subscription = carriedSubscription(carried);
      const { channel } = carried;
      subscription.link = this.options.gateway.attach(channel, this.socketId, this.linkHandlers(channel, subscription));
      this.subscriptions.set(channel, subscription);
    }
  }

  /** The transport is gone (`reason`: the Engine.IO close reason): leave every channel, or keep them for a recovery. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    // A connection lost while it was recovering leaves what it took up recoverable too.
    const leave: LeaveReason = (this.pid !== null || this.connecting) && RECOVERABLE_REASONS.has(reason) ? "lost" : "disconnect";
    for (const subscription of this.subscriptions.values()) {
      subscription.auth?.abort();
      subscription.link?.close(leave);
    }
    this.subscriptions.clear();
  }

  /** Revision 5: a CONNECT whose payload names an earlier session (`pid`, `offset`) takes that session up when it can. */
  private async connectOrRecover(auth: unknown): Promise<void> {
    if (this.options.config.recoveryWindow === 0) return this.connect(null);
    this.connecting = true;
    const { pid, offset } = (auth ?? {}) as { pid?: unknown; offset?: unknown };
    const recovered = typeof pid === "string" && (await this.recover(pid, offset));
    this.connecting = false;
    const held = this.held ?? [];
    this.held = null;
    if (this.ended) return;
    this.connect(recovered ? pid : newPid(this.socketId));
    // What each channel replayed, then what arrived meanwhile.
    for (const send of held) send();
  }

  /**
   * Takes up every channel the offset lists, with what the client missed there; all
   * or nothing: if one cannot be taken up, the others are left as a lost connection
   * leaves them (kept until the window ends), and the client starts afresh.
   */
  private async recover(pid: string, offset: unknown): Promise<boolean> {
    const socketId = socketIdOfPid(pid);
    const positions = decodeOffset(offset, this.options.config.maxChannelsPerConnection);
    if (socketId === null || positions === null) {
      this.options.log.debug("recovery_refused", { socketId: this.socketId, reason: "no well-formed pid and offset" });
      return false;
    }
    // Each channel taken up is a call to its channel object, like a subscribe: the same budget applies.
    for (const _ of positions) {
      if (this.subscribeTokens.take()) continue;
      this.options.log.debug("recovery_refused", { socketId: this.socketId, reason: "SUBSCRIBE_RATE", channels: positions.size });
      return false;
    }
    const fresh = this.socketId;
    this.socketId = socketId;
    this.held = [];
    const subscriptions: Subscription[] = [];
    const taken = await Promise.all(
      [...positions].map(async ([channel, position]) => {
        const subscription: Subscription = { link: null, kind: channelKind(channel), position };
        this.subscriptions.set(channel, subscription);
        subscriptions.push(subscription);
        try {
          const recovered = await this.options.gateway.recover(channel, { socketId, pid, position }, this.linkHandlers(channel, subscription));
          if (recovered === null) {
            this.options.log.debug("recovery_refused", { socketId, channel, reason: "the channel has nothing to take up" });
            return false;
          }
          subscription.member = recovered.member;
          subscription.link = recovered.link;
          return true;
        } catch (error) {
          this.options.log.warn("recover_failed", { socketId, channel, error: String(error) });
          return false;
        }
      }),
    );
    if (!this.ended && taken.every(Boolean)) {
      this.options.log.debug("recovered", { socketId, channels: taken.length });
      return true;
    }
    this.held = null;
    for (const subscription of subscriptions) subscription.link?.close("lost");
    this.subscriptions.clear();
    this.socketId = fresh;
    return false;
  }

  private connect(pid: string | null): void {
    this.connected = true;
    this.pid = pid;
    this.options.onChange?.();
    const data = this.options.revision === 5 ? { sid: this.socketId, ...(pid !== null && { pid }) } : undefined;
    this.send({ type: SocketPacketType.CONNECT, nsp: "/", data });
  }

  private send(packet: SocketPacket): void {
    this.options.send([messageFrame(packet)]);
  }

  private emit(event: string, ...args: unknown[]): void {
    this.send({ type: SocketPacketType.EVENT, nsp: "/", data: [event, ...args] });
  }

  /** `text`: the packet as received, what whisper volume is counted by. */
  private onEvent([event, payload]: unknown[], text: string): void {
    switch (event) {
      case "subscribe":
        return void this.subscribe(payload);
      case "unsubscribe":
        return this.unsubscribe(payload);
      case "client event":
        return this.whisper(payload, text);
      default:
        this.emit(ERROR_EVENT, { event, message: "unknown event" });
    }
  }

  private async subscribe(payload: unknown): Promise<void> {
    const { channel, auth } = (payload ?? {}) as { channel?: unknown; auth?: { headers?: unknown } };
    if (!isValidChannelName(channel)) {
      this.options.log.debug("subscribe_rejected", { socketId: this.socketId, channel, status: 400 });
      return this.emit("subscription_error", typeof channel === "string" ? channel : null, 400);
    }
    if (this.subscriptions.has(channel)) return;
    if (this.subscriptions.size >= this.options.config.maxChannelsPerConnection) return this.tooMany(channel, "MAX_CHANNELS");
    // Before any auth call: a client churning subscriptions must not turn into load on Laravel.
    if (!this.subscribeTokens.take()) return this.tooMany(channel, "SUBSCRIBE_RATE");
    const subscription: Subscription = { link: null, kind: channelKind(channel), request: payload };
    this.subscriptions.set(channel, subscription);
    const current = () => this.isCurrent(channel, subscription);

    let member: PresenceMember | null = null;
    if (subscription.kind !== "public") {
      const abort = (subscription.auth = new AbortController());
      const result = await this.authSlots.run(abort.signal, () =>
        this.options.gateway.authorize(channel, auth?.headers, { socketId: this.socketId, signal: abort.signal }),
      );
      delete subscription.auth;
      if (result === null) return; // dropped while waiting for a slot: Laravel was never asked
      this.options.log.debug("auth", {
        socketId: this.socketId,
        channel,
        status: result.ok ? 200 : result.status,
        ...(result.ok ? {} : { reason: result.reason }),
      });
      if (!current()) return;
      if (!result.ok) {
        this.subscriptions.delete(channel);
        return this.emit("subscription_error", channel, result.status);
      }
      member = result.member;
    }
    subscription.member = member;
    delete subscription.request;
    await this.join(channel, subscription, false);
  }

  private tooMany(channel: string, limit: "MAX_CHANNELS" | "SUBSCRIBE_RATE"): void {
    this.options.log.debug("subscribe_rejected", { socketId: this.socketId, channel, status: 429, limit });
    this.emit("subscription_error", channel, 429);
  }

  private isCurrent(channel: string, subscription: Subscription): boolean {
    return !this.ended && !this.handedOver && this.subscriptions.get(channel) === subscription;
  }

  /** Opens the channel link of an authorized subscription; false when it did not (or is no longer wanted). */
  private async join(channel: string, subscription: Subscription, resumed: boolean): Promise<boolean> {
    const current = () => this.isCurrent(channel, subscription);
    let link: ChannelLink;
    try {
      const handlers = this.linkHandlers(channel, subscription);
      const options = { ...(resumed && { resumed }), ...(this.pid !== null && { pid: this.pid }) };
      link = await this.options.gateway.open(channel, this.socketId, subscription.member ?? null, handlers, options);
    } catch (error) {
      this.options.log.warn("link_failed", { socketId: this.socketId, channel, error: String(error) });
      if (!current()) return false;
      this.subscriptions.delete(channel);
      this.emit("subscription_error", channel, 500);
      return false;
    }
    if (!current()) {
      // Handed over meanwhile: the new owner has this channel, so no presence leave either.
      link.close(this.handedOver ? "moved" : "unsubscribe");
      return false;
    }
    subscription.link = link;
    if (link.position !== null) advance(subscription, link.position);
    this.options.onChange?.();
    this.options.log.debug(resumed ? "resubscribed" : "subscribed", { socketId: this.socketId, channel });
    return true;
  }

  private linkHandlers(channel: string, subscription: Subscription): LinkHandlers {
    return {
      onFrames: (frames, seqs) => {
        if (this.ended || this.subscriptions.get(channel) !== subscription) return;
        if (this.held) return void this.held.push(() => this.sendChannelFrames(channel, subscription, frames, seqs));
        // After a handover, frames still reaching a subscription the new owner took over are forwarded to it.
        if (!this.handedOver || subscription.link !== null) this.sendChannelFrames(channel, subscription, frames, seqs);
      },
    };
  }

  /** A session that can recover gets the offset of each numbered frame as the event's last argument. */
  private sendChannelFrames(channel: string, subscription: Subscription, frames: string[], seqs: number[] | null): void {
    if (this.ended || this.subscriptions.get(channel) !== subscription) return;
    if (this.pid === null || seqs === null) return this.options.send(frames);
    this.options.send(
      frames.map((frame, i) => {
        advance(subscription, seqs[i]!);
        return withLastArgument(frame, this.offset());
      }),
    );
    this.options.onChange?.();
  }

  /** Where the client stands in each of its channels (see recovery.ts). */
  private offset(): string {
    const positions: [string, number][] = [];
    for (const [channel, { position }] of this.subscriptions) if (position !== undefined) positions.push([channel, position]);
    return encodeOffset(positions);
  }

  private unsubscribe(payload: unknown): void {
    const channel = (payload as { channel?: unknown } | null)?.channel;
    if (typeof channel !== "string") return this.emit(ERROR_EVENT, { event: "unsubscribe", message: "channel missing" });
    const subscription = this.subscriptions.get(channel);
    if (!subscription) return;
    this.subscriptions.delete(channel);
    subscription.auth?.abort();
    subscription.link?.close("unsubscribe");
    if (subscription.link) this.options.onChange?.();
    this.options.log.debug("unsubscribed", { socketId: this.socketId, channel });
  }

  private whisper(payload: unknown, text: string): void {
    const { channel, event, data } = (payload ?? {}) as { channel?: unknown; event?: unknown; data?: unknown };
    if (typeof channel !== "string" || typeof event !== "string" || !event.startsWith("client-")) {
      return this.emit(ERROR_EVENT, { event: "client event", message: "whisper needs a channel and a client-* event" });
    }
    const subscription = this.subscriptions.get(channel);
    // Whispers are only relayed on private/presence channels the sender has joined.
    if (!subscription?.link || subscription.kind === "public") return;
    const limit = !this.whisperTokens.take() ? "WHISPER_RATE" : !this.whisperBytes.take(utf8Length(text)) ? "WHISPER_BYTES" : null;
    if (limit) {
      if (!this.droppingWhispers) this.options.log.warn("whisper_dropped", { socketId: this.socketId, channel, limit });
      this.droppingWhispers = true;
      return;
    }
    this.droppingWhispers = false;
    const whisper: Whisper = { event, data };
    subscription.link.whisper(whisper);
  }
}
