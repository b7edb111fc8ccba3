/**
 * Engine.IO liveness, in the direction each protocol version uses:
 *  - EIO 3: the client pings; we answer pong and give up after
 *    pingInterval + pingTimeout without hearing anything.
 *  - EIO 4: we ping every pingInterval; the client must pong within pingTimeout.
 * Transport-agnostic: the owner says what arrived and how to send a ping.
 */
import type { EngineVersion } from "../protocol/engineio.ts";

export interface HeartbeatOptions {
  version: EngineVersion;
  pingInterval: number;
  pingTimeout: number;
  sendPing(): void;
  onTimeout(): void;
}

export class Heartbeat {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly options: HeartbeatOptions;

  constructor(options: HeartbeatOptions) {
    this.options = options;
  }

  start(): void {
    if (this.options.version === 3) this.expectWithin(this.options.pingInterval + this.options.pingTimeout);
    else this.schedulePing();
  }

  /** Any packet from the client proves it alive on EIO 3; on EIO 4 only a pong does. */
  received(type: string): void {
    if (this.options.version === 3) this.expectWithin(this.options.pingInterval + this.options.pingTimeout);
    else if (type === "pong") this.schedulePing();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedulePing(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.options.sendPing();
      this.expectWithin(this.options.pingTimeout);
    }, this.options.pingInterval);
  }

  private expectWithin(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.options.onTimeout(), ms);
  }
}
