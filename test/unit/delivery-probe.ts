/**
 * The Worker entry of the channel tests (vitest project "workerd-channels"): the
 * worker as deployed, plus DeliveryProbe bound as HOST, so channel objects deliver to
 * probes. A probe is a minimal connection host: its "sockets" subscribe through the
 * production gateway (join, whisper, leave over RPC; frames through its
 * LocalSubscriptions) and record what reaches them, and it counts its `deliver`
 * calls, which is what a publish costs per address.
 */
import { DurableObject } from "cloudflare:workers";
import type { PresenceMember } from "../../worker/channels/auth.ts";
import type { ChannelDelivery, DeliveryReceipt, DeliveryTarget, LeaveReason, SubscriberAddress, Whisper } from "../../worker/channels/delivery.ts";
import { channelGateway } from "../../worker/channels/gateway.ts";
import { LocalSubscriptions, type FrameSink } from "../../worker/channels/local-subscriptions.ts";
import { readConfig, type Env } from "../../worker/config.ts";
import type { ChannelLink, LinkHandlers } from "../../worker/session/session.ts";

export { default } from "../../worker/index.ts";
export * from "../../worker/index.ts";

/** LocalSubscriptions that can also lose a socket without its link knowing, as a host whose socket vanished. */
class ForgettableSubscriptions extends LocalSubscriptions {
  private readonly sinks = new Map<string, FrameSink[]>();

  override register(channel: string, socketId: string, sink: FrameSink): void {
    const key = `${channel}\n${socketId}`;
    this.sinks.set(key, [...(this.sinks.get(key) ?? []), sink]);
    super.register(channel, socketId, sink);
  }

  forget(channel: string, socketId: string): void {
    const key = `${channel}\n${socketId}`;
    for (const sink of this.sinks.get(key) ?? []) this.unregister(channel, socketId, sink);
    this.sinks.delete(key);
  }
}

export class DeliveryProbe extends DurableObject<Env> implements DeliveryTarget {
  private incarnation = crypto.randomUUID();
  private local = new ForgettableSubscriptions();
  private readonly links = new Map<string, ChannelLink>();
  /** Per socket, the `[event, channel, data]` frames it received, in order. */
  private readonly received = new Map<string, unknown[][]>();
  /** Per socket, the channel's numbers of the frames it received (null for unnumbered ones). */
  private readonly numbers = new Map<string, (number | null)[]>();
  private deliverCalls = 0;
  /** Each deliver waits this long (or up to this long, at random) before fanning out: overlapping deliveries would reorder. */
  private delay = { ms: 0, random: false };

  async deliver(delivery: ChannelDelivery): Promise<DeliveryReceipt> {
    this.deliverCalls++;
    const { ms, random } = this.delay;
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, random ? Math.random() * ms : ms));
    return { incarnation: this.incarnation, ...this.local.deliver(delivery) };
  }

  /** A socket of this probe subscribes, as a session does once Laravel allowed it; with a `pid` it can recover. */
  async join(appId: string, channel: string, socketId: string, member: PresenceMember | null = null, resumed = false, pid?: string): Promise<void> {
    const link = await this.gateway(appId).open(channel, socketId, member, this.recorder(socketId), { resumed, ...(pid && { pid }) });
    this.links.set(`${channel}\n${socketId}`, link);
  }

  /** A socket of this probe takes up the subscription a lost connection of session `pid` left; false when the channel had nothing. */
  async recover(appId: string, channel: string, socketId: string, pid: string, position: number): Promise<boolean> {
    const recovered = await this.gateway(appId).recover(channel, { socketId, pid, position }, this.recorder(socketId));
    if (recovered) this.links.set(`${channel}\n${socketId}`, recovered.link);
    return recovered !== null;
  }

  seqs(socketId: string): (number | null)[] {
    return this.numbers.get(socketId) ?? [];
  }

  private gateway(appId: string) {
    return channelGateway(this.env, readConfig(this.env), appId, null, this.address(), this.local);
  }

  private recorder(socketId: string): LinkHandlers {
    const frames = this.framesOf(socketId);
    if (!this.numbers.has(socketId)) this.numbers.set(socketId, []);
    const numbers = this.numbers.get(socketId)!;
    return {
      onFrames: (batch, seqs) => {
        frames.push(...batch.map((frame) => JSON.parse(frame.slice(2)) as unknown[]));
        numbers.push(...batch.map((_, i) => seqs?.[i] ?? null));
      },
    };
  }

  whisper(channel: string, socketId: string, whisper: Whisper): void {
    this.links.get(`${channel}\n${socketId}`)!.whisper(whisper);
  }

  close(channel: string, socketId: string, reason: LeaveReason): void {
    this.links.get(`${channel}\n${socketId}`)!.close(reason);
    this.links.delete(`${channel}\n${socketId}`);
  }

  /** The socket is gone without a word to the channel (its leave was lost). */
  vanish(channel: string, socketId: string): void {
    this.local.forget(channel, socketId);
    this.links.delete(`${channel}\n${socketId}`);
  }

  /** Restarts empty, as a host whose sockets a deploy dropped: a new incarnation, no subscriptions. */
  restart(): void {
    this.incarnation = crypto.randomUUID();
    this.local = new ForgettableSubscriptions();
    this.links.clear();
  }

  setDelay(ms: number, random: boolean): void {
    this.delay = { ms, random };
  }

  frames(socketId: string): unknown[][] {
    return this.framesOf(socketId);
  }

  deliveries(): number {
    return this.deliverCalls;
  }

  address(): SubscriberAddress {
    return { kind: "host", name: this.ctx.id.name!, incarnation: this.incarnation };
  }

  private framesOf(socketId: string): unknown[][] {
    let frames = this.received.get(socketId);
    if (!frames) this.received.set(socketId, (frames = []));
    return frames;
  }
}
