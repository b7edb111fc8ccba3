/**
 * One Engine.IO connection, independent of its transport: heartbeat, ping/pong,
 * close, and message packets handed up to the Socket.IO session. Its transport (a
 * connection host's WebSocket or a polling session) feeds it decoded packets and
 * takes every frame out through Transport.send.
 */
import type { Config } from "../config.ts";
import { encodeTextFrame, openPacket, type EngineVersion, type EnginePacket } from "../protocol/engineio.ts";
import { Heartbeat } from "./heartbeat.ts";
import type { Transport } from "./transport.ts";

/** The open packet a client gets first, from the configured heartbeat and payload limit. */
export function openPacketFor(config: Config, sid: string, version: EngineVersion, upgrades: string[]): EnginePacket {
  const { pingInterval, pingTimeout, maxPayload } = config;
  return openPacket({ sid, upgrades, pingInterval, pingTimeout, maxPayload }, version);
}

/** The close reason when the client sent the close packet `1`. */
export const CLIENT_CLOSE = "client close";

export interface EngineConnectionOptions {
  version: EngineVersion;
  pingInterval: number;
  pingTimeout: number;
  /**
   * "timers": this connection pings (EIO 4) and times out silent clients itself.
   * "host": a connection host does both from its alarm and auto-responses, so no
   * timer keeps it awake; pings never reach the connection. Default "timers".
   */
  heartbeat?: "timers" | "host";
  /** The transport's way out (Transport.send). */
  send: Transport["send"];
  /** A Socket.IO packet text arrived. */
  onMessage(text: string): void;
  /** The connection ended (client close, heartbeat timeout, protocol error, or close()). Called once. */
  onClose(reason: string): void;
}

export class EngineConnection {
  private readonly options: EngineConnectionOptions;
  private readonly heartbeat: Heartbeat | null;
  private closed = false;

  constructor(options: EngineConnectionOptions) {
    this.options = options;
    this.heartbeat = options.heartbeat === "host" ? null : new Heartbeat({
      version: options.version,
      pingInterval: options.pingInterval,
      pingTimeout: options.pingTimeout,
      sendPing: () => this.write({ type: "ping" }),
      onTimeout: () => this.close("ping timeout"),
    });
  }

  startHeartbeat(): void {
    this.heartbeat?.start();
  }

  receive(packet: EnginePacket): void {
    if (this.closed) return;
    this.heartbeat?.received(packet.type);
    switch (packet.type) {
      case "ping":
        // EIO 3 clients ping us; EIO 4 clients never should, but answering is harmless.
        return this.write({ type: "pong", ...(packet.data !== undefined ? { data: packet.data } : {}) });
      case "message":
        if (typeof packet.data !== "string") return this.close("protocol error: binary messages are not supported");
        return this.options.onMessage(packet.data);
      case "close":
        return this.close(CLIENT_CLOSE);
      case "pong":
      case "noop":
        return;
      default:
        return this.close(`protocol error: unexpected ${packet.type} packet`);
    }
  }

  /** Frames from the session above (its own packets and channels' ready-made ones); nothing once closed or detached. */
  send(frames: string[]): void {
    if (!this.closed) this.options.send(frames);
  }

  private write(packet: EnginePacket): void {
    this.options.send([encodeTextFrame(packet, this.options.version)]);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.heartbeat?.stop();
    this.options.onClose(reason);
  }

  /** The connection continues on another transport (an upgrade): stop here without ending it. */
  detach(): void {
    this.closed = true;
    this.heartbeat?.stop();
  }
}
