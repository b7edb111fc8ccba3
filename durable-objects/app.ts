/**
 * App Durable Object: one per app. The directory of occupied channels and the
 * counters behind `/stats` and the laravel-echo-server HTTP API, plus connection
 * admission for MAX_CLIENTS. It is never on the per-message path: channels report
 * occupancy and batched counters at most once a second, sessions call it once on
 * connect and once on disconnect.
 *
 * A session whose Worker dies without running its close handlers never releases
 * its entry, so entries are leases: a deploy (which drops every WebSocket) voids
 * the entries of older versions, and an entry not renewed within CONNECTION_LEASE_MS
 * expires. Sessions renew every CONNECTION_RENEW_MS, a few requests a day at most.
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

export type NamedChannelEntry = { name: string } & ChannelEntry;

export interface AppSnapshot {
  /** Connected clients (Engine.IO sessions admitted and not yet released). */
  connections: number;
  /** Occupied channels. */
  channels: number;
  /** Channel subscriptions summed over occupied channels. */
  subscriptions: number;
  /** Messages published to this app's channels, and frames delivered to clients, since the app was first seen. */
  received: number;
  delivered: number;
  /** When this object first ran (ms since epoch): the app's uptime starts here. */
  startedAt: number;
}

const CHANNEL_PREFIX = "channel:";
const bySubscriptions = (a: ChannelEntry, b: ChannelEntry) => b.subscription_count - a.subscription_count;
const CONNECTION_PREFIX = "connection:";
export const CONNECTION_LEASE_MS = 24 * 60 * 60 * 1000;
export const CONNECTION_RENEW_MS = CONNECTION_LEASE_MS / 4;
const PRUNE_EVERY_MS = 60_000;

interface ConnectionLease {
  at: number;
  version: string;
}

export class AppObject extends DurableObject<Env> {
  private connectionCount: number | null = null;
  private prunedAt = 0;
  /** Sums over the channel directory, loaded once by a scan and then kept up to date by reports. */
  private occupancy: { channels: number; subscriptions: number } | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    if (ctx.storage.kv.get("startedAt") === undefined) ctx.storage.kv.put("startedAt", Date.now());
  }

  /**
   * Admits a new connection unless `maxClients` (0: unlimited) are already
   * connected; for an admitted session, renews its lease. `version` is the Worker
   * version serving it: the first admission under a new version voids older leases.
   */
  async admit(sessionId: string, maxClients: number, version: string): Promise<boolean> {
    this.prune(version);
    const key = CONNECTION_PREFIX + sessionId;
    const known = this.ctx.storage.kv.get(key) !== undefined;
    const count = this.connections();
    if (!known && maxClients > 0 && count >= maxClients) return false;
    this.ctx.storage.kv.put(key, { at: Date.now(), version } satisfies ConnectionLease);
    if (!known) this.connectionCount = count + 1;
    return true;
  }

  async release(sessionId: string): Promise<void> {
    if (this.ctx.storage.kv.delete(CONNECTION_PREFIX + sessionId)) this.connectionCount = this.connections() - 1;
  }

  async reportChannel(report: ChannelReport): Promise<void> {
    const kv = this.ctx.storage.kv;
    const occupancy = this.loadOccupancy();
    const key = CHANNEL_PREFIX + report.channel;
    const previous = kv.get<ChannelEntry>(key);
    if (previous) {
      occupancy.channels--;
      occupancy.subscriptions -= previous.subscription_count;
    }
    if (report.subscriptionCount > 0) {
      kv.put(key, { subscription_count: report.subscriptionCount, user_count: report.userCount } satisfies ChannelEntry);
      occupancy.channels++;
      occupancy.subscriptions += report.subscriptionCount;
    } else if (previous) {
      kv.delete(key);
    }
    if (report.received || report.delivered) {
      kv.put("received", (kv.get<number>("received") ?? 0) + report.received);
      kv.put("delivered", (kv.get<number>("delivered") ?? 0) + report.delivered);
    }
  }

  /** The app's totals; constant time however many channels are occupied. */
  async snapshot(): Promise<AppSnapshot> {
    const kv = this.ctx.storage.kv;
    return {
      connections: this.connections(),
      ...this.loadOccupancy(),
      received: kv.get<number>("received") ?? 0,
      delivered: kv.get<number>("delivered") ?? 0,
      startedAt: kv.get<number>("startedAt")!,
    };
  }

  /** Occupied channels whose name starts with `prefix`, as last reported (at most about a second old). */
  async channels(prefix = ""): Promise<Record<string, ChannelEntry>> {
    return Object.fromEntries(this.directory(prefix));
  }

  /** The `limit` channels with the most subscriptions (the dashboard's table), largest first. */
  async busiestChannels(limit: number): Promise<NamedChannelEntry[]> {
    const busiest: NamedChannelEntry[] = [];
    for (const [name, entry] of this.directory("")) {
      busiest.push({ name, ...entry });
      // Trim now and then rather than sorting the whole directory at the end.
      if (busiest.length >= limit * 2) {
        busiest.sort(bySubscriptions);
        busiest.length = limit;
      }
    }
    busiest.sort(bySubscriptions);
    return busiest.slice(0, limit);
  }

  private *directory(prefix: string): Generator<[string, ChannelEntry]> {
    for (const [key, entry] of this.ctx.storage.kv.list<ChannelEntry>({ prefix: CHANNEL_PREFIX + prefix })) {
      yield [key.slice(CHANNEL_PREFIX.length), entry];
    }
  }

  private prune(version: string): void {
    const kv = this.ctx.storage.kv;
    const now = Date.now();
    const newVersion = kv.get<string>("version") !== version;
    if (!newVersion && now - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now;
    if (newVersion) kv.put("version", version);
    for (const [key, lease] of kv.list<ConnectionLease>({ prefix: CONNECTION_PREFIX })) {
      if (lease.version !== version || now - lease.at > CONNECTION_LEASE_MS) kv.delete(key);
    }
    this.connectionCount = null;
  }

  private connections(): number {
    if (this.connectionCount === null) {
      let count = 0;
      for (const _ of this.ctx.storage.kv.list({ prefix: CONNECTION_PREFIX })) count++;
      this.connectionCount = count;
    }
    return this.connectionCount;
  }

  private loadOccupancy(): { channels: number; subscriptions: number } {
    if (this.occupancy === null) {
      const occupancy = { channels: 0, subscriptions: 0 };
      for (const [, entry] of this.directory("")) {
        occupancy.channels++;
        occupancy.subscriptions += entry.subscription_count;
      }
      this.occupancy = occupancy;
    }
    return this.occupancy;
  }
}
