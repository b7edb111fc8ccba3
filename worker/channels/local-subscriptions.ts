/**
 * The sockets of one host (or one polling session) subscribed to each channel: what
 * a delivery fans out to. Plain and synchronous, so the host, the polling object and
 * unit tests share it; it is rebuilt from socket attachments after hibernation.
 *
 * A socket id may have more than one sink here for a while: a recovering connection
 * registers before its channel has checked the pid, while the lost connection it
 * claims to continue may still be open on this host. Neither displaces the other: a
 * forged claim gets nothing away from the real owner, and a lingering connection's
 * close cannot end its successor's subscription.
 */
import { framesFor, seqsOf, type ChannelDelivery } from "./delivery.ts";

/** Receives a channel's frames for one socket; `seqs`: their numbers, when the channel numbers them. */
export type FrameSink = (frames: string[], seqs: number[] | null) => void;

export class LocalSubscriptions {
  private readonly byChannel = new Map<string, Map<string, Set<FrameSink>>>();

  register(channel: string, socketId: string, sink: FrameSink): void {
    let sockets = this.byChannel.get(channel);
    if (!sockets) this.byChannel.set(channel, (sockets = new Map()));
    let sinks = sockets.get(socketId);
    if (!sinks) sockets.set(socketId, (sinks = new Set()));
    sinks.add(sink);
  }

  /** Removes `sink`; true when the socket has no other sink here, so its subscription ends with it. */
  unregister(channel: string, socketId: string, sink: FrameSink): boolean {
    const sockets = this.byChannel.get(channel);
    const sinks = sockets?.get(socketId);
    if (!sinks?.delete(sink)) return false;
    if (sinks.size > 0) return false;
    sockets!.delete(socketId);
    if (sockets!.size === 0) this.byChannel.delete(channel);
    return true;
  }

  deliver(delivery: ChannelDelivery): { subscribers: number; delivered: number } {
    const sockets = this.byChannel.get(delivery.channel);
    if (!sockets) return { subscribers: 0, delivered: 0 };
    let delivered = 0;
    const seqs = seqsOf(delivery);
    for (const [socketId, sinks] of sockets) {
      const mine = framesFor(delivery, socketId, seqs);
      if (mine.frames.length === 0) continue;
      for (const sink of sinks) sink(mine.frames, mine.seqs);
      delivered += mine.frames.length;
    }
    return { subscribers: sockets.size, delivered };
  }
}
