/**
 * The sockets of one host (or one polling session) subscribed to each channel: what
 * a delivery fans out to. Plain and synchronous, so the host, the polling object and
 * unit tests share it; it is rebuilt from socket attachments after hibernation.
 */
import { framesFor, seqsOf, type ChannelDelivery } from "./delivery.ts";

/** Receives a channel's frames for one socket; `seqs`: their numbers, when the channel numbers them. */
export type FrameSink = (frames: string[], seqs: number[] | null) => void;

export class LocalSubscriptions {
  private readonly byChannel = new Map<string, Map<string, FrameSink>>();

  register(channel: string, socketId: string, sink: FrameSink): void {
    let sockets = this.byChannel.get(channel);
    if (!sockets) this.byChannel.set(channel, (sockets = new Map()));
    sockets.set(socketId, sink);
  }

  /**
   * Removes `sink` unless another has taken its place (the same socket subscribed
   * again here: an upgrade, or a recovery while the lost connection still lingers);
   * false when it had.
   */
  unregister(channel: string, socketId: string, sink: FrameSink): boolean {
    const sockets = this.byChannel.get(channel);
    if (sockets?.get(socketId) !== sink) return false;
    sockets.delete(socketId);
    if (sockets.size === 0) this.byChannel.delete(channel);
    return true;
  }

  subscribers(channel: string): number {
    return this.byChannel.get(channel)?.size ?? 0;
  }

  deliver(delivery: ChannelDelivery): { subscribers: number; delivered: number } {
    const sockets = this.byChannel.get(delivery.channel);
    if (!sockets) return { subscribers: 0, delivered: 0 };
    let delivered = 0;
    const seqs = seqsOf(delivery);
    for (const [socketId, sink] of sockets) {
      const mine = framesFor(delivery, socketId, seqs);
      if (mine.frames.length === 0) continue;
      sink(mine.frames, mine.seqs);
      delivered += mine.frames.length;
    }
    return { subscribers: sockets.size, delivered };
  }
}
