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
import type { ChannelLink, LinkHandlers, Whisper } from "../channels/link.ts";
import { channelKind, isValidChannelName } from "../channels/names.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  SocketPacketType,
  decodeSocketPacket,
  encodeSocketPacket,
  type SocketRevision,
} from "../protocol/socketio.ts";

/** How a session reaches channels: Laravel auth, and links to channel objects. */
export interface ChannelGateway {
  authorize(channel: string, authHeaders: unknown): Promise<AuthResult>;
  open(channel: string, socketId: string, member: PresenceMember | null, handlers: LinkHandlers): Promise<ChannelLink>;
}

export interface SessionOptions {
  revision: SocketRevision;
  /** What `Echo.socketId()` returns: the engine sid on revision 4, a separate id on revision 5. */
  socketId: string;
  config: Config;
  gateway: ChannelGateway;
  log: Logger;
  /** Sends Socket.IO packet texts to the client, in order. */
  send(packets: string[]): void;
  /** Sends ready-made Engine.IO message frames from a channel. */
  sendFrames(frames: string[]): void;
  /** Ends the client's Engine.IO connection. */
  close(reason: string): void;
}

type Subscription = { link: ChannelLink | null; kind: ReturnType<typeof channelKind> };

/** Event name of errors we report to a client that laravel-echo does not otherwise see. */
const ERROR_EVENT = "echo-edge:error";

export class Session {
  readonly socketId: string;
  private readonly options: SessionOptions;
  private connected = false;
  private ended = false;
  private readonly subscriptions = new Map<string, Subscription>();
  private whisperTokens: number;
  private whisperRefilledAt = Date.now();

  constructor(options: SessionOptions) {
    this.options = options;
    this.socketId = options.socketId;
    this.whisperTokens = options.config.whisperRate;
  }

  /** Called once the Engine.IO connection is open. Revision 4 servers connect "/" unasked. */
  start(): void {
    if (this.options.revision === 4) this.connect();
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
      return this.send(encodeSocketPacket({ type: SocketPacketType.CONNECT_ERROR, nsp: packet.nsp, data: error }));
    }
    switch (packet.type) {
      case SocketPacketType.CONNECT:
        if (this.options.revision === 5 && !this.connected) this.connect();
        return;
      case SocketPacketType.DISCONNECT:
        return this.options.close("client namespace disconnect");
      case SocketPacketType.EVENT:
        if (!this.connected) return this.violation("event before connect");
        return this.onEvent(packet.data as unknown[]);
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

  /** The transport is gone: leave every channel. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const subscription of this.subscriptions.values()) subscription.link?.close("disconnect");
    this.subscriptions.clear();
  }

  private connect(): void {
    this.connected = true;
    const data = this.options.revision === 5 ? { sid: this.socketId } : undefined;
    this.send(encodeSocketPacket({ type: SocketPacketType.CONNECT, nsp: "/", data }));
  }

  private send(packet: string): void {
    this.options.send([packet]);
  }

  private emit(event: string, ...args: unknown[]): void {
    this.send(encodeSocketPacket({ type: SocketPacketType.EVENT, nsp: "/", data: [event, ...args] }));
  }

  private onEvent([event, payload]: unknown[]): void {
    switch (event) {
      case "subscribe":
        return void this.subscribe(payload);
      case "unsubscribe":
        return this.unsubscribe(payload);
      case "client event":
        return this.whisper(payload);
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
    if (this.subscriptions.size >= this.options.config.maxChannelsPerConnection) {
      this.options.log.debug("subscribe_rejected", { socketId: this.socketId, channel, status: 429 });
      return this.emit("subscription_error", channel, 429);
    }
    const subscription: Subscription = { link: null, kind: channelKind(channel) };
    this.subscriptions.set(channel, subscription);
    const current = () => !this.ended && this.subscriptions.get(channel) === subscription;

    let member: PresenceMember | null = null;
    if (subscription.kind !== "public") {
      const result = await this.options.gateway.authorize(channel, auth?.headers);
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

    let link: ChannelLink;
    try {
      link = await this.options.gateway.open(channel, this.socketId, member, {
        onFrames: (frames) => {
          if (current()) this.options.sendFrames(frames);
        },
        onLost: () => {
          // The channel went away under us (deploy, eviction): reconnecting makes
          // laravel-echo subscribe again, which is the one recovery path clients have.
          if (current()) this.options.close(`link to ${channel} lost`);
        },
      });
    } catch (error) {
      this.options.log.warn("link_failed", { socketId: this.socketId, channel, error: String(error) });
      if (!current()) return;
      this.subscriptions.delete(channel);
      return this.emit("subscription_error", channel, 500);
    }
    if (!current()) return link.close("unsubscribe");
    subscription.link = link;
    this.options.log.debug("subscribed", { socketId: this.socketId, channel });
  }

  private unsubscribe(payload: unknown): void {
    const channel = (payload as { channel?: unknown } | null)?.channel;
    if (typeof channel !== "string") return this.emit(ERROR_EVENT, { event: "unsubscribe", message: "channel missing" });
    const subscription = this.subscriptions.get(channel);
    if (!subscription) return;
    this.subscriptions.delete(channel);
    subscription.link?.close("unsubscribe");
    this.options.log.debug("unsubscribed", { socketId: this.socketId, channel });
  }

  private whisper(payload: unknown): void {
    const { channel, event, data } = (payload ?? {}) as { channel?: unknown; event?: unknown; data?: unknown };
    if (typeof channel !== "string" || typeof event !== "string" || !event.startsWith("client-")) {
      return this.emit(ERROR_EVENT, { event: "client event", message: "whisper needs a channel and a client-* event" });
    }
    const subscription = this.subscriptions.get(channel);
    // Whispers are only relayed on private/presence channels the sender has joined.
    if (!subscription?.link || subscription.kind === "public") return;
    if (!this.takeWhisperToken()) {
      this.options.log.debug("whisper_rate_limited", { socketId: this.socketId, channel });
      return;
    }
    const whisper: Whisper = { event, data };
    subscription.link.whisper(whisper);
  }

  private takeWhisperToken(): boolean {
    const rate = this.options.config.whisperRate;
    const now = Date.now();
    this.whisperTokens = Math.min(rate, this.whisperTokens + ((now - this.whisperRefilledAt) / 1000) * rate);
    this.whisperRefilledAt = now;
    if (this.whisperTokens < 1) return false;
    this.whisperTokens -= 1;
    return true;
  }
}
