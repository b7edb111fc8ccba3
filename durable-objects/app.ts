/**
 * App Durable Object: one per app. The directory of occupied channels and the
 * counters behind `/stats` and the laravel-echo-server HTTP API, plus connection
 * admission for MAX_CLIENTS. It is never on the per-message path: channels report
 * occupancy and batched counters at most once a second, sessions call it once on
 * connect and once on disconnect.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../worker/config.ts";

export interface ChannelReport {
  channel: string;
  subscriptionCount: number;
  /** Distinct presence users; null for other channels. */
  userCount: number | null;
  /** Messages published to the channel and frames delivered to clients since the last report. */
  received: number;
  delivered: number;
}

export interface ChannelEntry {
  subscription_count: number;
  user_count: number | null;
}

export interface AppSnapshot {
  connections: number;
  channels: Record<string, ChannelEntry>;
  received: number;
  delivered: number;
  startedAt: number;
}

const CHANNEL_PREFIX = "channel:";
const CONNECTION_PREFIX = "connection:";

export class AppObject extends DurableObject<Env> {
  private connectionCount: number | null = null;

  /** Admits a new connection unless `maxClients` (0: unlimited) are already connected. */
  async admit(sessionId: string, maxClients: number): Promise<boolean> {
    const count = this.connections();
    if (maxClients > 0 && count >= maxClients) return false;
    if (this.ctx.storage.kv.get(CONNECTION_PREFIX + sessionId) === undefined) {
      this.ctx.storage.kv.put(CONNECTION_PREFIX + sessionId, Date.now());
      this.connectionCount = count + 1;
    }
    return true;
  }

  async release(sessionId: string): Promise<void> {
    if (this.ctx.storage.kv.delete(CONNECTION_PREFIX + sessionId)) this.connectionCount = this.connections() - 1;
  }

  async reportChannel(report: ChannelReport): Promise<void> {
    const kv = this.ctx.storage.kv;
    if (report.subscriptionCount > 0) {
      kv.put(CHANNEL_PREFIX + report.channel, {
        subscription_count: report.subscriptionCount,
        user_count: report.userCount,
      } satisfies ChannelEntry);
    } else {
      kv.delete(CHANNEL_PREFIX + report.channel);
    }
    if (report.received || report.delivered) {
      kv.put("received", (kv.get<number>("received") ?? 0) + report.received);
      kv.put("delivered", (kv.get<number>("delivered") ?? 0) + report.delivered);
    }
  }

  async snapshot(prefix = ""): Promise<AppSnapshot> {
    const kv = this.ctx.storage.kv;
    const channels: Record<string, ChannelEntry> = {};
    for (const [key, entry] of kv.list<ChannelEntry>({ prefix: CHANNEL_PREFIX + prefix })) {
      channels[key.slice(CHANNEL_PREFIX.length)] = entry;
    }
    let startedAt = kv.get<number>("startedAt");
    if (startedAt === undefined) kv.put("startedAt", (startedAt = Date.now()));
    return {
      connections: this.connections(),
      channels,
      received: kv.get<number>("received") ?? 0,
      delivered: kv.get<number>("delivered") ?? 0,
      startedAt,
    };
  }

  private connections(): number {
    if (this.connectionCount === null) {
      let count = 0;
      for (const _ of this.ctx.storage.kv.list({ prefix: CONNECTION_PREFIX })) count++;
      this.connectionCount = count;
    }
    return this.connectionCount;
  }
}
